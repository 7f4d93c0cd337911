"""AutoRec: the one-hidden-layer autoencoder for rating prediction, item- and user-based."""

from __future__ import annotations

import keras

from keras_recae.checks import check_non_negative, check_positive_int
from keras_recae.distribute import global_sum, replica_share
from keras_recae.layers.sparse_dense import SparseDense
from keras_recae.losses import masked_squared_error
from keras_recae.models.building import build_stack, features
from keras_recae.models.item_based import ItemBasedRatings
from keras_recae.search_space import choice, float_range
from keras_recae.sparse_ops import row_counts


@keras.saving.register_keras_serializable(package="keras_recae")
class AutoRec(ItemBasedRatings):
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
        self.kind = self.check_kind(kind)
        self.hidden_units = check_positive_int("hidden_units", hidden_units)
        self.activation = keras.activations.serialize(keras.activations.get(activation))
        self.l2 = check_non_negative("l2", l2)
        self.seed = seed
        self.encoder = SparseDense(
            self.hidden_units,
            activation=self.activation,
            kernel_initializer=keras.initializers.GlorotUniform(seed=seed),
            name="encoder",
        )

    # -- building ---------------------------------------------------------------------

    def build(self, input_shape):
        super().build(input_shape)
        columns = self.network_columns(input_shape[-1])
        self.build_item_statistics()
        seed = None if self.seed is None else self.seed + 1
        self.decoder = keras.layers.Dense(
            columns, kernel_initializer=keras.initializers.GlorotUniform(seed=seed), name="decoder"
        )
        build_stack([self.encoder, self.decoder], columns)

    @property
    def user_output(self):
        return self.decoder

    @property
    def code_units(self) -> int:
        return self.hidden_units

    def fold_in_penalty(self):
        """The paper's `lambda / 2` on the output weights, in the squared-error scale."""
        return self.l2 / 2.0

    def item_hidden(self, rows):
        return self.encoder(rows)

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
        return self.folded_in(inputs)

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
