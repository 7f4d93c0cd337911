"""The base of the explicit-rating autoencoders: training statistics, fallback, clipping."""

from __future__ import annotations

import keras
import numpy as np
import scipy.sparse as sp
import tensorflow as tf

from keras_recae.data.interactions import Interactions
from keras_recae.data.pipeline import sparse_batches
from keras_recae.models.loss_parts_training import LossPartsTraining
from keras_recae.models.recommender import Recommender
from keras_recae.sparse_ops import row_counts, row_sums

DEFAULT_BATCH_SIZE = 128


def rating_matrix(data) -> tuple[sp.csr_matrix, np.ndarray | None, np.ndarray | None]:
    """A users x items float32 CSR matrix, and the user and item ids when `data` has them."""
    if isinstance(data, Interactions):
        matrix, user_ids, item_ids = data.matrix, data.user_ids, data.item_ids
    elif sp.issparse(data):
        matrix, user_ids, item_ids = data, None, None
    else:
        raise TypeError(
            "The training ratings should be `Interactions` or a scipy sparse users x items "
            f"matrix. Received: {type(data).__name__}"
        )
    matrix = sp.csr_matrix(matrix, dtype=np.float32, copy=True)
    matrix.sum_duplicates()
    matrix.sort_indices()
    if matrix.nnz == 0:
        raise ValueError("The training ratings are empty: there is nothing to learn from.")
    return matrix, user_ids, item_ids


@keras.saving.register_keras_serializable(package="keras_recae")
class RatingAutoencoder(LossPartsTraining, Recommender):
    """Base of the autoencoders that predict ratings from partially observed rating vectors.

    Subclasses give the network (`build`, `call`) and the loss parts of a batch of
    training rows (`loss_parts`, see `LossPartsTraining`).

    `adapt(train)` records, in non-trainable weights saved with the model, what predictions
    fall back on and are clipped to (see `complete`). `fit` takes the training ratings
    (`Interactions` or a scipy sparse users x items matrix), adapts to them and batches
    them itself, rows being users or, for item-based models (`item_based`), items; a
    `tf.data` pipeline of such rows may be given instead once the model is adapted.
    """

    explicit = True
    # Seed of `fit`'s shuffling; subclasses set it from their `seed` argument.
    seed: int | None = None

    @property
    def item_based(self) -> bool:
        """Whether the training rows are items (the columns of the training matrix users)."""
        return False

    def build(self, input_shape):
        n_items = input_shape[-1]
        # Statistics stay float32 under mixed precision: item means need the digits.
        self.global_mean = self.statistic("global_mean")
        self.rating_min = self.statistic("rating_min")
        self.rating_max = self.statistic("rating_max")
        self.n_ratings = self.statistic("n_ratings")
        self.item_counts = self.statistic("item_counts", (n_items,))
        self.item_means = self.statistic("item_means", (n_items,))
        self.adapted = self.statistic("adapted", dtype="bool")

    def statistic(self, name: str, shape=(), dtype="float32"):
        """A non-trainable weight of the training data, never cast to the compute dtype."""
        return self.add_weight(
            name=name,
            shape=shape,
            initializer="zeros",
            dtype=dtype,
            trainable=False,
            autocast=False,
        )

    def is_adapted(self) -> bool:
        return self.built and bool(keras.ops.convert_to_numpy(self.adapted))

    def adapt(self, data) -> None:
        """Records the training statistics and builds the model for the training ratings.

        Args:
            data: `Interactions` or scipy sparse matrix. The users x items training ratings.
        """
        matrix, _, item_ids = rating_matrix(data)
        n_items = matrix.shape[1]
        if self.n_items is not None and self.n_items != n_items:
            raise ValueError(
                f"This {type(self).__name__} was built for {self.n_items} items. Received "
                f"training ratings over {n_items} items."
            )
        if item_ids is not None and self.item_ids is None:
            self.set_item_ids(item_ids)
        super().adapt(matrix)
        ratings = matrix.data.astype(np.float64)
        counts = np.bincount(matrix.indices, minlength=n_items)
        sums = np.bincount(matrix.indices, weights=ratings, minlength=n_items)
        mean = ratings.mean()
        self.global_mean.assign(mean)
        self.rating_min.assign(ratings.min())
        self.rating_max.assign(ratings.max())
        self.n_ratings.assign(float(matrix.nnz))
        self.item_counts.assign(counts.astype(np.float32))
        self.item_means.assign(np.where(counts > 0, sums / np.maximum(counts, 1), mean))
        self.adapted.assign(True)

    def training_rows(self, data) -> sp.csr_matrix:
        """The rows the train step takes: the users' rows, or the items' for item-based models."""
        matrix, _, _ = rating_matrix(data)
        return matrix.T.tocsr() if self.item_based else matrix

    def n_training_rows(self, data) -> int:
        """The rows of one pass: the users, or the items for item-based models."""
        matrix = data.matrix if isinstance(data, Interactions) else data
        return matrix.shape[1] if self.item_based else matrix.shape[0]

    def training_batches(
        self,
        data,
        batch_size: int = DEFAULT_BATCH_SIZE,
        shuffle: bool = True,
        seed=None,
        initial_epoch: int = 0,
    ) -> tf.data.Dataset:
        """The `tf.data` pipeline of training rows (see `training_rows`) that `fit` builds."""
        return sparse_batches(
            self.training_rows(data),
            batch_size,
            shuffle=shuffle,
            seed=seed,
            initial_pass=initial_epoch,
        )

    def fit(self, x=None, y=None, batch_size=None, epochs=1, **kwargs):
        """`keras.Model.fit`, also on the training ratings themselves.

        Args:
            x: `Interactions` or scipy sparse users x items matrix: the model adapts to it
                and batches its rows (`batch_size` of them, 128 by default, reshuffled each
                epoch when `shuffle`). Or a `tf.data.Dataset` of sparse training rows, once
                the model is adapted. Other arguments are those of `keras.Model.fit`.
        """
        shuffle = kwargs.pop("shuffle", True)
        if isinstance(x, Interactions) or sp.issparse(x):
            self.adapt(x)
            x = self.training_batches(x, batch_size or DEFAULT_BATCH_SIZE, shuffle, self.seed)
            # The pipeline shuffles; Keras would warn that it cannot.
            batch_size, shuffle = None, False
        elif not self.is_adapted():
            raise ValueError(
                f"{type(self).__name__} falls back on and clips to statistics of the training "
                "ratings: call `adapt(train)` before `fit` on a dataset, or pass the training "
                "`Interactions` or sparse matrix to `fit`."
            )
        return super().fit(x, y, batch_size=batch_size, epochs=epochs, shuffle=shuffle, **kwargs)

    def complete(self, predictions, inputs: tf.SparseTensor, known_rows=None):
        """Predictions with the fallback for unknown users and items, clipped to the range.

        - An item without training ratings gets the mean of the user's given ratings, or
          the training mean when none is given.
        - Otherwise a user with no ratings (an empty history, unless `known_rows` says the
          row is known) gets the item's training mean.
        - Every prediction is clipped to the range of the training ratings.

        Before `adapt` the predictions pass unchanged.
        """
        predictions = keras.ops.cast(predictions, "float32")
        values = keras.ops.cast(inputs.values, "float32")
        counts = row_counts(inputs)
        has_history = counts > 0
        user_means = keras.ops.where(
            has_history, row_sums(inputs, values) / keras.ops.maximum(counts, 1.0), self.global_mean
        )
        rows = has_history if known_rows is None else known_rows
        completed = keras.ops.where(rows[:, None], predictions, self.item_means[None, :])
        completed = keras.ops.where(self.item_counts[None, :] > 0, completed, user_means[:, None])
        completed = keras.ops.clip(completed, self.rating_min, self.rating_max)
        return keras.ops.where(self.adapted, completed, predictions)
