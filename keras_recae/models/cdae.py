"""CDAE: the collaborative denoising autoencoder with a node per user."""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from keras_recae.checks import (
    check_choice,
    check_non_negative,
    check_positive_int,
    check_rate,
    describe_structure,
)
from keras_recae.data import ids
from keras_recae.data.pipeline import sparse_batches
from keras_recae.distribute import as_global_batch, replica_mean
from keras_recae.layers.sparse_dense import SparseDense
from keras_recae.layers.sparse_dropout import SparseDropout
from keras_recae.losses import pointwise_loss, reconstruction_loss
from keras_recae.models.building import start_output_bias
from keras_recae.models.loss_parts_training import LossPartsTraining
from keras_recae.models.recommender import Recommender
from keras_recae.search_space import choice, float_range
from keras_recae.sparse_ops import batch_size_of, row_counts

_ACTIVATIONS = ("sigmoid", "identity")


@keras.saving.register_keras_serializable(package="keras_recae")
class CDAE(LossPartsTraining, Recommender):
    """Collaborative denoising autoencoder (CDAE) for top-N recommendation.

    The user's row is corrupted by dropout (each stored entry zeroed with probability
    `corruption`, the others scaled by `1 / (1 - corruption)`), multiplied by the item
    weights `W`, and added to the user's own input node `V_u` and a bias `b`; a sigmoid
    (or identity) gives the hidden code `z_u`, and `W' z_u + b'` the output over the
    catalogue. The loss, summed over the items of each user and averaged over users, is the
    logistic loss (outputs are logits), the squared loss, or the multinomial NLL. With
    `negative_ratio`, the logistic and squared losses are computed only on the user's
    observed items and `negative_ratio` times as many items sampled uniformly among the
    unobserved ones (a sample that hits an observed item is dropped), from the decoder
    columns of those items only, so the full output is never computed in training.

    Before the first update the output biases are set to the best constant prediction
    for the first batch (the log-odds of its share of observed entries for the logistic
    loss, their mean for the squared loss): from zero biases the sigmoid hidden units
    saturate to produce that offset and training stalls at the popularity ranking.

    The user nodes are learnt for the rows of the training matrix: fit on
    `training_batches(matrix, batch_size)`, whose batches carry the row of each
    user. `call(x)` scores with the user node at zero (fold-in), which is how users
    unseen in training are scored; `score_users(x, user_indices)` uses the nodes of
    training users (index -1 for an unknown user, scored as by `call`).

    Under a `tf.distribute` strategy each replica's loss is its share of the global
    batch's, and the corruption masks and negative samples are drawn for the whole global
    batch (see `keras_recae.distribute`).

    Args:
        hidden_dim: int. Size of the hidden code. Defaults to `100` (the paper's 50
            learns too slowly to be a default, 200 overfits early on Gowalla: RESULTS.md,
            "Defaults that transfer").
        corruption: float. Dropout probability of the input entries, in [0, 1).
            Defaults to `0.2`.
        activation: str. The hidden mapping, `"sigmoid"` or `"identity"`.
            Defaults to `"sigmoid"`.
        loss: str. `"logistic"`, `"squared"` or `"multinomial"`. Defaults to `"logistic"`.
        negative_ratio: int | None. Negative samples per observed item (logistic and
            squared losses); `None` computes the loss over the whole catalogue.
            Defaults to `None`.
        l2: float. L2 penalty on `W`, `W'`, the user nodes `V` and the biases `b`,
            `b'`, added to the per-user mean loss (the paper's lambda / 2).
            Defaults to `1e-5`.
        n_users: int | None. The number of user nodes; set by `set_user_ids` when
            `None`. Defaults to `None`.
        seed: int | None. Seed of the corruption and of the negative samples.
            Defaults to `None`.

    Example:

    ```python
    import keras
    from keras_recae.data import synthetic_interactions
    from keras_recae.models import CDAE

    data = synthetic_interactions(seed=0)
    model = CDAE(hidden_dim=32, negative_ratio=5, seed=0)
    model.set_user_ids(data.user_ids)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    model.fit(model.training_batches(data.matrix, 100, seed=0), epochs=2)
    ```

    References:
        Wu, DuBois, Zheng, Ester. Collaborative Denoising Auto-Encoders for Top-N
        Recommender Systems. WSDM 2016.
    """

    search_space = {
        "corruption": float_range(0.0, 0.8),
        "hidden_dim": choice(50, 100, 200),
        "loss": choice("logistic", "squared", "multinomial"),
        "lr": float_range(1e-3, 3e-2, log=True),
    }
    # The Gowalla study's rate (1e-2 peaks at epoch 6 there and the user nodes overfit), with
    # batches small enough for fifty updates a pass, so that thirty epochs train the small
    # data sets as far as the large ones (RESULTS.md, "Defaults that transfer").
    default_lr = 1.5e-3
    min_updates_per_epoch = 50
    part_names = ("loss", "reconstruction")
    user_conditioned = True
    has_encoder = True

    def __init__(
        self,
        hidden_dim: int = 100,
        corruption: float = 0.2,
        activation: str = "sigmoid",
        loss: str = "logistic",
        negative_ratio: int | None = None,
        l2: float = 1e-5,
        n_users: int | None = None,
        seed: int | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.hidden_dim = check_positive_int("hidden_dim", hidden_dim)
        self.corruption = check_rate("corruption", corruption)
        self.activation = check_choice("activation", activation, _ACTIVATIONS)
        # `loss` is Keras's attribute for a compiled loss; the choice is kept beside it.
        self.loss_kind = check_choice("loss", loss, ("logistic", "squared", "multinomial"))
        negative_ratio = check_positive_int("negative_ratio", negative_ratio, allow_none=True)
        if negative_ratio is not None:
            if loss == "multinomial":
                raise ValueError(
                    "`negative_ratio` applies to the logistic and squared losses; the "
                    "multinomial loss needs the whole catalogue. Received: loss='multinomial'"
                )
        self.negative_ratio = negative_ratio
        self.l2 = check_non_negative("l2", l2)
        self.n_users = check_positive_int("n_users", n_users, allow_none=True)
        self.seed = seed
        self.input_corruption = SparseDropout(self.corruption, seed=seed, name="corruption")
        self.seed_generator = keras.random.SeedGenerator(None if seed is None else seed + 1)
        regularizer = keras.regularizers.L2(self.l2) if self.l2 else None
        self.encoder_layer = SparseDense(
            hidden_dim, use_bias=False, kernel_regularizer=regularizer, name="encoder"
        )

    def build(self, input_shape):
        if self.n_users is None:
            raise ValueError(
                "CDAE needs the number of training users before it is built: pass "
                "`n_users` or call `set_user_ids` first."
            )
        n_items = input_shape[-1]
        regularizer = keras.regularizers.L2(self.l2) if self.l2 else None
        self.encoder_layer.build((None, n_items))
        self.user_embedding = self.add_weight(
            name="user_embedding",
            shape=(self.n_users, self.hidden_dim),
            initializer=keras.initializers.RandomUniform(-0.05, 0.05),
            regularizer=regularizer,
        )
        self.hidden_bias = self.add_weight(
            name="hidden_bias",
            shape=(self.hidden_dim,),
            initializer="zeros",
            regularizer=regularizer,
        )
        self.output_layer = keras.layers.Dense(
            n_items, kernel_regularizer=regularizer, bias_regularizer=regularizer, name="output"
        )
        self.output_layer.build((None, self.hidden_dim))
        if self.user_ids is None:
            self.user_ids = np.arange(self.n_users, dtype=np.int64)
        self.built = True

    def set_user_ids(self, user_ids) -> None:
        """Records the raw id of each training row, which gets a user node."""
        user_ids = ids.vocabulary(user_ids, "user_ids")
        if self.n_users is None and not self.built:
            self.n_users = len(user_ids)
        if len(user_ids) != self.n_users:
            raise ValueError(
                f"`user_ids` should hold one id per user node of the model ({self.n_users}). "
                f"Received: {len(user_ids)} ids."
            )
        super().set_user_ids(user_ids)

    def training_batches(
        self,
        matrix,
        batch_size: int = 500,
        shuffle: bool = True,
        seed: int | None = None,
        initial_epoch: int = 0,
    ) -> tf.data.Dataset:
        """`(x, rows)` batches of the training matrix, row `i` being user node `i`."""
        return sparse_batches(
            matrix,
            batch_size,
            shuffle=shuffle,
            seed=seed,
            with_rows=True,
            initial_pass=initial_epoch,
        )

    def hidden(self, inputs, user_indices=None, training=False):
        """The hidden code; `user_indices` None or -1 leave the user node at zero."""
        h = self.encoder_layer(self.input_corruption(inputs, training=training))
        h = h + keras.ops.cast(self.hidden_bias, h.dtype)
        if user_indices is not None:
            user_indices = keras.ops.cast(user_indices, "int32")
            known = keras.ops.cast(user_indices >= 0, h.dtype)[:, None]
            nodes = keras.ops.take(self.user_embedding, keras.ops.maximum(user_indices, 0), 0)
            h = h + keras.ops.cast(nodes, h.dtype) * known
        return keras.activations.sigmoid(h) if self.activation == "sigmoid" else h

    def call(self, inputs, training=False):
        return self.output_layer(self.hidden(inputs, training=training))

    def score_users(self, inputs, user_indices):
        """Scores with the nodes of training users (`user_indices`, -1 for unknown users)."""
        return self.output_layer(self.hidden(inputs, user_indices, training=False))

    def encode(self, inputs):
        return self.hidden(inputs)

    def negative_samples(self, inputs: tf.SparseTensor):
        """`negative_ratio` uniform item samples per stored entry, in the entry's row.

        Returns:
            `(rows, items, accepted)`, each of shape `[nnz * negative_ratio]`: `accepted`
            is 0 where the sampled item is one of the row's stored items, else 1.
        """
        n_items = inputs.shape[-1]
        rows = keras.ops.repeat(inputs.indices[:, 0], self.negative_ratio)
        # Under a strategy the samples are drawn for the entries of the whole global batch.
        items = as_global_batch(
            lambda r: keras.random.randint(
                keras.ops.shape(r), 0, n_items, dtype="int64", seed=self.seed_generator
            ),
            rows,
        )
        observed = keras.ops.sort(inputs.indices[:, 0] * n_items + inputs.indices[:, 1])
        # A sentinel above every key keeps the lookup in range, also for an empty batch.
        sentinel = keras.ops.full((1,), np.iinfo(np.int64).max, dtype="int64")
        observed = keras.ops.concatenate([observed, sentinel])
        keys = rows * n_items + items
        positions = keras.ops.searchsorted(observed, keys)
        accepted = keras.ops.cast(keras.ops.take(observed, positions) != keys, "float32")
        return rows, items, accepted

    def pair_outputs(self, hidden, rows, items):
        """The outputs at (row, item) pairs, from the decoder columns of those items."""
        kernel = keras.ops.cast(self.output_layer.kernel, hidden.dtype)
        bias = keras.ops.cast(self.output_layer.bias, hidden.dtype)
        # A gather of rows is several times faster than one of columns.
        columns = keras.ops.take(keras.ops.transpose(kernel), items, axis=0)
        return keras.ops.sum(keras.ops.take(hidden, rows, 0) * columns, axis=-1) + (
            keras.ops.take(bias, items, 0)
        )

    def user_losses(self, inputs, user_indices=None, training=False, negatives=None):
        """The reconstruction loss of each row, shape [batch].

        With `negative_ratio`, over the stored entries and `negatives` (drawn by
        `negative_samples` when not given); otherwise over the whole catalogue.
        """
        hidden = self.hidden(inputs, user_indices, training=training)
        if self.negative_ratio is None:
            return reconstruction_loss(self.output_layer(hidden), inputs, self.loss_kind)
        if negatives is None:
            negatives = self.negative_samples(inputs)
        negative_rows, negative_items, accepted = negatives
        rows = keras.ops.concatenate([inputs.indices[:, 0], negative_rows])
        items = keras.ops.concatenate([inputs.indices[:, 1], negative_items])
        labels = keras.ops.concatenate(
            [keras.ops.cast(inputs.values, "float32"), keras.ops.zeros_like(accepted)]
        )
        weights = keras.ops.concatenate([keras.ops.ones_like(inputs.values, "float32"), accepted])
        losses = pointwise_loss(self.pair_outputs(hidden, rows, items), labels, self.loss_kind)
        return keras.ops.segment_sum(losses * weights, rows, batch_size_of(inputs))

    def loss_parts(self, data, training: bool) -> dict:
        if training:
            inputs, user_indices = self._with_rows(data)
        elif isinstance(data, (tuple, list)) and len(data) == 2:
            inputs, user_indices = data
        else:
            inputs, user_indices = (data[0] if isinstance(data, (tuple, list)) else data), None
        self.ensure_built(inputs)
        present = row_counts(inputs) > 0
        # Under a strategy, this replica's share of the global batch's mean.
        reconstruction = replica_mean(self.user_losses(inputs, user_indices, training), present)
        return {"loss": reconstruction, "reconstruction": reconstruction}

    def before_update(self, data) -> None:
        inputs, _ = self._with_rows(data)
        self.ensure_built(inputs)
        start_output_bias(self.output_layer, inputs, self.loss_kind, self.optimizer.iterations)

    def _with_rows(self, data):
        if (
            not isinstance(data, (tuple, list))
            or len(data) != 2
            or isinstance(data[1], tf.SparseTensor)
            or data[1].shape.rank != 1
        ):
            raise ValueError(
                "CDAE learns a node per training user: fit it on "
                "`model.training_batches(matrix, batch_size)` (or `sparse_batches(..., "
                "with_rows=True)`), whose elements are `(x, rows)` pairs. "
                f"Received elements: {describe_structure(data)}"
            )
        return data

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "hidden_dim": self.hidden_dim,
                "corruption": self.corruption,
                "activation": self.activation,
                "loss": self.loss_kind,
                "negative_ratio": self.negative_ratio,
                "l2": self.l2,
                "n_users": self.n_users,
                "seed": self.seed,
            }
        )
        return config
