"""The closed-form item-item linear autoencoders: what EASE, DLAE, EDLAE and RDLAE share."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from typing import NamedTuple

import keras
import numpy as np
import scipy.sparse as sp
import tensorflow as tf
from scipy.linalg import lapack
from threadpoolctl import threadpool_limits

from keras_recae.checks import check_non_negative, check_positive_int
from keras_recae.data.interactions import Interactions
from keras_recae.models.recommender import Recommender

_GRAM_BLOCK = 2048
_MEMINFO = "/proc/meminfo"
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
    """Memory the process could still take, from the OS; None where unknown.

    Linux's `MemAvailable` (free memory plus the page cache and buffers it can reclaim),
    else the free pages: those alone would refuse fits that fit once the cache gives way.
    """
    try:
        with open(_MEMINFO, encoding="ascii") as file:
            for line in file:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def _counts_or_one(counts: np.ndarray) -> np.ndarray:
    """Row or column sums as float64, with the empty ones at 1 (so that any power is finite)."""
    counts = np.asarray(counts, dtype=np.float64).ravel()
    return np.where(counts > 0, counts, 1.0)


class ItemInverse(NamedTuple):
    """`C = (G + Lambda)^-1` and what the weights of a fit are computed from besides it.

    Attributes:
        matrix: float32 array `[n_items, n_items]`, `C`.
        penalty: float64 array `[n_items]`, `diag(Lambda)`.
        item_counts: float64 array `[n_items]`. The items' training counts (an empty item
            counted as one), for the item-side normalisation.
    """

    matrix: np.ndarray
    penalty: np.ndarray
    item_counts: np.ndarray


@keras.saving.register_keras_serializable(package="keras_recae")
class LinearAutoencoder(Recommender):
    """Base of the linear autoencoders solved in closed form from the item-item Gram matrix.

    Scores are `x W` with one `n_items x n_items` weight matrix `W`. A subclass declares
    the diagonal penalty `Lambda` of its ridge problem (`diagonal_penalty`) and the column
    scales `s` of its weights `B = I - C diagMat(s)`, `C = (G + Lambda)^-1`
    (`column_scales`; `zero_diagonal` sets `diag(B)` to exactly zero); this class
    computes the Gram matrix `G`, factorises and inverts `G + Lambda` in float32 with one
    Cholesky factorisation done in place (one `n_items x n_items` matrix on the host, handed
    to the model's weight without a copy), applies the data-adaptive normalisation and
    saves the weights as an `.npy` asset, block by block.

    Data-adaptive normalisation (Park et al., SIGIR 2025), both off by default:
    on the user side, `G = X^T D_U^-beta X`, each user's row weighted by their number of
    items to the power `-beta`; on the item side, the learned `B` becomes
    `W = D_I^alpha B D_I^-alpha` (`W_ij = B_ij (c_i / c_j)^alpha`, `c` the items' training
    counts), which scales down the scores of popular items. The scaling leaves the diagonal
    as it is. Users and items without any interaction count as one.

    One inverse serves several settings: `C` depends on `l2`, the penalty and `beta`, not on
    the settings in `variant_settings` (`alpha`; RDLAE's `xi`), which only rescale its
    columns and rows. `solve_inverse` computes `C` and `variant_scores` scores users under
    any number of those settings from it, each as a model fitted with them would: the
    tuner's `--variants` scores a grid of them per fit.

    Args:
        l2: float. The ridge penalty added to the Gram matrix's diagonal.
        alpha: float. Item-side normalisation exponent, `>= 0`. Defaults to `0.0`.
        beta: float. User-side normalisation exponent, `>= 0`. Defaults to `0.0`.
        blas_threads: int | None. BLAS threads for the factorisation; the default of one
            avoids a crash seen with OpenBLAS's threaded Cholesky on matrices of about
            40k items. `None` leaves BLAS as it is. Defaults to `1`.
    """

    closed_form = True
    supports_jit = False
    # Whether `B`'s diagonal is held at zero (EASE, EDLAE).
    zero_diagonal = False
    # The settings `variant_scores` changes on a fitted inverse.
    variant_settings = ("alpha",)

    def __init__(
        self,
        l2: float = 500.0,
        alpha: float = 0.0,
        beta: float = 0.0,
        blas_threads: int | None = 1,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.l2 = check_non_negative("l2", l2)
        self.alpha = check_non_negative("alpha", alpha)
        self.beta = check_non_negative("beta", beta)
        self.blas_threads = check_positive_int("blas_threads", blas_threads, allow_none=True)

    # -- what a subclass declares -------------------------------------------------------

    def diagonal_penalty(self, item_squares: np.ndarray) -> np.ndarray:
        """`diag(Lambda)`, from the diagonal of the unnormalised `X^T X`: `l2` on every item.

        Args:
            item_squares: float64 array `[n_items]`. Each item's sum of squared values (its
                training count for binary data).
        """
        return np.full(item_squares.shape, self.l2)

    def column_scales(self, diagonal: np.ndarray, penalty: np.ndarray) -> np.ndarray:
        """The scales `s` of the weights `B = I - C diagMat(s)`.

        Args:
            diagonal: float64 array `[n_items]`, `diag(C)`.
            penalty: float64 array `[n_items]`, `diag(Lambda)`.
        """
        raise NotImplementedError

    def weights_from_inverse(self, inverse: np.ndarray, penalty: np.ndarray) -> None:
        """Turns `C = (G + Lambda)^-1` into the weights `B = I - C diagMat(s)`, in place.

        Args:
            inverse: float32 array `[n_items, n_items]`, `C`; overwritten with `B`.
            penalty: float64 array `[n_items]`, `diag(Lambda)`.
        """
        scales = self.column_scales(np.diag(inverse).astype(np.float64), penalty)
        inverse *= -scales.astype(np.float32)[None, :]
        diagonal = np.diag_indices(inverse.shape[0])
        if self.zero_diagonal:
            inverse[diagonal] = 0.0
        else:
            inverse[diagonal] += 1.0

    # -- fitting ------------------------------------------------------------------------

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
        name = type(self).__name__
        if self.fit_strategy() is not None:
            raise ValueError(
                f"{name} is solved in closed form on one host (a Cholesky factorisation of the "
                "item-item Gram matrix): there are no gradient steps for a tf.distribute "
                f"strategy to spread over devices or workers. Create and fit {name} outside "
                "`strategy.scope()` (with the command line, leave out --distribute)."
            )
        matrix = x.matrix if isinstance(x, Interactions) else x
        if not sp.issparse(matrix):
            raise TypeError(
                f"`{name}.fit` takes the training matrix as `Interactions` or a scipy sparse "
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

    def check_memory(self, n_items: int, matrices: int = 2) -> None:
        """Fails early when the item-item matrices would not fit in memory.

        Args:
            n_items: int. The catalogue's size.
            matrices: int. The float32 `n_items x n_items` matrices held at once: two for
                a fit (the inverse and the model's weight), one for `variant_scores`.
        """
        needed = matrices * 4 * n_items * n_items
        available = available_memory_bytes()
        if available is not None and needed > available:
            count = {1: "one", 2: "two"}.get(matrices, str(matrices))
            plural = "matrix" if matrices == 1 else "matrices"
            raise MemoryError(
                f"{type(self).__name__} on {n_items} items needs about {needed / 2**30:.1f} GiB "
                f"({count} float32 {n_items} x {n_items} {plural}) but only "
                f"{available / 2**30:.1f} GiB is available. Filter rare items first (e.g. "
                "`Interactions.filter`)."
            )

    def solve(self, matrix: sp.csr_matrix) -> np.ndarray:
        """The closed-form weights for a float32 CSR matrix, computed in place."""
        weights, penalty, item_counts = self.solve_inverse(matrix)
        self.weights_from_inverse(weights, penalty)
        if self.alpha:
            scales = (item_counts**self.alpha).astype(np.float32)
            weights *= scales[:, None]
            weights /= scales[None, :]
        return weights

    def solve_inverse(self, matrix: sp.csr_matrix) -> ItemInverse:
        """`C = (G + Lambda)^-1` for a float32 CSR matrix, factorised and inverted in place."""
        n_items = matrix.shape[1]
        item_squares = np.asarray(matrix.multiply(matrix).sum(axis=0), dtype=np.float64).ravel()
        penalty = np.asarray(self.diagonal_penalty(item_squares), dtype=np.float64)
        weighted = matrix
        if self.beta:
            user_weights = _counts_or_one(matrix.sum(axis=1)) ** -self.beta
            weighted = sp.csr_matrix(sp.diags(user_weights.astype(np.float32)) @ matrix)
        gram = _aligned_empty((n_items, n_items))
        transposed = matrix.T.tocsr()
        csc = weighted.tocsc()
        for start in range(0, n_items, _GRAM_BLOCK):
            stop = min(start + _GRAM_BLOCK, n_items)
            gram[start:stop] = (transposed[start:stop] @ csc).toarray()
        gram[np.diag_indices(n_items)] += penalty.astype(np.float32)
        # The C-ordered array read as Fortran order is its transpose, which for a
        # symmetric matrix is itself: LAPACK then works in place without a copy.
        fortran = gram.T
        with threadpool_limits(limits=self.blas_threads, user_api="blas"):
            _, info = lapack.spotrf(fortran, lower=1, overwrite_a=1, clean=0)
            if info != 0:
                raise np.linalg.LinAlgError(
                    f"X^T X + Lambda is not positive definite (LAPACK potrf info={info}); "
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
        return ItemInverse(gram, penalty, _counts_or_one(matrix.sum(axis=0)))

    def variant(self, **changes) -> LinearAutoencoder:
        """An unfitted copy of this model with some of its `variant_settings` changed."""
        unknown = sorted(set(changes) - set(self.variant_settings))
        if unknown:
            raise ValueError(
                f"{type(self).__name__} scores variants of {', '.join(self.variant_settings)} "
                f"from one inverse, not of {', '.join(unknown)}"
            )
        return type(self).from_config({**self.get_config(), **changes})

    def variant_scores(
        self,
        inverse: ItemInverse,
        inputs: sp.spmatrix,
        variants: Sequence[dict],
        batch_size: int = 500,
    ) -> Iterator[list[np.ndarray]]:
        """Users' scores under several variants of this model, from one inverse.

        A variant `{"alpha": a}` (RDLAE also `xi`) scores as this model with those settings,
        fitted on the data of `inverse`, would: `x W` with `W = D^a (I - C diagMat(s))
        D^-a`, computed as `x - ((x D^a) C) diagMat(s c^-a)` so that no weight matrix is
        formed. Variants with the same `alpha` share the product with `C`.

        Args:
            inverse: ItemInverse. `solve_inverse`'s result for this model's `l2`,
                penalty and `beta`.
            inputs: scipy sparse matrix `[n_users, n_items]`. The users' histories.
            variants: sequence of dict. Each a set of changed `variant_settings` (`{}` is
                this model).
            batch_size: int. Users scored at once. Defaults to 500.

        Yields:
            For each batch of users in order, a list of float32 arrays `[batch, n_items]`,
            one per variant.
        """
        check_positive_int("batch_size", batch_size)
        models = [self.variant(**changes) for changes in variants]
        diagonal = np.diag(inverse.matrix).astype(np.float64)
        # Per variant: the row scales of the input, the column scales of the product, and
        # the weight of a user's own items that puts back `B`'s diagonal: the product holds
        # `-C_jj s_j` for it, and `B_jj` is `1 - C_jj s_j`, or zero.
        rows, columns, own_weights = [], [], []
        for model in models:
            counts = inverse.item_counts**model.alpha
            scales = model.column_scales(diagonal, inverse.penalty)
            rows.append(counts.astype(np.float32))
            columns.append((-scales / counts).astype(np.float32))
            kept = diagonal * scales if model.zero_diagonal else np.ones_like(scales)
            own_weights.append(kept.astype(np.float32))
        groups = {}
        for index, model in enumerate(models):
            groups.setdefault(model.alpha, []).append(index)
        inputs = sp.csr_matrix(inputs, dtype=np.float32)
        for start in range(0, inputs.shape[0], batch_size):
            batch = inputs[start : start + batch_size]
            # The users' own items: added at their entries, not over a dense batch.
            entries = batch.tocoo()
            own = (entries.row, entries.col)
            scores = [None] * len(models)
            for indices in groups.values():
                product = (batch @ sp.diags(rows[indices[0]])) @ inverse.matrix
                for index in indices:
                    variant_scores = product * columns[index][None, :]
                    np.add.at(variant_scores, own, entries.data * own_weights[index][entries.col])
                    scores[index] = variant_scores
            yield scores

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
        config.update(
            {
                "l2": self.l2,
                "alpha": self.alpha,
                "beta": self.beta,
                "blas_threads": self.blas_threads,
            }
        )
        return config
