"""EASE: the closed-form item-item linear autoencoder."""

from __future__ import annotations

import os

import keras
import numpy as np
import scipy.sparse as sp
import tensorflow as tf
from scipy.linalg import lapack
from threadpoolctl import threadpool_limits

from keras_recae.checks import check_non_negative, check_positive_int
from keras_recae.data.interactions import Interactions
from keras_recae.models.recommender import Recommender
from keras_recae.search_space import float_range

_GRAM_BLOCK = 2048
_WEIGHTS_FILE = "item_weights.npy"
# TensorFlow adopts a buffer through DLPack only when it is aligned to 64 bytes.
_TENSOR_ALIGNMENT = 64


def _aligned_empty(shape) -> np.ndarray:
    """An uninitialised float32 array whose data starts on a 64-byte boundary."""
    size = int(np.prod(shape)) * 4
    buffer = np.empty(size + _TENSOR_ALIGNMENT, dtype=np.uint8)
    offset = -buffer.ctypes.data % _TENSOR_ALIGNMENT
    return buffer[offset : offset + size].view(np.float32).reshape(shape)


def available_memory_bytes() -> int | None:
    """Memory the process could still take, from the OS; None where unknown."""
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


@keras.saving.register_keras_serializable(package="keras_recae")
class EASE(Recommender):
    """Embarrassingly shallow autoencoder (EASE), solved in closed form.

    The item-item weights are `B = I - P diag(1 / diag(P))` with
    `P = (X^T X + l2 I)^-1`, so that `diag(B) = 0`. `fit` takes the training
    matrix (not a `tf.data` pipeline) and computes `B` in float32 with one
    Cholesky factorisation and inversion done in place, holding one
    `n_items x n_items` matrix on the host and one copy in the model's
    weight. Scores are `X_u B`, computed sparse x dense.

    Args:
        l2: float. The ridge penalty (Steck's lambda). Defaults to `500.0`.
        blas_threads: int | None. BLAS threads for the factorisation; the
            default of one avoids a crash seen with OpenBLAS's threaded
            Cholesky on matrices of about 40k items. `None` leaves BLAS as it is.
            Defaults to `1`.

    Example:

    ```python
    from keras_recae.data import synthetic_interactions
    from keras_recae.models import EASE

    data = synthetic_interactions(seed=0)
    model = EASE(l2=50.0)
    model.fit(data)
    ```

    References:
        Steck. Embarrassingly Shallow Autoencoders for Sparse Data. WWW 2019.
    """

    search_space = {"l2": float_range(1.0, 10_000.0, log=True)}
    supports_jit = False
    closed_form = True

    def __init__(self, l2: float = 500.0, blas_threads: int | None = 1, **kwargs):
        super().__init__(**kwargs)
        self.l2 = check_non_negative("l2", l2)
        self.blas_threads = check_positive_int("blas_threads", blas_threads, allow_none=True)

    def build(self, input_shape):
        n_items = input_shape[-1]
        self.weights_matrix = self.add_weight(
            name="item_weights", shape=(n_items, n_items), initializer="zeros", trainable=False
        )
        self.fitted = self.add_weight(
            name="fitted", shape=(), initializer="zeros", trainable=False, dtype="bool"
        )

    def fit(self, x=None, y=None, **kwargs):
        """Solves for the item weights from a user x item matrix.

        Args:
            x: `Interactions` or scipy sparse matrix. The training interactions.

        Returns:
            A `keras.callbacks.History` with no epochs, for interface parity.
        """
        if self.fit_strategy() is not None:
            raise ValueError(
                "EASE is solved in closed form on one host (a Cholesky factorisation of the "
                "item-item Gram matrix): there are no gradient steps for a tf.distribute "
                "strategy to spread over devices or workers. Create and fit EASE outside "
                "`strategy.scope()` (with the command line, leave out --distribute)."
            )
        matrix = x.matrix if isinstance(x, Interactions) else x
        if not sp.issparse(matrix):
            raise TypeError(
                "`EASE.fit` takes the training matrix as `Interactions` or a scipy sparse "
                f"matrix. Received: {type(x).__name__}"
            )
        if isinstance(x, Interactions) and self.item_ids is None:
            self.set_item_ids(x.item_ids)
        n_items = matrix.shape[1]
        self.check_memory(n_items)
        weights = self.solve(sp.csr_matrix(matrix, dtype=np.float32))
        if not self.built:
            self.build((None, n_items))
        # DLPack hands the array's buffer to TensorFlow without a copy, and the assignment
        # takes that buffer over: the zeros are freed and no third n x n copy is made.
        self.weights_matrix.value.assign(tf.experimental.dlpack.from_dlpack(weights.__dlpack__()))
        del weights
        self.fitted.assign(True)
        history = keras.callbacks.History()
        history.history = {}
        return history

    def is_trained(self) -> bool:
        """Whether `fit` has solved for the item weights."""
        return self.built and bool(keras.ops.convert_to_numpy(self.fitted))

    def check_memory(self, n_items: int) -> None:
        """Fails early when the item-item matrices would not fit in memory."""
        needed = 2 * 4 * n_items * n_items
        available = available_memory_bytes()
        if available is not None and needed > available:
            raise MemoryError(
                f"EASE on {n_items} items needs about {needed / 2**30:.1f} GiB (two float32 "
                f"{n_items} x {n_items} matrices) but only {available / 2**30:.1f} GiB is "
                "available. Filter rare items first (e.g. `Interactions.filter`)."
            )

    def solve(self, matrix: sp.csr_matrix) -> np.ndarray:
        """The closed-form weights for a float32 CSR matrix, computed in place."""
        n_items = matrix.shape[1]
        gram = _aligned_empty((n_items, n_items))
        transposed = matrix.T.tocsr()
        csc = matrix.tocsc()
        for start in range(0, n_items, _GRAM_BLOCK):
            stop = min(start + _GRAM_BLOCK, n_items)
            gram[start:stop] = (transposed[start:stop] @ csc).toarray()
        gram[np.diag_indices(n_items)] += self.l2
        # The C-ordered array read as Fortran order is its transpose, which for a
        # symmetric matrix is itself: LAPACK then works in place without a copy.
        fortran = gram.T
        with threadpool_limits(limits=self.blas_threads, user_api="blas"):
            _, info = lapack.spotrf(fortran, lower=1, overwrite_a=1, clean=0)
            if info != 0:
                raise np.linalg.LinAlgError(
                    f"X^T X + l2 I is not positive definite (LAPACK potrf info={info}); "
                    f"raise `l2` (now {self.l2})."
                )
            _, info = lapack.spotri(fortran, lower=1, overwrite_c=1)
            if info != 0:
                raise np.linalg.LinAlgError(f"Inversion failed (LAPACK potri info={info}).")
        # The inverse now sits in the upper triangle of `gram`: mirror it block by block.
        for start in range(0, n_items, _GRAM_BLOCK):
            stop = min(start + _GRAM_BLOCK, n_items)
            gram[start:stop, :start] = gram[:start, start:stop].T
            block = gram[start:stop, start:stop]
            block[...] = np.triu(block) + np.triu(block, 1).T
        diagonal = np.diag(gram).copy()
        gram /= -diagonal[None, :]
        gram[np.diag_indices(n_items)] = 0.0
        return gram

    # Keras holds the weights file of a `.keras` archive in memory while it writes it,
    # which for n_items x n_items floats means two more copies of the matrix. The item
    # weights therefore go to an `.npy` asset, written and read block by block.
    def save_own_variables(self, store):
        store["fitted"] = keras.ops.convert_to_numpy(self.fitted)

    def load_own_variables(self, store):
        self.fitted.assign(store["fitted"][()])

    def save_assets(self, dir_path):
        super().save_assets(dir_path)
        n_items = self.weights_matrix.shape[0]
        array = np.lib.format.open_memmap(
            os.path.join(dir_path, _WEIGHTS_FILE),
            mode="w+",
            dtype=np.float32,
            shape=(n_items, n_items),
        )
        variable = self.weights_matrix.value
        for start in range(0, n_items, _GRAM_BLOCK):
            array[start : start + _GRAM_BLOCK] = variable[start : start + _GRAM_BLOCK].numpy()
        array.flush()
        del array

    def load_assets(self, dir_path):
        super().load_assets(dir_path)
        path = os.path.join(dir_path, _WEIGHTS_FILE)
        stored = np.load(path, mmap_mode="r")
        weights = _aligned_empty(stored.shape)
        for start in range(0, stored.shape[0], _GRAM_BLOCK):
            weights[start : start + _GRAM_BLOCK] = stored[start : start + _GRAM_BLOCK]
        del stored
        self.weights_matrix.value.assign(tf.experimental.dlpack.from_dlpack(weights.__dlpack__()))

    def call(self, inputs, training=False):
        return tf.sparse.sparse_dense_matmul(inputs, self.weights_matrix)

    def get_config(self):
        config = super().get_config()
        config.update({"l2": self.l2, "blas_threads": self.blas_threads})
        return config
