"""RecVAE: Mult-VAE with a composite prior, a user-specific KL weight and alternating updates."""

from __future__ import annotations

import keras
import numpy as np
import scipy.sparse as sp
import tensorflow as tf

from keras_recae.checks import (
    check_non_negative,
    check_positive_int,
    check_rate,
    describe_structure,
)
from keras_recae.data.pipeline import sparse_batches
from keras_recae.distribute import replica_mean, switch
from keras_recae.layers.composite_prior import CompositePrior
from keras_recae.layers.gaussian_sampling import GaussianSampling
from keras_recae.layers.rec_vae_encoder import RecVAEEncoder, torch_linear_initializers
from keras_recae.layers.sparse_dropout import SparseDropout
from keras_recae.losses import gaussian_log_density
from keras_recae.models.building import features
from keras_recae.models.loss_parts_training import LossPartsTraining
from keras_recae.models.recommender import Recommender
from keras_recae.models.sampled_output import SampledOutput, document_settings
from keras_recae.search_space import float_range
from keras_recae.sparse_ops import l2_normalize_rows, row_counts, row_sums

# The default KL weight of the user with the mean history (`gamma * |x_u|`): RecVAE's
# `gamma` is this over the training data's mean row sum.
KL_WEIGHT_OF_MEAN_USER = 0.5

# The phase each batch of `RecVAE.training_batches` carries.
ENCODER_PHASE = 0
DECODER_PHASE = 1


@keras.saving.register_keras_serializable(package="keras_recae")
@document_settings
class RecVAE(SampledOutput, LossPartsTraining, Recommender):
    """RecVAE: a variational autoencoder trained with alternating encoder and decoder updates.

    The input row is L2-normalised, dropped out while the encoder trains, and mapped by
    the densely connected encoder (`RecVAEEncoder`: swish layers with layer
    normalisation, each fed the sum of the earlier outputs) to a Gaussian posterior; a
    sample (the mean at inference) goes through one linear layer to the logits. The loss
    per user is the multinomial negative log-likelihood plus a one-sample estimate of
    `KL(q(z|x) || p(z))` weighted by `gamma * |x_u|` (the sum of the user's row), or by a
    fixed `beta`. The prior `p(z)` is the composite prior (`CompositePrior`): a mixture
    of N(0, I), the user's posterior under a frozen copy of the encoder from the
    previous epoch, and a wide Gaussian.

    Each epoch runs `n_enc_epochs` passes over the users updating the encoder (input
    dropout on, the compiled optimizer), copies the encoder into the prior, then runs
    `n_dec_epochs` passes updating the decoder (dropout off, a second optimizer). Fit
    on `training_batches(matrix, batch_size)`, which yields those passes as one
    Keras epoch, each batch tagged with its phase; the prior's copy is refreshed in the
    graph at the first decoder batch after encoder batches. The two optimizers are
    `optimizer` (encoder) and `decoder_optimizer` (a copy of the compiled one unless
    `compile(decoder_optimizer=...)` gives another), both saved in `.keras` files.

    Under a `tf.distribute` strategy each replica's loss is its share of the global
    batch's, every replica refreshes its copy of the prior's encoder at the same step,
    and the update of the phase's optimizer runs on all replicas together (see
    `keras_recae.distribute`).

    Args:
        hidden_dim: int. Width of the encoder's layers. Defaults to `600`.
        latent_dim: int. Dimension of the latent code. Defaults to `200`.
        n_layers: int. Number of encoder layers. Defaults to `5`.
        dropout: float. Input dropout rate of the encoder passes, in [0, 1).
            Defaults to `0.5`.
        gamma: float | None. KL weight per unit of the user's row sum. Defaults to `None`:
            set from the training data when the model is adapted to it (`adapt`, or
            `training_batches`), to `KL_WEIGHT_OF_MEAN_USER` (0.5) over the mean row sum
            of the users with a history, so that the mean user's KL weight is the same on
            every data set (a fixed gamma suits one history length: the paper's 0.005,
            chosen on ML-20M, suits ML-1M's 96 lines a user and regularises the shorter
            histories of MovieLens-100K `u1` and Gowalla too little: RESULTS.md, "Defaults
            that transfer"). The value set is the model's from then on (`get_config`,
            `.keras` files).
        beta: float | None. A fixed KL weight instead of `gamma * |x_u|`. Defaults to `None`.
        n_enc_epochs: int. Encoder passes over the data per epoch. Defaults to `3`.
        n_dec_epochs: int. Decoder passes over the data per epoch. Defaults to `1`.
        mixture_weights: list of 3 floats. Weights of the standard, previous-posterior
            and wide components of the prior. Defaults to `(3 / 20, 3 / 4, 1 / 10)`.
        seed: int | None. Seed of dropout and sampling. Defaults to `None`.
        {output settings}

    Example:

    ```python
    import keras
    from keras_recae.data import synthetic_interactions
    from keras_recae.models import RecVAE

    data = synthetic_interactions(seed=0)
    model = RecVAE(hidden_dim=64, latent_dim=16, seed=0)
    model.compile(optimizer=keras.optimizers.Adam(5e-4))
    model.fit(model.training_batches(data.matrix, 500, seed=0), epochs=2)
    ```

    References:
        Shenbin, Alekseev, Tutubalina, Malykh, Nikolenko. RecVAE: a New Variational
        Autoencoder for Top-N Recommendations with Implicit Feedback. WSDM 2020.
    """

    search_space = {
        "gamma": float_range(1e-3, 5e-2, log=True),
        "dropout": float_range(0.0, 0.7),
        "lr": float_range(1e-4, 3e-3, log=True),
    }
    part_names = ("loss", "nll", "kl")
    has_encoder = True

    def __init__(
        self,
        hidden_dim: int = 600,
        latent_dim: int = 200,
        n_layers: int = 5,
        dropout: float = 0.5,
        gamma: float | None = None,
        beta: float | None = None,
        n_enc_epochs: int = 3,
        n_dec_epochs: int = 1,
        mixture_weights=(3 / 20, 3 / 4, 1 / 10),
        seed: int | None = None,
        sampled_softmax: int = 0,
        sampled_proposal: str = "popularity",
        sparse_updates: bool = False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.hidden_dim = check_positive_int("hidden_dim", hidden_dim)
        self.latent_dim = check_positive_int("latent_dim", latent_dim)
        self.n_layers = check_positive_int("n_layers", n_layers)
        self.dropout = check_rate("dropout", dropout)
        self.gamma = None if gamma is None else check_non_negative("gamma", gamma)
        self.beta = None if beta is None else check_non_negative("beta", beta)
        self.n_enc_epochs = check_positive_int("n_enc_epochs", n_enc_epochs)
        self.n_dec_epochs = check_positive_int("n_dec_epochs", n_dec_epochs)
        self.seed = seed
        self.init_output(sampled_softmax, sampled_proposal, sparse_updates, 0.0, seed)
        self.prior = CompositePrior(mixture_weights, name="prior")
        self.mixture_weights = self.prior.mixture_weights
        self.input_dropout = SparseDropout(self.dropout, seed=seed, name="input_dropout")
        encoder_args = {"hidden_dim": hidden_dim, "latent_dim": latent_dim, "n_layers": n_layers}
        if self.sparse_updates:
            encoder_args["row_gradients"] = True
        self.encoder = RecVAEEncoder(**encoder_args, name="encoder")
        # The previous epoch's encoder, for the prior; its own initial weights (as in the
        # reference code) serve until the first copy.
        self.prior_encoder = RecVAEEncoder(**encoder_args, name="prior_encoder")
        self.sampling = GaussianSampling(seed=None if seed is None else seed + 1, name="sampling")
        self.decoder_optimizer = None

    def build(self, input_shape):
        n_items = input_shape[-1]
        self.encoder.build((None, n_items))
        self.prior_encoder.build((None, n_items))
        self.prior_encoder.trainable = False
        # PyTorch's initialisation, also in the item-row layout: U(+-1/sqrt(latent_dim)).
        bound = self.latent_dim**-0.5
        uniform = keras.initializers.RandomUniform(-bound, bound)
        self.decoder = self.build_output(
            n_items,
            0.0,
            dense=keras.layers.Dense(
                n_items, name="decoder", **torch_linear_initializers(self.latent_dim)
            ),
            item_initializers={"kernel_initializer": uniform, "bias_initializer": uniform},
            name="decoder",
        )
        self.decoder.build((None, self.latent_dim))
        # The phase of the last training batch: a switch from encoder to decoder
        # batches refreshes the prior's copy of the encoder.
        self.last_phase = self.add_weight(
            name="last_phase",
            shape=(),
            dtype="int32",
            initializer=keras.initializers.Constant(DECODER_PHASE),
            trainable=False,
        )
        self.built = True
        self._build_optimizers()

    @property
    def output_layer(self):
        """The decoder: the output layer over the catalogue (`SampledOutput`)."""
        return self.decoder

    def compile(self, optimizer="adam", decoder_optimizer=None, **kwargs):
        """Configures training; `optimizer` updates the encoder, `decoder_optimizer` the decoder.

        Args:
            optimizer: str | keras.optimizers.Optimizer. The encoder's optimizer.
            decoder_optimizer: str | keras.optimizers.Optimizer | None. The decoder's
                optimizer; by default a fresh optimizer with the encoder's configuration.
            **kwargs: the other arguments of `keras.Model.compile`.
        """
        super().compile(optimizer=optimizer, **kwargs)
        encoder_optimizer = self.optimizer
        if isinstance(encoder_optimizer, keras.optimizers.LossScaleOptimizer):
            encoder_optimizer = encoder_optimizer.inner_optimizer
        if decoder_optimizer is None:
            config = encoder_optimizer.get_config()
            config["name"] = "decoder_optimizer"
            decoder_optimizer = type(encoder_optimizer).from_config(config)
        else:
            decoder_optimizer = keras.optimizers.get(decoder_optimizer)
        if isinstance(self.optimizer, keras.optimizers.LossScaleOptimizer) and not isinstance(
            decoder_optimizer, keras.optimizers.LossScaleOptimizer
        ):
            decoder_optimizer = keras.optimizers.LossScaleOptimizer(
                decoder_optimizer, name="decoder_loss_scale_optimizer"
            )
        self.decoder_optimizer = decoder_optimizer
        self._decoder_optimizer_config = keras.saving.serialize_keras_object(decoder_optimizer)
        if self.built:
            self._build_optimizers()

    def training_optimizers(self) -> list:
        """The encoder's optimizer and the decoder's."""
        return [self.optimizer, self.decoder_optimizer]

    def get_compile_config(self):
        config = super().get_compile_config()
        if config:
            config["decoder_optimizer"] = self._decoder_optimizer_config
        return config

    def compile_from_config(self, config):
        self.compile(**keras.saving.deserialize_keras_object(config))

    def _build_optimizers(self):
        """Creates each optimizer's slots for its own half of the weights only."""
        if self.compiled and not self.optimizer.built:
            self.optimizer.build(self.encoder.trainable_variables)
        if self.decoder_optimizer is not None and not self.decoder_optimizer.built:
            self.decoder_optimizer.build(self.decoder.trainable_variables)

    def training_batches(
        self,
        matrix,
        batch_size: int = 500,
        shuffle: bool = True,
        seed: int | None = None,
        initial_epoch: int = 0,
    ) -> tf.data.Dataset:
        """One Keras epoch of RecVAE training: the encoder passes, then the decoder passes.

        Each element is `(x, phase)`: a sparse batch as `sparse_batches` makes it, and
        `ENCODER_PHASE` or `DECODER_PHASE`.

        Args:
            matrix: scipy sparse matrix. The training users' rows.
            batch_size: int. Users per batch. Defaults to `500`.
            shuffle: bool. Reshuffle the users on every pass. Defaults to `True`.
            seed: int | None. Seed of the shuffles. Defaults to `None`.
            initial_epoch: int. The Keras epoch of the first iteration (a resumed run),
                whose passes' orders are then those of an uninterrupted run. Defaults to 0.
        """
        if self.gamma is None and self.beta is None:
            self.set_gamma(matrix)
        phases = [ENCODER_PHASE] * self.n_enc_epochs + [DECODER_PHASE] * self.n_dec_epochs
        one_pass = sparse_batches(
            matrix,
            batch_size,
            shuffle=shuffle,
            seed=seed,
            prefetch=False,
            initial_pass=initial_epoch * len(phases),
        )

        def tagged_pass(phase):
            def tag(x):
                return x, phase

            return one_pass.map(tag)

        dataset = tf.data.Dataset.from_tensor_slices(tf.constant(phases, tf.int32))
        dataset = dataset.flat_map(tagged_pass)
        steps = len(phases) * -(-matrix.shape[0] // batch_size)
        dataset = dataset.apply(tf.data.experimental.assert_cardinality(steps))
        return dataset.prefetch(tf.data.AUTOTUNE)

    def posterior_parameters(self, inputs, training=False):
        """Mean and log-variance of the posterior for a sparse input."""
        h = self.input_dropout(l2_normalize_rows(inputs), training=training)
        return self.encoder(h)

    def call(self, inputs, training=False):
        mean, log_var = self.posterior_parameters(inputs, training=training)
        return self.decoder(self.sampling([mean, log_var], training=training))

    def encode(self, inputs):
        mean, _ = self.posterior_parameters(inputs, training=False)
        return mean

    def adapt(self, matrix, combine=None) -> None:
        super().adapt(matrix, combine)
        if self.gamma is None and self.beta is None:
            self.set_gamma(matrix, combine)

    def set_gamma(self, matrix, combine=None) -> None:
        """Sets `gamma` to `KL_WEIGHT_OF_MEAN_USER` over the mean row sum of `matrix`.

        The mean is over the users with a history; under per-worker shards, over every
        worker's (`combine`, see `Recommender.adapt`).
        """
        matrix = sp.csr_matrix(matrix)
        sums = np.asarray(matrix.sum(axis=1)).ravel()
        total, users = self.training_totals([sums.sum(), np.count_nonzero(sums > 0)], combine)
        if total <= 0:
            raise ValueError(
                "RecVAE sets gamma from the training data's mean history, and the training "
                f"matrix ({matrix.shape[0]} rows) has no entries: give `gamma` or `beta`"
            )
        self.gamma = KL_WEIGHT_OF_MEAN_USER * float(users) / float(total)

    def kl_weights(self, inputs) -> tf.Tensor:
        """The KL weight of each row: `gamma * |x_u|`, or `beta` when given, shape [batch]."""
        sums = row_sums(inputs, keras.ops.cast(inputs.values, "float32"))
        if self.beta is not None:
            return keras.ops.full_like(sums, self.beta)
        if self.gamma is None:
            raise ValueError(
                "RecVAE's gamma is set from the training data: call `model.adapt(matrix)` or "
                "fit on `model.training_batches(matrix, batch_size)`, or give `gamma`"
            )
        return self.gamma * sums

    def loss_parts(self, data, training: bool, dropout: bool = False) -> dict:
        """The loss, its negative log-likelihood and its weighted KL term, each a batch mean.

        Under a `tf.distribute` strategy, this replica's shares of the global batch's means.

        Args:
            data: tf.SparseTensor, or a tuple whose first part it is. A batch of users'
                rows; empty rows are left out.
            training: bool. Whether `z` is sampled (else the posterior mean).
            dropout: bool. Whether the encoder's input is dropped out. Defaults to `False`.
        """
        inputs = features(data)
        self.ensure_built(inputs)
        normalized = l2_normalize_rows(inputs)
        mean, log_var = self.encoder(self.input_dropout(normalized, training=dropout))
        z = self.sampling([mean, log_var], training=training)
        old_mean, old_log_var = self.prior_encoder(normalized)
        log_q = keras.ops.sum(gaussian_log_density(z, mean, log_var), axis=-1)
        log_p = keras.ops.sum(self.prior([z, old_mean, old_log_var]), axis=-1)
        present = row_counts(inputs) > 0
        nll = replica_mean(self.output_nll(z, inputs, training), present)
        kl = replica_mean(self.kl_weights(inputs) * (log_q - log_p), present)
        return {"loss": nll + kl, "nll": nll, "kl": kl}

    def refresh_prior(self) -> None:
        """Copies the encoder's weights into the prior's copy."""
        for source, target in zip(self.encoder.weights, self.prior_encoder.weights):
            target.assign(source)

    def _update(self, inputs, optimizer, variables, dropout: bool):
        parts = self.minimize(
            lambda: self.loss_parts(inputs, training=True, dropout=dropout), optimizer, variables
        )
        self.track(parts)

    def train_step(self, data):
        inputs, phase = self._phased(data)
        self.ensure_built(inputs)
        phase = keras.ops.cast(phase, "int32")

        def refresh():
            self.refresh_prior()
            return keras.ops.convert_to_tensor(True)

        switching = keras.ops.logical_and(
            phase == DECODER_PHASE, keras.ops.equal(self.last_phase, ENCODER_PHASE)
        )
        # Under a strategy each replica copies its own encoder: the copies stay equal.
        keras.ops.cond(switching, refresh, lambda: keras.ops.convert_to_tensor(False))
        self.last_phase.assign(phase)
        encoder_variables = self.encoder.trainable_variables
        decoder_variables = self.decoder.trainable_variables
        # The updates synchronise the replicas: `switch`, not a cond of the replica context.
        switch(
            phase == ENCODER_PHASE,
            lambda x: self._update(x, self.optimizer, encoder_variables, dropout=True),
            lambda x: self._update(x, self.decoder_optimizer, decoder_variables, dropout=False),
            inputs,
        )
        return {metric.name: metric.result() for metric in self.metrics}

    def _phased(self, data):
        if (
            not isinstance(data, (tuple, list))
            or len(data) != 2
            or isinstance(data[1], tf.SparseTensor)
            or data[1].shape.rank != 0
        ):
            raise ValueError(
                "RecVAE alternates encoder and decoder passes: fit it on "
                "`model.training_batches(matrix, batch_size)`, whose elements are "
                f"`(x, phase)` pairs. Received elements: {describe_structure(data)}"
            )
        return data

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "hidden_dim": self.hidden_dim,
                "latent_dim": self.latent_dim,
                "n_layers": self.n_layers,
                "dropout": self.dropout,
                "gamma": self.gamma,
                "beta": self.beta,
                "n_enc_epochs": self.n_enc_epochs,
                "n_dec_epochs": self.n_dec_epochs,
                "mixture_weights": list(self.mixture_weights),
                "seed": self.seed,
                **self.output_config(),
            }
        )
        return config
