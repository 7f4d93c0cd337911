"""CPU seconds of ELSA training steps at a Gowalla-sized catalogue, per rank (one thread).

Random histories of 25 items over 40,981 items, batches of 500 fed by `sparse_batches` (no
static batch size, as under `keras-recae train`), Adam at 1e-2: one epoch of 6 steps to
trace, then a second one timed.

Usage: python benchmarks/elsa_step_time.py RANK [RANK ...]
"""

from __future__ import annotations

import sys
import time

import keras
import numpy as np
import scipy.sparse as sp
import tensorflow as tf

from keras_recae.data import sparse_batches
from keras_recae.models import ELSA

N_ITEMS, N_USERS, HISTORY, BATCH = 40981, 3000, 25, 500


def main() -> None:
    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    rng = np.random.default_rng(0)
    rows = np.repeat(np.arange(N_USERS), HISTORY)
    cols = rng.integers(0, N_ITEMS, rows.size)
    matrix = sp.csr_matrix((np.ones(rows.size, np.float32), (rows, cols)), shape=(N_USERS, N_ITEMS))
    matrix.data[:] = 1.0
    steps = -(-N_USERS // BATCH)
    for rank in map(int, sys.argv[1:]):
        model = ELSA(rank=rank, seed=0)
        model.compile(optimizer=keras.optimizers.Adam(1e-2))
        batches = sparse_batches(matrix, BATCH, shuffle=False)
        model.fit(batches, epochs=1, verbose=0)
        start = time.process_time()
        model.fit(batches, epochs=1, verbose=0)
        seconds = time.process_time() - start
        print(f"rank {rank}: {seconds / steps:.2f} CPU s a step ({steps} steps)", flush=True)


if __name__ == "__main__":
    main()
