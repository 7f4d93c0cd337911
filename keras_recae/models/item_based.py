"""Item-based rating autoencoders: rows are items, and the last layer has a column per user."""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from keras_recae.data import ids
from keras_recae.models.rating_autoencoder import RatingAutoencoder, rating_matrix
from keras_recae.sparse_ops import batch_size_of, in_xla_context, row_counts

KINDS = ("item", "user")
# The fold-in's bias is not penalised, as in the objectives; this keeps its normal
# equations positive definite for an empty history.
_BIAS_PENALTY = 1e-4


class ItemBasedRatings(RatingAutoencoder):
    """Base of rating autoencoders that can read items' rating vectors (`kind="item"`).

    With `kind="item"` (I-AutoRec's scheme) a training row is an item's ratings across the
    training users, and the network's last layer, linear, has one output per training
    user: the prediction for training user `u` and item `i` is `W_u . h_i + b_u`, `h_i`
    being the input of the last layer for item `i`'s training ratings (`item_codes`). The
    model keeps the training ratings (non-trainable weights, saved with it) to compute the
    codes, and `score_users(inputs, user_indices)` predicts for training users by their
    rows; `user_ids` are the raw ids of the training users. `call(x)` on a history alone
    folds the user in as a new user column: the item codes stay as they are, and the
    user's output weights `(w, c)` minimise the training objective restricted to them,
    `sum_i (w . h_i + c - r_i)^2 + fold_in_penalty() * ||w||^2` over the given ratings, a
    ridge regression solved per user in closed form (`O(n_given k^2 + k^3)`).
    `score_users` folds in unknown users (index -1) the same way.

    With `kind="user"` the rows are users, and `call(x)` reconstructs the history `x`.

    Subclasses set `kind` and give `item_hidden(rows)` (the input of the last layer for
    sparse training rows, float32), `user_output` (the last layer, a `Dense`),
    `code_units` (its input width) and `fold_in_penalty()`; their `build` calls
    `build_item_statistics()` and builds the network on `network_columns(n_items)` inputs.
    An item-based model is built by `adapt`, as its weights depend on the number of users.
    """

    kind = "user"

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._n_users = None
        self._n_train_ratings = None

    @staticmethod
    def check_kind(kind: str) -> str:
        if kind not in KINDS:
            raise ValueError(f"`kind` should be 'item' or 'user'. Received: kind={kind!r}")
        return kind

    @property
    def item_based(self) -> bool:
        return self.kind == "item"

    @property
    def user_conditioned(self) -> bool:
        """Item-based models keep output weights per training user (`score_users`)."""
        return self.item_based

    # -- building ---------------------------------------------------------------------

    def network_columns(self, n_items: int) -> int:
        """The width of the network's rows: the items, or the training users if item-based."""
        if not self.item_based:
            return n_items
        if self._n_users is None:
            raise ValueError(
                f"An item-based {type(self).__name__} is built by `adapt(train)` (or "
                "`fit(train)`): its weights depend on the number of training users."
            )
        return self._n_users

    def build_item_statistics(self) -> None:
        """Item-based: the weights holding the training ratings and the users' counts."""
        if not self.item_based:
            return
        self.user_counts = self.statistic("user_counts", (self._n_users,))
        stored = (self._n_train_ratings,)
        self.train_items = self.statistic("train_items", stored, "int32")
        self.train_users = self.statistic("train_users", stored, "int32")
        self.train_ratings = self.statistic("train_ratings", stored)

    def get_build_config(self):
        config = super().get_build_config()
        if config is not None and self.item_based:
            config = {
                "input_shape": config["input_shape"],
                "n_users": self._n_users,
                "n_train_ratings": self._n_train_ratings,
            }
        return config

    def build_from_config(self, config):
        if not config:
            return
        self._n_users = config.get("n_users")
        self._n_train_ratings = config.get("n_train_ratings")
        self.build(config["input_shape"])

    def adapt(self, data) -> None:
        """Records the training statistics (and, item-based, the training ratings); builds.

        Args:
            data: `Interactions` or scipy sparse matrix. The users x items training ratings.
        """
        matrix, user_ids, _ = rating_matrix(data)
        if self.item_based:
            n_users, n_ratings = matrix.shape[0], matrix.nnz
            if self.built and (n_users, n_ratings) != (self._n_users, self._n_train_ratings):
                raise ValueError(
                    f"This item-based {type(self).__name__} was built for {self._n_users} "
                    f"users and {self._n_train_ratings} training ratings. Received {n_users} "
                    f"users and {n_ratings} ratings: create a new model for other training data."
                )
            self._n_users, self._n_train_ratings = n_users, n_ratings
            if self.user_ids is not None and len(self.user_ids) != n_users:
                raise ValueError(
                    f"`user_ids` holds {len(self.user_ids)} ids but the training ratings have "
                    f"{n_users} users."
                )
        super().adapt(data)
        if not self.item_based:
            return
        if self.user_ids is None:
            self.set_user_ids(user_ids if user_ids is not None else np.arange(self._n_users))
        by_item = matrix.T.tocsr()
        self.train_items.assign(np.repeat(np.arange(by_item.shape[0]), np.diff(by_item.indptr)))
        self.train_users.assign(by_item.indices)
        self.train_ratings.assign(by_item.data)
        self.user_counts.assign(np.diff(matrix.indptr).astype(np.float32))

    def set_user_ids(self, user_ids) -> None:
        """Records the raw id of each training user, in row order (item-based models)."""
        user_ids = ids.vocabulary(user_ids, "user_ids")
        if self._n_users is not None and len(user_ids) != self._n_users:
            raise ValueError(
                f"`user_ids` should hold one id per training user ({self._n_users}). "
                f"Received: {len(user_ids)} ids."
            )
        super().set_user_ids(user_ids)

    # -- prediction -------------------------------------------------------------------

    def item_codes(self):
        """Item-based: `h_i`, the last layer's input for each item's training ratings."""
        indices = keras.ops.stack(
            [
                keras.ops.cast(self.train_items, "int64"),
                keras.ops.cast(self.train_users, "int64"),
            ],
            axis=1,
        )
        ratings = tf.SparseTensor(indices, self.train_ratings, [self.n_items, self._n_users])
        return keras.ops.cast(self.item_hidden(ratings), "float32")

    def fold_in(self, inputs: tf.SparseTensor, codes):
        """Item-based: per history, the ridge regression of the given ratings on the codes.

        Returns the predictions `w . h_i + c` of each row's least-squares output weights
        `(w, c)`, shape [batch, n_items], before the fallback and clipping.
        """
        n_items = self.n_items
        design = keras.ops.concatenate([codes, keras.ops.ones((n_items, 1), "float32")], axis=1)
        penalty = keras.ops.diag(
            keras.ops.concatenate(
                [
                    keras.ops.ones((self.code_units,), "float32")
                    * keras.ops.cast(self.fold_in_penalty(), "float32"),
                    keras.ops.full((1,), _BIAS_PENALTY, "float32"),
                ]
            )
        )
        columns, ratings, valid = _padded_rows(inputs, n_items)

        def solve(row):
            row_columns, row_ratings, row_valid = row
            rated = keras.ops.take(design, row_columns, axis=0) * row_valid[:, None]
            gram = keras.ops.matmul(keras.ops.transpose(rated), rated) + penalty
            target = keras.ops.matmul(
                keras.ops.transpose(rated), (row_ratings * row_valid)[:, None]
            )
            return keras.ops.linalg.solve(gram, target)[:, 0]

        signature = tf.TensorSpec([self.code_units + 1], "float32")
        weights = tf.map_fn(solve, (columns, ratings, valid), fn_output_signature=signature)
        return keras.ops.matmul(weights, keras.ops.transpose(design))

    def folded_in(self, inputs):
        """Item-based `call`: the fold-in's predictions, with the fallback and clipping."""
        return self.complete(self.fold_in(inputs, self.item_codes()), inputs)

    def _score_item_based(self, inputs: tf.SparseTensor, user_indices):
        """Predictions for training users (by index), folding in the others."""
        codes = self.item_codes()
        users = keras.ops.cast(user_indices, "int64")
        safe = keras.ops.maximum(users, 0)
        known = (users >= 0) & (keras.ops.take(self.user_counts, safe) > 0)
        output = self.user_output
        kernel = keras.ops.cast(keras.ops.take(output.kernel, safe, axis=1), "float32")
        bias = keras.ops.cast(keras.ops.take(output.bias, safe), "float32")
        predictions = keras.ops.matmul(keras.ops.transpose(kernel), keras.ops.transpose(codes))
        predictions = predictions + bias[:, None]
        has_history = row_counts(inputs) > 0
        # The fold-in solves one regression per row: only run it when a row needs it.
        folded = keras.ops.cond(
            keras.ops.any(has_history & ~known),
            lambda: self.fold_in(inputs, codes),
            lambda: keras.ops.zeros_like(predictions),
        )
        predictions = keras.ops.where(known[:, None], predictions, folded)
        return self.complete(predictions, inputs, known_rows=known | has_history)

    def score_users(self, inputs: tf.SparseTensor, user_indices):
        """Item-based: predictions for training users.

        `user_indices` [batch] are rows of the training matrix (positions in `user_ids`);
        -1, or a user without training ratings, is folded in from `inputs` as `call` does.
        A user-based model has no per-user weights and no `score_users`.
        """
        if not self.item_based:
            return super().score_users(inputs, user_indices)
        return self._score_item_based(inputs, user_indices)


def _padded_rows(inputs: tf.SparseTensor, n_columns: int):
    """The stored entries of each row, left-aligned in [batch, width] tensors.

    Returns the columns, the values and a 0/1 mask of the slots in use. The width is the
    longest row, or `n_columns` under XLA, which needs static shapes.
    """
    if not in_xla_context():
        inputs = tf.sparse.reorder(inputs)
    batch = batch_size_of(inputs)
    rows = inputs.indices[:, 0]
    counts = keras.ops.cast(row_counts(inputs), "int64")
    starts = keras.ops.cumsum(counts) - counts
    positions = keras.ops.arange(keras.ops.shape(rows)[0], dtype="int64")
    positions = positions - keras.ops.take(starts, rows)
    width = n_columns if in_xla_context() else keras.ops.maximum(keras.ops.max(counts), 1)
    slots = keras.ops.stack([rows, positions], axis=1)
    shape = keras.ops.stack([keras.ops.cast(batch, "int64"), keras.ops.cast(width, "int64")])
    values = keras.ops.cast(inputs.values, "float32")
    columns = tf.scatter_nd(slots, inputs.indices[:, 1], shape)
    ratings = tf.scatter_nd(slots, values, shape)
    valid = tf.scatter_nd(slots, keras.ops.ones_like(values), shape)
    return columns, ratings, valid
