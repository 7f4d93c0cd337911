"""The two kernels of a Gowalla Mult-VAE step, in float32 and bfloat16, one thread, CPU time:
the output layer's matmul (500 users x 600 by 600 x 40,981 items) alone, and the sparse first
layer (`SparseDense`, 500 users of 27 items, 600 units) forward and backward under the Keras
policies `float32` and `mixed_bfloat16`. It tells whether this CPU has bfloat16 hardware and
where the mixed policy gains or loses (RESULTS.md, "Precision on this CPU").

Usage: python benchmarks/bf16_kernels.py
"""

from __future__ import annotations

import time

import keras
import numpy as np
import tensorflow as tf

from keras_recae.layers import SparseDense

REPEATS = 10


def cpu_ms(function, *args) -> float:
    """Mean CPU milliseconds of `function(*args)` after one warm-up call."""
    function(*args)
    start = time.process_time()
    for _ in range(REPEATS):
        result = function(*args)
    tf.nest.map_structure(lambda tensor: tensor.numpy(), result)
    return 1000 * (time.process_time() - start) / REPEATS


def main() -> None:
    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    a = tf.random.normal([500, 600], seed=0)
    b = tf.random.normal([600, 40981], seed=1)
    for dtype in (tf.float32, tf.bfloat16):
        milliseconds = cpu_ms(
            tf.function(lambda x, y: tf.matmul(x, y)), tf.cast(a, dtype), tf.cast(b, dtype)
        )
        flops = 2 * 500 * 600 * 40981 / (milliseconds / 1000)
        print(f"matmul {dtype.name}: {milliseconds:.0f} ms CPU, {flops / 1e9:.0f} GFLOP/s")

    rng = np.random.default_rng(0)
    rows = np.repeat(np.arange(500), 27)
    indices = np.unique(np.stack([rows, rng.integers(0, 40981, rows.size)], 1), axis=0)
    batch = tf.SparseTensor(indices, np.ones(len(indices), np.float32), [500, 40981])
    previous = keras.config.dtype_policy()
    try:
        for policy in ("float32", "mixed_bfloat16"):
            keras.config.set_dtype_policy(policy)
            layer = SparseDense(600, activation="tanh")
            layer.build((None, 40981))

            @tf.function
            def step(inputs, layer=layer):
                with tf.GradientTape() as tape:
                    loss = tf.reduce_sum(tf.cast(layer(inputs), tf.float32))
                return tape.gradient(loss, layer.trainable_variables)

            print(f"sparse first layer {policy}: {cpu_ms(step, batch):.0f} ms CPU forward+backward")
    finally:
        keras.config.set_dtype_policy(previous)


if __name__ == "__main__":
    main()
