"""The base of the plain and the denoising autoencoder: reconstruction of the input."""

from __future__ import annotations

import keras

from keras_recae.checks import check_choice, check_hidden_dims, check_non_negative
from keras_recae.distribute import replica_mean
from keras_recae.losses import RECONSTRUCTION_LOSSES, reconstruction_loss
from keras_recae.models.building import build_stack, features, start_output_bias
from keras_recae.models.loss_parts_training import LossPartsTraining
from keras_recae.models.recommender import Recommender
from keras_recae.sparse_ops import row_counts


@keras.saving.register_keras_serializable(package="keras_recae")
class ReconstructionAutoencoder(LossPartsTraining, Recommender):
    """An encoder-decoder stack from the sparse input to the catalogue, trained to
    reconstruct its uncorrupted input with one of `RECONSTRUCTION_LOSSES`.

    With the logistic or squared loss, the output biases start, before the first update,
    at the best constant prediction for the first batch (see `start_output_bias`).

    Under a `tf.distribute` strategy each replica's loss is its share of the global
    batch's (see `keras_recae.distribute`).

    Its loss parts (`LossPartsTraining`) are the total `loss` and the `reconstruction`.
    Subclasses give the layers (`dense`, `output_dense`, created by `make_layers`), the
    input corruption (`corrupt`) and what follows each hidden layer (`after_hidden`).
    """

    part_names = ("loss", "reconstruction")
    has_encoder = True

    def __init__(
        self,
        hidden_dims=(600, 200),
        loss: str = "multinomial",
        l2: float = 0.0,
        seed: int | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.hidden_dims = check_hidden_dims(hidden_dims)
        # `loss` is Keras's attribute for a compiled loss; the choice is kept beside it.
        self.loss_kind = check_choice("loss", loss, RECONSTRUCTION_LOSSES)
        self.l2 = check_non_negative("l2", l2)
        self.seed = seed

    def make_layers(self) -> None:
        """Creates the hidden layers; subclasses call it once their attributes are set."""
        self.encoder_layers = [
            self.dense(units, f"encoder_{i}", sparse=i == 0)
            for i, units in enumerate(self.hidden_dims)
        ]
        self.decoder_layers = [
            self.dense(units, f"decoder_{i}")
            for i, units in enumerate(reversed(self.hidden_dims[:-1]))
        ]

    def dense(self, units: int, name: str, sparse: bool = False):
        raise NotImplementedError

    def output_dense(self, units: int):
        raise NotImplementedError

    def corrupt(self, inputs, training=False):
        return inputs

    def after_hidden(self, h, training=False):
        return h

    def build(self, input_shape):
        n_items = input_shape[-1]
        self.output_layer = self.output_dense(n_items)
        build_stack(self.encoder_layers, n_items)
        build_stack(self.decoder_layers + [self.output_layer], self.hidden_dims[-1])

    def encode(self, inputs, training=False):
        h = self.corrupt(inputs, training=training)
        for layer in self.encoder_layers:
            h = self.after_hidden(layer(h), training=training)
        return h

    def call(self, inputs, training=False):
        h = self.encode(inputs, training=training)
        for layer in self.decoder_layers:
            h = self.after_hidden(layer(h), training=training)
        return self.output_layer(h)

    def loss_parts(self, data, training: bool) -> dict:
        inputs = features(data)
        self.ensure_built(inputs)
        outputs = self(inputs, training=training)
        per_user = reconstruction_loss(outputs, inputs, self.loss_kind)
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
            }
        )
        return config
