"""The base of the plain and the denoising autoencoder: reconstruction of the input."""

from __future__ import annotations

import keras

from keras_recae.checks import check_choice, check_hidden_dims, check_non_negative
from keras_recae.distribute import replica_mean
from keras_recae.losses import RECONSTRUCTION_LOSSES, reconstruction_loss
from keras_recae.models.building import build_stack, features, start_output_bias
from keras_recae.models.loss_parts_training import LossPartsTraining
from keras_recae.models.recommender import Recommender
from keras_recae.models.sampled_output import SampledOutput
from keras_recae.sparse_ops import row_counts


@keras.saving.register_keras_serializable(package="keras_recae")
class ReconstructionAutoencoder(SampledOutput, LossPartsTraining, Recommender):
    """An encoder-decoder stack from the sparse input to the catalogue, trained to
    reconstruct its uncorrupted input with one of `RECONSTRUCTION_LOSSES`.

    With the logistic or squared loss, the output biases start, before the first update,
    at the best constant prediction for the first batch (see `start_output_bias`).

    Under a `tf.distribute` strategy each replica's loss is its share of the global
    batch's (see `keras_recae.distribute`).

    With the multinomial loss the output can be a sampled softmax and the updates
    row-sparse (`SampledOutput`: `sampled_softmax`, `sampled_proposal`, `sparse_updates`).

    Its loss parts (`LossPartsTraining`) are the total `loss` and the `reconstruction`.
    Subclasses give the layers (`dense`, `output_dense` and, for `sparse_updates`, the
    item-row initializers `output_item_initializers`; created by `make_layers`), the input
    corruption (`corrupt`) and what follows each hidden layer (`after_hidden`).
    """

    part_names = ("loss", "reconstruction")
    has_encoder = True

    def __init__(
        self,
        hidden_dims=(600, 200),
        loss: str = "multinomial",
        l2: float = 0.0,
        seed: int | None = None,
        sampled_softmax: int = 0,
        sampled_proposal: str = "popularity",
        sparse_updates: bool = False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.hidden_dims = check_hidden_dims(hidden_dims)
        # `loss` is Keras's attribute for a compiled loss; the choice is kept beside it.
        self.loss_kind = check_choice("loss", loss, RECONSTRUCTION_LOSSES)
        self.l2 = check_non_negative("l2", l2)
        self.seed = seed
        if (sampled_softmax or sparse_updates) and self.loss_kind != "multinomial":
            raise ValueError(
                '`sampled_softmax` and `sparse_updates` need `loss="multinomial"` (a sampled '
                "softmax over the catalogue). Received: "
                f"loss={loss!r}, sampled_softmax={sampled_softmax}, "
                f"sparse_updates={sparse_updates}"
            )
        self.init_output(sampled_softmax, sampled_proposal, sparse_updates, self.l2, seed)

    def make_layers(self) -> None:
        """Creates the hidden layers; subclasses call it once their attributes are set."""
        # Only when asked: the first layer's config stays that of earlier versions.
        rows = {"row_gradients": True} if self.sparse_updates else {}
        self.encoder_layers = [
            self.dense(units, f"encoder_{i}", sparse=i == 0, **(rows if i == 0 else {}))
            for i, units in enumerate(self.hidden_dims)
        ]
        self.decoder_layers = [
            self.dense(units, f"decoder_{i}")
            for i, units in enumerate(reversed(self.hidden_dims[:-1]))
        ]

    def dense(self, units: int, name: str, sparse: bool = False, **options):
        """A hidden layer; `options` go to its constructor (the first's `row_gradients`)."""
        raise NotImplementedError

    def output_dense(self, units: int):
        raise NotImplementedError

    def output_item_initializers(self) -> dict:
        """`output_dense`'s initializers for its kernel drawn as item rows,
        `[n_items, input_dim]` (see `SampledOutput.build_output`)."""
        raise NotImplementedError

    def corrupt(self, inputs, training=False):
        return inputs

    def after_hidden(self, h, training=False):
        return h

    def build(self, input_shape):
        n_items = input_shape[-1]
        self.output_layer = self.build_output(
            n_items,
            self.l2,
            dense=self.output_dense(n_items),
            item_initializers=self.output_item_initializers() if self.sparse_updates else None,
            name="output",
        )
        build_stack(self.encoder_layers, n_items)
        build_stack(self.decoder_layers + [self.output_layer], self.hidden_dims[-1])

    def encode(self, inputs, training=False):
        h = self.corrupt(inputs, training=training)
        for layer in self.encoder_layers:
            h = self.after_hidden(layer(h), training=training)
        return h

    def decoded(self, inputs, training=False):
        """The input of the output layer."""
        h = self.encode(inputs, training=training)
        for layer in self.decoder_layers:
            h = self.after_hidden(layer(h), training=training)
        return h

    def call(self, inputs, training=False):
        return self.output_layer(self.decoded(inputs, training=training))

    def loss_parts(self, data, training: bool) -> dict:
        inputs = features(data)
        self.ensure_built(inputs)
        if self.loss_kind == "multinomial":
            per_user = self.output_nll(self.decoded(inputs, training), inputs, training)
        else:
            per_user = reconstruction_loss(self(inputs, training=training), inputs, self.loss_kind)
        reconstruction = replica_mean(per_user, row_counts(inputs) > 0)
        return {"loss": reconstruction, "reconstruction": reconstruction}

    def before_update(self, data) -> None:
        inputs = features(data)
        self.ensure_built(inputs)
        start_output_bias(self.output_layer, inputs, self.loss_kind, self.optimizer.iterations)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "hidden_dims": list(self.hidden_dims),
                "loss": self.loss_kind,
                "l2": self.l2,
                "seed": self.seed,
                **self.output_config(),
            }
        )
        return config
