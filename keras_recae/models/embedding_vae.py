"""The embedding VAE: a Gaussian posterior over refined item vectors."""

from __future__ import annotations

import keras

from keras_recae.checks import check_non_negative, check_non_negative_int
from keras_recae.layers.gaussian_sampling import GaussianSampling
from keras_recae.losses import gaussian_kl
from keras_recae.models.embedding_refiner import EmbeddingRefiner


@keras.saving.register_keras_serializable(package="keras_recae")
class EmbeddingVAE(EmbeddingRefiner):
    """A variational autoencoder over pre-trained item vectors.

    The encoder gives the mean and log-variance of a diagonal Gaussian posterior over
    the `latent_dim` code; in training a reparameterised sample is decoded, and the loss
    is the reconstruction (see `EmbeddingRefiner`) plus `beta` times the KL divergence
    to N(0, I), summed over the code's dimensions and averaged over rows. `beta` grows
    linearly from 0 over the first `anneal_steps` updates (read from the optimizer's
    step counter), or is fixed when `anneal_steps=0`. The refined vector is the
    posterior mean. Under a `tf.distribute` strategy the reparameterisation noise is
    drawn for the global batch and `beta` follows the global steps, so training equals
    that on one device (see `EmbeddingRefiner.fit`).

    Args:
        latent_dim: int. The dimension of the refined vectors. Defaults to `64`.
        hidden_dims: list of int. Encoder widths between the input and the posterior;
            the decoder mirrors them. Defaults to `(512,)`.
        activation: str. Activation of the hidden layers. Defaults to `"gelu"`.
        normalization: str. `"none"`, `"l2"` or `"standardize"`. Defaults to `"l2"`.
        reconstruction: str. `"mse"` or `"cosine"`. Defaults to `"mse"`.
        center: bool. Whether refined vectors are centred on the catalogue's mean
            posterior mean. Defaults to `True`.
        beta: float. The KL weight after annealing. Defaults to `0.03`.
        anneal_steps: int. Updates over which `beta` grows from 0; 0 holds it fixed.
            Defaults to `1000`.
        l2: float. L2 penalty on the kernels. Defaults to `0.0`.
        seed: int | None. Seed of the posterior sampling. Defaults to `None`.

    Example:

    ```python
    import keras
    import numpy as np
    from keras_recae.models import EmbeddingVAE

    vectors = np.random.default_rng(0).normal(size=(500, 32)).astype("float32")
    model = EmbeddingVAE(latent_dim=8, beta=0.01, anneal_steps=100, seed=0)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    model.fit(vectors, batch_size=64, epochs=2)
    refined = model.refine(vectors)  # posterior means
    ```

    References:
        Kingma, Welling. Auto-Encoding Variational Bayes. ICLR 2014.
        Higgins et al. beta-VAE: Learning Basic Visual Concepts with a Constrained
        Variational Framework. ICLR 2017.
    """

    part_names = ("loss", "reconstruction", "kl", "beta")
    # The same on every replica: tracked as it is, not summed over the replicas.
    replicated_parts = ("beta",)

    def __init__(
        self,
        latent_dim: int = 64,
        hidden_dims=(512,),
        activation: str = "gelu",
        normalization: str = "l2",
        reconstruction: str = "mse",
        center: bool = True,
        beta: float = 0.03,
        anneal_steps: int = 1000,
        l2: float = 0.0,
        seed: int | None = None,
        **kwargs,
    ):
        super().__init__(
            latent_dim=latent_dim,
            hidden_dims=hidden_dims,
            activation=activation,
            normalization=normalization,
            reconstruction=reconstruction,
            center=center,
            l2=l2,
            seed=seed,
            **kwargs,
        )
        self.beta = check_non_negative("beta", beta)
        self.anneal_steps = check_non_negative_int("anneal_steps", anneal_steps)
        self.sampling = GaussianSampling(seed=seed, name="sampling")

    def code_units(self) -> int:
        return 2 * self.latent_dim

    def posterior_parameters(self, normalized):
        """Mean and log-variance of the posterior of normalised rows."""
        h = self.hidden(normalized)
        return h[:, : self.latent_dim], h[:, self.latent_dim :]

    def code(self, normalized, training=False):
        mean, log_var = self.posterior_parameters(normalized)
        return self.sampling([mean, log_var], training=training)

    def current_beta(self):
        """The KL weight of the next update.

        The optimizer's step counter counts global steps (one per update of the mirrored
        weights under a strategy), so every replica reads the same `beta`.
        """
        if not self.anneal_steps:
            return keras.ops.convert_to_tensor(self.beta, "float32")
        step = keras.ops.cast(self.optimizer.iterations, "float32")
        return self.beta * keras.ops.minimum(1.0, step / float(self.anneal_steps))

    def loss_parts(self, data, training: bool = False) -> dict:
        inputs, _, weights = keras.utils.unpack_x_y_sample_weight(data)
        self.ensure_built(inputs)
        targets = self.normalize(inputs)
        mean, log_var = self.posterior_parameters(self.corrupt(targets, training))
        outputs = self.decode(self.sampling([mean, log_var], training=training))
        # Under a strategy these are this replica's shares of the global batch's means.
        reconstruction = self.batch_mean(self.reconstruction_loss(outputs, targets), weights)
        kl = self.batch_mean(gaussian_kl(mean, log_var), weights)
        beta = self.current_beta()
        return {
            "loss": reconstruction + beta * kl,
            "reconstruction": reconstruction,
            "kl": kl,
            "beta": beta,
        }

    def get_config(self):
        config = super().get_config()
        config.update({"beta": self.beta, "anneal_steps": self.anneal_steps})
        return config
