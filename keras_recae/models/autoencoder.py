"""The plain autoencoder: hidden layers with dropout, from the user's row to the catalogue."""

from __future__ import annotations

import keras

from keras_recae.checks import check_activation, check_rate
from keras_recae.distribute import as_global_batch
from keras_recae.layers.sparse_dense import SparseDense
from keras_recae.models.reconstruction_autoencoder import ReconstructionAutoencoder
from keras_recae.models.sampled_output import document_settings
from keras_recae.search_space import choice, float_range


@keras.saving.register_keras_serializable(package="keras_recae")
@document_settings
class Autoencoder(ReconstructionAutoencoder):
    """A basic autoencoder recommender: dense hidden layers with dropout.

    The user's sparse row goes through the encoder layers down to the code and back up
    through the mirrored decoder layers, dropout following every hidden layer in
    training, and a linear output layer gives a score per item. The loss, per user and
    averaged over users, reconstructs the input over the whole catalogue:
    `"multinomial"` (NLL of the softmax of the outputs), `"logistic"` (sigmoid
    cross-entropy of every item) or `"squared"` (squared error of every item), plus an
    L2 penalty on the kernels.

    With the logistic and squared losses the output biases start at the best constant
    prediction for the first training batch, which keeps training from stalling at the
    popularity ranking.

    Args:
        hidden_dims: list of int. Encoder widths, the last one being the code; the
            decoder mirrors them. Defaults to `(200,)`.
        activation: str. Activation of the hidden layers. Defaults to `"tanh"`.
        dropout: float. Dropout rate after each hidden layer, in [0, 1).
            Defaults to `0.33`.
        loss: str. `"multinomial"`, `"logistic"` or `"squared"`. Defaults to `"logistic"`.
        l2: float. L2 penalty on the kernels. Defaults to `0.0`.
        seed: int | None. Seed of the dropout. Defaults to `None`.
        {output settings}

    The three output settings need `loss="multinomial"`.

    The defaults (with the runner's learning rate, `default_lr`, and batch size, at least
    `min_updates_per_epoch` updates a pass) come from tuning studies on MovieLens-1M and
    Gowalla, checked on MovieLens-100K (RESULTS.md, "Defaults that transfer").

    Example:

    ```python
    import keras
    from keras_recae.data import sparse_batches, synthetic_interactions
    from keras_recae.models import Autoencoder

    data = synthetic_interactions(seed=0)
    model = Autoencoder(hidden_dims=(64,), loss="logistic", seed=0)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    model.fit(sparse_batches(data.matrix, 100, shuffle=True, seed=0), epochs=2)
    ```

    References:
        Hinton, Salakhutdinov. Reducing the Dimensionality of Data with Neural
        Networks. Science 2006.
    """

    search_space = {
        "hidden_dims": choice([200], [600, 200], [1000, 300]),
        "dropout": float_range(0.0, 0.8),
        "loss": choice("multinomial", "logistic", "squared"),
        "lr": float_range(1e-4, 1e-2, log=True),
    }
    # A slow rate (it peaks higher on Gowalla than 4e-3, which peaks early and overfits) with
    # batches small enough for fifty updates a pass, so that thirty epochs are about as many
    # updates on a few hundred users as on tens of thousands (RESULTS.md, "Defaults that
    # transfer").
    default_lr = 1e-3
    min_updates_per_epoch = 50

    def __init__(
        self,
        hidden_dims=(200,),
        activation: str = "tanh",
        dropout: float = 0.33,
        loss: str = "logistic",
        l2: float = 0.0,
        seed: int | None = None,
        sampled_softmax: int = 0,
        sampled_proposal: str = "popularity",
        sparse_updates: bool = False,
        **kwargs,
    ):
        super().__init__(
            hidden_dims=hidden_dims,
            loss=loss,
            l2=l2,
            seed=seed,
            sampled_softmax=sampled_softmax,
            sampled_proposal=sampled_proposal,
            sparse_updates=sparse_updates,
            **kwargs,
        )
        self.activation = check_activation(activation)
        self.dropout = check_rate("dropout", dropout)
        self.make_layers()
        self.hidden_dropout = keras.layers.Dropout(self.dropout, seed=seed, name="dropout")

    def dense(self, units: int, name: str, sparse: bool = False, **options):
        return (SparseDense if sparse else keras.layers.Dense)(
            units,
            activation=self.activation,
            kernel_regularizer=keras.regularizers.L2(self.l2) if self.l2 else None,
            name=name,
            **options,
        )

    def output_dense(self, units: int):
        return keras.layers.Dense(
            units,
            kernel_regularizer=keras.regularizers.L2(self.l2) if self.l2 else None,
            name="output",
        )

    def output_item_initializers(self) -> dict:
        # Glorot's limits are symmetric in the kernel's two dimensions.
        return {"kernel_initializer": "glorot_uniform", "bias_initializer": "zeros"}

    def after_hidden(self, h, training=False):
        if not training:
            return h
        # Under a strategy the masks are drawn for the rows of the whole global batch.
        return as_global_batch(lambda x: self.hidden_dropout(x, training=True), h, equal_parts=True)

    def get_config(self):
        config = super().get_config()
        config.update({"activation": self.activation, "dropout": self.dropout})
        return config
