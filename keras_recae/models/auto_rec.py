"""AutoRec: the one-hidden-layer autoencoder for rating prediction, item- and user-based."""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from keras_recae.checks import check_non_negative, check_positive_int
from keras_recae.data import ids
from keras_recae.distribute import global_sum, replica_share
from keras_recae.layers.sparse_dense import SparseDense
from keras_recae.losses import masked_squared_error
from keras_recae.models.building import build_stack, features
from keras_recae.models.rating_autoencoder import RatingAutoencoder, rating_matrix
from keras_recae.search_space import choice, float_range
from keras_recae.sparse_ops import batch_size_of, in_xla_context, row_counts

_KINDS = ("item", "user")
# The fold-in's bias is not penalised, as in the paper's objective; this keeps its normal
# equations positive definite for an empty history.
_BIAS_PENALTY = 1e-4


@keras.saving.register_keras_serializable(package="keras_recae")
class AutoRec(RatingAutoencoder):
    """AutoRec: an autoencoder over partially observed rating vectors (Sedhain et al. 2015).

    A rating vector `r` (observed entries only, the rest 0) is encoded as
    `h = g(V r + mu)` with `hidden_units` units and reconstructed as `W h + b` (identity
    output). Training minimises the squared error over the observed entries only plus
    `l2 / 2 * (||W||^2 + ||V||^2)`; each batch's loss is that objective per training
    rating (the masked MSE of the batch plus the penalty divided by the number of
    training ratings), so `l2` is the paper's lambda.

    - `kind="item"` (I-AutoRec): the rows are items, `r_i` being item `i`'s ratings across
      the training users. The code `h_i = g(V r_i + mu)` is computed from the training
      ratings, which the model keeps (non-trainable weights, saved with it), and the
      prediction for training user `u` is `r_ui = W_u . h_i + b_u`, the paper's: this is
      `score_users(inputs, user_indices)`, which the rating evaluation and the
      `recommend_for_user` serving signature use, with `user_ids` the raw ids of the
      training users. `call(x)` on a history alone folds the user in as a new user
      column: a new user has no input weights (the item codes stay as they are) and their
      output weights `(w, c)` minimise the paper's objective restricted to them,
      `sum_i (w . h_i + c - r_i)^2 + l2 / 2 * ||w||^2` over the given ratings, a ridge
      regression solved per user in closed form (`O(n_given k^2 + k^3)`); the prediction
      is `w . h_i + c`. `score_users` folds in unknown users (index -1) the same way.
    - `kind="user"` (U-AutoRec): the rows are users, and `call(x)` reconstructs the user's
      history `x`, which for a training user is the paper's prediction.

    Predictions fall back on training means where the model knows nothing and are
    clipped to the training range (`RatingAutoencoder.complete`): an item without
    training ratings gets the mean of the user's given ratings (the training mean for an
    empty history); otherwise a user without ratings gets the item's training mean.

    `fit` takes the training ratings (`Interactions` or a scipy sparse users x items
    matrix) and batches the right rows itself; on a `tf.data` pipeline of rows
    (`training_batches`), call `adapt(train)` first. An item-based model is built by
    `adapt`, as its weights depend on the number of users.

    I-AutoRec trains best on full batches (all items at once, as the paper's L-BFGS did).
    There, Adam at a constant 1e-2 makes the fit alternate between two states from one
    epoch to the next (validation RMSE 0.888 and 0.900 on MovieLens-100K u1), so the epoch
    training stops at decides the result; decaying the learning rate (2e-2, times 0.99 per
    epoch, `keras.optimizers.schedules.ExponentialDecay`) lets it settle.

    Args:
        kind: str. `"item"` (I-AutoRec) or `"user"` (U-AutoRec). Defaults to `"item"`.
        hidden_units: int. Units of the hidden layer. Defaults to `500`.
        activation: str. Activation `g` of the hidden layer. Defaults to `"sigmoid"`.
        l2: float. The paper's lambda: the penalty `l2 / 2` on the squared weights.
            Defaults to `100.0`, the best of {1, 10, 30, 50, 100, 200, 300} on
            MovieLens-100K's validation ratings.
        seed: int | None. Seed of the initialisers and of `fit`'s shuffling.
            Defaults to `None`.

    Example:

    ```python
    import keras
    from keras_recae.data import synthetic_interactions
    from keras_recae.models import AutoRec

    data = synthetic_interactions(n_users=200, n_items=100, seed=0, explicit=True)
    model = AutoRec(kind="item", hidden_units=32, seed=0)
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    model.fit(data, batch_size=32, epochs=5)
    ```

    References:
        Sedhain, Menon, Sanner, Xie. AutoRec: Autoencoders Meet Collaborative
        Filtering. WWW 2015.
    """

    search_space = {
        "l2": float_range(1.0, 1000.0, log=True),
        "hidden_units": choice(200, 500, 1000),
        "lr": float_range(1e-3, 5e-2, log=True),
    }
    part_names = ("loss", "mse")

    def __init__(
        self,
        kind: str = "item",
        hidden_units: int = 500,
        activation: str = "sigmoid",
        l2: float = 100.0,
        seed: int | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if kind not in _KINDS:
            raise ValueError(f"`kind` should be 'item' or 'user'. Received: kind={kind!r}")
        self.kind = kind
        self.hidden_units = check_positive_int("hidden_units", hidden_units)
        self.activation = keras.activations.serialize(keras.activations.get(activation))
        self.l2 = check_non_negative("l2", l2)
        self.seed = seed
        self._n_users = None
        self._n_train_ratings = None
        self.encoder = SparseDense(
            self.hidden_units,
            activation=self.activation,
            kernel_initializer=keras.initializers.GlorotUniform(seed=seed),
            name="encoder",
        )

    @property
    def item_based(self) -> bool:
        return self.kind == "item"

    @property
    def user_conditioned(self) -> bool:
        """I-AutoRec keeps output weights per training user (`score_users`)."""
        return self.item_based

    # -- building ---------------------------------------------------------------------

    def build(self, input_shape):
        super().build(input_shape)
        n_items = input_shape[-1]
        columns = n_items
        if self.item_based:
            if self._n_users is None:
                raise ValueError(
                    "An item-based AutoRec is built by `adapt(train)` (or `fit(train)`): its "
                    "weights depend on the number of training users."
                )
            columns = self._n_users
            self.user_counts = self.statistic("user_counts", (columns,))
            stored = (self._n_train_ratings,)
            self.train_items = self.statistic("train_items", stored, "int32")
            self.train_users = self.statistic("train_users", stored, "int32")
            self.train_ratings = self.statistic("train_ratings", stored)
        seed = None if self.seed is None else self.seed + 1
        self.decoder = keras.layers.Dense(
            columns, kernel_initializer=keras.initializers.GlorotUniform(seed=seed), name="decoder"
        )
        build_stack([self.encoder, self.decoder], columns)

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
                    f"This item-based AutoRec was built for {self._n_users} users and "
                    f"{self._n_train_ratings} training ratings. Received {n_users} users and "
                    f"{n_ratings} ratings: create a new model for other training data."
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

    # -- training ---------------------------------------------------------------------

    def reconstruct(self, rows):
        """`W g(V r + mu) + b` for sparse training rows (items, or users for `kind="user"`)."""
        return self.decoder(self.encoder(rows))

    def loss_parts(self, data, training: bool) -> dict:
        rows = features(data)
        reconstruction = self.reconstruct(rows)
        # Under a strategy: this replica's share of the global batch's mean and penalty.
        observed = keras.ops.maximum(global_sum(keras.ops.sum(row_counts(rows))), 1.0)
        mse = keras.ops.sum(masked_squared_error(reconstruction, rows)) / observed
        squares = keras.ops.sum(keras.ops.square(keras.ops.cast(self.encoder.kernel, "float32")))
        squares += keras.ops.sum(keras.ops.square(keras.ops.cast(self.decoder.kernel, "float32")))
        penalty = self.l2 / 2.0 * squares / keras.ops.maximum(self.n_ratings, 1.0)
        return {"loss": mse + replica_share(penalty), "mse": mse}

    # -- prediction -------------------------------------------------------------------

    def call(self, inputs, training=False):
        if not self.item_based:
            return self.complete(self.reconstruct(inputs), inputs)
        return self.complete(self.fold_in(inputs, self.item_codes()), inputs)

    def item_codes(self):
        """I-AutoRec: the code `h_i = g(V r_i + mu)` of every item, from the training ratings."""
        indices = keras.ops.stack(
            [
                keras.ops.cast(self.train_items, "int64"),
                keras.ops.cast(self.train_users, "int64"),
            ],
            axis=1,
        )
        ratings = tf.SparseTensor(indices, self.train_ratings, [self.n_items, self._n_users])
        return keras.ops.cast(self.encoder(ratings), "float32")

    def fold_in(self, inputs: tf.SparseTensor, codes):
        """I-AutoRec: per history, the ridge regression of the given ratings on the codes.

        Returns the predictions `w . h_i + c` of each row's least-squares output weights
        `(w, c)`, shape [batch, n_items], before the fallback and clipping.
        """
        n_items = self.n_items
        design = keras.ops.concatenate([codes, keras.ops.ones((n_items, 1), "float32")], axis=1)
        penalty = keras.ops.diag(
            keras.ops.concatenate(
                [
                    keras.ops.full((self.hidden_units,), self.l2 / 2.0, "float32"),
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

        signature = tf.TensorSpec([self.hidden_units + 1], "float32")
        weights = tf.map_fn(solve, (columns, ratings, valid), fn_output_signature=signature)
        return keras.ops.matmul(weights, keras.ops.transpose(design))

    def _score_item_based(self, inputs: tf.SparseTensor, user_indices):
        """I-AutoRec's predictions for training users (by index), folding in the others."""
        codes = self.item_codes()
        users = keras.ops.cast(user_indices, "int64")
        safe = keras.ops.maximum(users, 0)
        known = (users >= 0) & (keras.ops.take(self.user_counts, safe) > 0)
        kernel = keras.ops.cast(keras.ops.take(self.decoder.kernel, safe, axis=1), "float32")
        bias = keras.ops.cast(keras.ops.take(self.decoder.bias, safe), "float32")
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
        """I-AutoRec: predictions for training users.

        `user_indices` [batch] are rows of the training matrix (positions in `user_ids`);
        -1, or a user without training ratings, is folded in from `inputs` as `call` does.
        A user-based AutoRec has no per-user weights and no `score_users`.
        """
        if not self.item_based:
            return super().score_users(inputs, user_indices)
        return self._score_item_based(inputs, user_indices)

    # -- configuration ----------------------------------------------------------------

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "kind": self.kind,
                "hidden_units": self.hidden_units,
                "activation": self.activation,
                "l2": self.l2,
                "seed": self.seed,
            }
        )
        return config


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
