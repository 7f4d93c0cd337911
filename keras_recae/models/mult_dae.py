"""Mult-DAE: the denoising autoencoder with a multinomial likelihood."""

from __future__ import annotations

import keras

from keras_recae.checks import check_hidden_dims, check_non_negative, check_rate
from keras_recae.distribute import replica_mean, weight_penalty
from keras_recae.layers.sparse_dropout import SparseDropout
from keras_recae.losses import multinomial_nll
from keras_recae.models.building import build_stack, features, vae_cf_dense
from keras_recae.models.recommender import Recommender
from keras_recae.models.sampled_output import SampledOutput, document_settings
from keras_recae.search_space import choice, float_range
from keras_recae.sparse_ops import l2_normalize_rows, row_counts


@keras.saving.register_keras_serializable(package="keras_recae")
@document_settings
class MultDAE(SampledOutput, Recommender):
    """Denoising autoencoder for collaborative filtering (Mult-DAE).

    The input row is L2-normalised and dropped out in training, passed
    through tanh layers down to the code and back up, and the output logits
    are trained with the multinomial negative log-likelihood plus an L2
    penalty on the kernels, in Keras's own train step (`compute_loss`); with a sampled
    softmax, `call` in training stops before the output layer and the loss computes the
    logits it needs. Under a
    `tf.distribute` strategy each replica's loss is its share of the global batch's,
    the convention of Keras's `compute_loss` (see `keras_recae.distribute`).

    Args:
        hidden_dims: list of int. Encoder widths, the last one being the
            code; the decoder mirrors them. Defaults to `(200,)` (the paper's
            `(600, 200)` learns slower: RESULTS.md, "Defaults that transfer").
        dropout: float. Dropout rate on the input, in [0, 1). Defaults to `0.33`
            (the paper's 0.5 climbs slower on sparse data such as Gowalla).
        l2: float. L2 penalty on the kernels, added to the per-user mean loss.
            Defaults to `2e-5` (the reference code's 0.01 divided by the
            batch size of 500).
        seed: int | None. Seed of the dropout (and of the sampling). Defaults to `None`.
        {output settings}

    Example:

    ```python
    import keras
    from keras_recae.data import sparse_batches, synthetic_interactions
    from keras_recae.models import MultDAE

    data = synthetic_interactions(seed=0)
    model = MultDAE(hidden_dims=(64,), seed=0)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    model.fit(sparse_batches(data.matrix, 100, shuffle=True, seed=0), epochs=2)
    ```

    References:
        Liang, Krishnan, Hoffman, Jebara. Variational Autoencoders for
        Collaborative Filtering. WWW 2018.
    """

    search_space = {
        "dropout": float_range(0.0, 0.8),
        "l2": float_range(1e-7, 1e-3, log=True),
        "hidden_dims": choice([200], [600, 200], [1000, 300]),
        "lr": float_range(1e-4, 1e-2, log=True),
    }
    # The paper's 1e-3 at 500 users a batch leaves small data sets under-trained after 30
    # epochs (a data set of a few hundred users gets two updates a pass), and a larger rate
    # peaks early and lower on Gowalla: the paper's rate with batches small enough for fifty
    # updates a pass, as the autoencoders' (RESULTS.md, "Defaults that transfer").
    default_lr = 1e-3
    min_updates_per_epoch = 50
    has_encoder = True

    def __init__(
        self,
        hidden_dims=(200,),
        dropout: float = 0.33,
        l2: float = 2e-5,
        seed: int | None = None,
        sampled_softmax: int = 0,
        sampled_proposal: str = "popularity",
        sparse_updates: bool = False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.hidden_dims = check_hidden_dims(hidden_dims)
        self.dropout = check_rate("dropout", dropout)
        self.l2 = check_non_negative("l2", l2)
        self.seed = seed
        self.input_dropout = SparseDropout(self.dropout, seed=seed, name="input_dropout")
        self.init_output(sampled_softmax, sampled_proposal, sparse_updates, self.l2, seed)
        self.encoder_layers = [
            self.encoder_dense(units, "tanh", f"encoder_{i}", self.l2, first=i == 0)
            for i, units in enumerate(self.hidden_dims)
        ]
        self.decoder_layers = [
            vae_cf_dense(units, "tanh", f"decoder_{i}", self.l2)
            for i, units in enumerate(reversed(self.hidden_dims[:-1]))
        ]

    def build(self, input_shape):
        n_items = input_shape[-1]
        self.output_layer = self.build_output(n_items, self.l2)
        build_stack(self.encoder_layers, n_items)
        build_stack(self.decoder_layers + [self.output_layer], self.hidden_dims[-1])

    def encode(self, inputs, training=False):
        h = self.input_dropout(l2_normalize_rows(inputs), training=training)
        for layer in self.encoder_layers:
            h = layer(h)
        return h

    def call(self, inputs, training=False):
        h = self.encode(inputs, training=training)
        for layer in self.decoder_layers:
            h = layer(h)
        if training and self.sampled_softmax:
            # The sampled loss takes the output layer's input and computes the logits of
            # its candidates only (`compute_loss`).
            return h
        return self.output_layer(h)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        inputs = features(x)
        if training and self.sampled_softmax:
            rows_nll = self.output_nll(y_pred, inputs, training=True)
        else:
            rows_nll = multinomial_nll(y_pred, inputs)
        nll = replica_mean(rows_nll, row_counts(inputs) > 0)
        if self.losses:
            nll = nll + weight_penalty(self.losses)
        return nll

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "hidden_dims": list(self.hidden_dims),
                "dropout": self.dropout,
                "l2": self.l2,
                "seed": self.seed,
                **self.output_config(),
            }
        )
        return config
