"""The denoising autoencoder: masked observed entries, SELU layers."""

from __future__ import annotations

import keras

from keras_recae.checks import check_rate
from keras_recae.layers.sparse_dense import SparseDense
from keras_recae.layers.sparse_masking import SparseMasking
from keras_recae.models.reconstruction_autoencoder import ReconstructionAutoencoder
from keras_recae.models.sampled_output import document_settings
from keras_recae.search_space import choice, float_range


@keras.saving.register_keras_serializable(package="keras_recae")
@document_settings
class DenoisingAutoencoder(ReconstructionAutoencoder):
    """A denoising autoencoder recommender with masking noise and SELU layers.

    In training each observed entry of the user's row is set to zero with probability
    `corruption` (masking noise, not rescaled; unobserved entries are zero already),
    and the network, SELU layers initialised with LeCun normal weights as
    self-normalising networks want, reconstructs the uncorrupted row over the whole
    catalogue: `"multinomial"`, `"logistic"` or `"squared"` loss per user, averaged
    over users, plus an L2 penalty on the kernels.

    With the logistic and squared losses the output biases start at the best constant
    prediction for the first training batch, which keeps training from stalling at the
    popularity ranking.

    Args:
        hidden_dims: list of int. Encoder widths, the last one being the code; the
            decoder mirrors them. Defaults to `(200,)`.
        corruption: float. Probability of masking an observed entry, in [0, 1).
            Defaults to `0.5`.
        loss: str. `"multinomial"`, `"logistic"` or `"squared"`. Defaults to `"logistic"`.
        l2: float. L2 penalty on the kernels. Defaults to `0.0`.
        seed: int | None. Seed of the masking. Defaults to `None`.
        {output settings}

    The three output settings need `loss="multinomial"`.

    The defaults (with the runner's learning rate, `default_lr`, and batch size, at least
    `min_updates_per_epoch` updates a pass) are the Gowalla study's choice, checked on
    MovieLens-1M and MovieLens-100K: heavy masking with the squared loss, which a study on
    MovieLens-1M chose, climbs too slowly on Gowalla's sparse rows, and masking 0.2 with the
    multinomial loss overfits within ten epochs (RESULTS.md, "Defaults that transfer").

    Example:

    ```python
    import keras
    from keras_recae.data import sparse_batches, synthetic_interactions
    from keras_recae.models import DenoisingAutoencoder

    data = synthetic_interactions(seed=0)
    model = DenoisingAutoencoder(hidden_dims=(64,), corruption=0.3, seed=0)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    model.fit(sparse_batches(data.matrix, 100, shuffle=True, seed=0), epochs=2)
    ```

    References:
        Vincent, Larochelle, Bengio, Manzagol. Extracting and Composing Robust
        Features with Denoising Autoencoders. ICML 2008.
        Klambauer, Unterthiner, Mayr, Hochreiter. Self-Normalizing Neural Networks.
        NeurIPS 2017.
    """

    search_space = {
        "hidden_dims": choice([200], [600, 200], [1000, 300]),
        "corruption": float_range(0.0, 0.8),
        "loss": choice("multinomial", "logistic", "squared"),
        "lr": float_range(1e-4, 1e-2, log=True),
    }
    # As the autoencoder's: a slow rate, and batches small enough for fifty updates a pass.
    default_lr = 1e-3
    min_updates_per_epoch = 50

    def __init__(
        self,
        hidden_dims=(200,),
        corruption: float = 0.5,
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
        self.corruption = check_rate("corruption", corruption)
        self.make_layers()
        self.masking = SparseMasking(self.corruption, seed=seed, name="masking")

    def dense(self, units: int, name: str, sparse: bool = False, **options):
        return (SparseDense if sparse else keras.layers.Dense)(
            units,
            activation="selu",
            kernel_initializer="lecun_normal",
            kernel_regularizer=keras.regularizers.L2(self.l2) if self.l2 else None,
            name=name,
            **options,
        )

    def output_dense(self, units: int):
        return keras.layers.Dense(
            units,
            kernel_initializer="lecun_normal",
            kernel_regularizer=keras.regularizers.L2(self.l2) if self.l2 else None,
            name="output",
        )

    def output_item_initializers(self) -> dict:
        # LeCun's normal by the input width, which is the rows' second dimension.
        kernel = keras.initializers.VarianceScaling(1.0, "fan_out", "truncated_normal")
        return {"kernel_initializer": kernel, "bias_initializer": "zeros"}

    def corrupt(self, inputs, training=False):
        return self.masking(inputs, training=training)

    def get_config(self):
        config = super().get_config()
        config.update({"corruption": self.corruption})
        return config
