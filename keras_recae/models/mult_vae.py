"""Mult-VAE: the variational autoencoder with a multinomial likelihood."""

from __future__ import annotations

import keras

from keras_recae.checks import (
    check_hidden_dims,
    check_non_negative,
    check_positive_int,
    check_rate,
)
from keras_recae.distribute import replica_mean
from keras_recae.layers.gaussian_sampling import GaussianSampling
from keras_recae.layers.sparse_dropout import SparseDropout
from keras_recae.losses import gaussian_kl
from keras_recae.models.building import build_stack, features, vae_cf_dense
from keras_recae.models.loss_parts_training import LossPartsTraining
from keras_recae.models.recommender import Recommender
from keras_recae.models.sampled_output import SampledOutput, document_settings
from keras_recae.search_space import choice, float_range, int_range
from keras_recae.sparse_ops import l2_normalize_rows, row_counts


@keras.saving.register_keras_serializable(package="keras_recae")
@document_settings
class MultVAE(SampledOutput, LossPartsTraining, Recommender):
    """Variational autoencoder for collaborative filtering (Mult-VAE).

    The input row is L2-normalised, dropped out in training, and encoded by
    tanh layers into the mean and log-variance of a Gaussian posterior; a
    sample (the mean at inference) is decoded by tanh layers into logits over
    the catalogue. The loss is the multinomial negative log-likelihood plus
    `beta` times the KL divergence to N(0, I), with `beta` annealed as
    `min(beta_cap, step / total_anneal_steps)` from the optimizer's step
    counter, or held fixed when `beta` is given (beta-VAE). Under a `tf.distribute`
    strategy each replica's loss is its share of the global batch's (see
    `keras_recae.distribute`).

    Args:
        hidden_dims: list of int. Encoder widths, the last one being the
            latent dimension; the decoder mirrors them. Defaults to `(200,)`
            (the paper's `(600, 200)` learns slower: RESULTS.md, "Defaults that
            transfer").
        dropout: float. Dropout rate on the input, in [0, 1). Defaults to `0.33`
            (the paper's 0.5 climbs slower on sparse data such as Gowalla).
        beta_cap: float. Largest annealed KL weight. Defaults to `0.2`.
        total_anneal_steps: int. Updates over which `beta` grows from 0 to 1
            (capped at `beta_cap`). Defaults to `200000`.
        beta: float | None. A fixed KL weight instead of annealing. Defaults to `None`.
        l2: float. L2 penalty on the kernels. Defaults to `0.0`.
        seed: int | None. Seed of dropout and sampling. Defaults to `None`.
        {output settings}

    Example:

    ```python
    import keras
    from keras_recae.data import sparse_batches, synthetic_interactions
    from keras_recae.models import MultVAE

    data = synthetic_interactions(seed=0)
    model = MultVAE(hidden_dims=(64, 16), seed=0)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    model.fit(sparse_batches(data.matrix, 100, shuffle=True, seed=0), epochs=2)
    ```

    References:
        Liang, Krishnan, Hoffman, Jebara. Variational Autoencoders for
        Collaborative Filtering. WWW 2018.
    """

    search_space = {
        "beta_cap": float_range(0.05, 1.0),
        "total_anneal_steps": int_range(1000, 200_000, log=True),
        "dropout": float_range(0.0, 0.7),
        "hidden_dims": choice([200], [600, 200], [1000, 300]),
        "lr": float_range(1e-4, 1e-2, log=True),
    }
    # The paper's 1e-3 at 500 users a batch leaves small data sets under-trained after 30
    # epochs (a data set of a few hundred users gets two updates a pass), and a larger rate
    # peaks early and lower on Gowalla: the paper's rate with batches small enough for fifty
    # updates a pass, as the autoencoders' (RESULTS.md, "Defaults that transfer").
    default_lr = 1e-3
    min_updates_per_epoch = 50
    part_names = ("loss", "nll", "kl", "beta")
    # The same on every replica: tracked as it is, not summed over the replicas.
    replicated_parts = ("beta",)
    has_encoder = True

    def __init__(
        self,
        hidden_dims=(200,),
        dropout: float = 0.33,
        beta_cap: float = 0.2,
        total_anneal_steps: int = 200000,
        beta: float | None = None,
        l2: float = 0.0,
        seed: int | None = None,
        sampled_softmax: int = 0,
        sampled_proposal: str = "popularity",
        sparse_updates: bool = False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.hidden_dims = check_hidden_dims(hidden_dims)
        self.dropout = check_rate("dropout", dropout)
        self.init_output(sampled_softmax, sampled_proposal, sparse_updates, l2, seed)
        self.beta_cap = check_non_negative("beta_cap", beta_cap)
        self.total_anneal_steps = check_positive_int("total_anneal_steps", total_anneal_steps)
        self.beta = None if beta is None else check_non_negative("beta", beta)
        self.l2 = check_non_negative("l2", l2)
        self.seed = seed
        self.input_dropout = SparseDropout(self.dropout, seed=seed, name="input_dropout")
        *hidden, latent = self.hidden_dims
        self.encoder_layers = [
            self.encoder_dense(units, "tanh", f"encoder_{i}", self.l2, first=i == 0)
            for i, units in enumerate(hidden)
        ]
        self.posterior = self.encoder_dense(
            2 * latent, None, "posterior", self.l2, first=not hidden
        )
        self.sampling = GaussianSampling(seed=None if seed is None else seed + 1, name="sampling")
        self.decoder_layers = [
            vae_cf_dense(units, "tanh", f"decoder_{i}", self.l2)
            for i, units in enumerate(reversed(hidden))
        ]

    def build(self, input_shape):
        n_items = input_shape[-1]
        self.output_layer = self.build_output(n_items, self.l2)
        build_stack(self.encoder_layers + [self.posterior], n_items)
        build_stack(self.decoder_layers + [self.output_layer], self.hidden_dims[-1])

    def posterior_parameters(self, inputs, training=False):
        """Mean and log-variance of the posterior for a sparse input."""
        h = l2_normalize_rows(inputs)
        h = self.input_dropout(h, training=training)
        for layer in self.encoder_layers:
            h = layer(h)
        h = self.posterior(h)
        latent = self.hidden_dims[-1]
        return h[:, :latent], h[:, latent:]

    def decode(self, z):
        return self.output_layer(self.decode_hidden(z))

    def decode_hidden(self, z):
        """The decoder's layers before the output layer."""
        for layer in self.decoder_layers:
            z = layer(z)
        return z

    def call(self, inputs, training=False):
        mean, log_var = self.posterior_parameters(inputs, training=training)
        return self.decode(self.sampling([mean, log_var], training=training))

    def encode(self, inputs):
        mean, _ = self.posterior_parameters(inputs, training=False)
        return mean

    def current_beta(self):
        """The KL weight of the next update."""
        if self.beta is not None:
            return keras.ops.convert_to_tensor(self.beta, "float32")
        step = keras.ops.cast(self.optimizer.iterations, "float32")
        return keras.ops.minimum(self.beta_cap, step / float(self.total_anneal_steps))

    def loss_parts(self, data, training: bool) -> dict:
        inputs = features(data)
        self.ensure_built(inputs)
        mean, log_var = self.posterior_parameters(inputs, training=training)
        hidden = self.decode_hidden(self.sampling([mean, log_var], training=training))
        present = row_counts(inputs) > 0
        rows_nll = self.output_nll(hidden, inputs, training)
        # Under a strategy these are this replica's shares of the global batch's means.
        nll = replica_mean(rows_nll, present)
        kl = replica_mean(gaussian_kl(mean, log_var), present)
        beta = self.current_beta()
        return {"loss": nll + beta * kl, "nll": nll, "kl": kl, "beta": beta}

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "hidden_dims": list(self.hidden_dims),
                "dropout": self.dropout,
                "beta_cap": self.beta_cap,
                "total_anneal_steps": self.total_anneal_steps,
                "beta": self.beta,
                "l2": self.l2,
                "seed": self.seed,
                **self.output_config(),
            }
        )
        return config
