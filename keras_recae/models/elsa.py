"""ELSA: the scalable linear shallow autoencoder, a low-rank EASE trained by gradient steps."""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from keras_recae.checks import check_non_negative, check_positive_int, check_rate
from keras_recae.distribute import replica_mean
from keras_recae.layers import SparseMasking
from keras_recae.models.building import features
from keras_recae.models.loss_parts_training import LossPartsTraining
from keras_recae.models.recommender import Recommender
from keras_recae.search_space import choice, float_range
from keras_recae.sparse_ops import row_sums, sparse_matmul

_EPSILON = 1e-12
# The largest `[batch, n_items]` output (floats) the loss forms: 256 MB.
_OUTPUT_LIMIT = 2**26


@keras.saving.register_keras_serializable(package="keras_recae")
class ELSA(LossPartsTraining, Recommender):
    """Scalable linear shallow autoencoder (ELSA), trained with `model.fit`.

    One weight matrix `A` of shape `[n_items, rank]` whose rows are L2-normalised in every
    use (`A_n`); a user's history `x` is scored `x A_n A_n^T - x`. The diagonal of
    `A_n A_n^T - I` is zero by construction, as EASE's constraint asks, and the item-item
    matrix is never formed: memory is `O(n_items x rank)`, which is what lets it train on
    catalogues where EASE's `n_items x n_items` matrix cannot exist.

    The loss is the squared distance between the L2-normalised output and input,
    `||y / |y| - x / |x|||^2` with `y = x A_n A_n^T - x`, averaged over the users with a
    history. With `z = x A_n`, `<y, x> = |z|^2 - |x|^2` and
    `|y|^2 = z (A_n^T A_n) z^T - 2 |z|^2 + |x|^2`, so a step costs
    `O(nnz x rank + n_items x rank^2)` without forming the `[batch, n_items]` output; when the
    batch is smaller than the rank (and the output small enough), `|y|^2` comes from the
    output itself, which then costs less (`output_is_cheaper`).

    `alpha` adds the item side of the data-adaptive normalisation of the closed-form linear
    autoencoders (Park et al., SIGIR 2025) to the scores, not to the loss: the item-item
    matrix becomes `D^alpha (A_n A_n^T - I) D^-alpha` (`D` the items' training counts, set
    by `adapt`; its diagonal is still zero), which scales down popular items' scores. A
    user is then scored `((x D^alpha) A_n) A_n^T D^-alpha - x`.

    `dropout` is DLAE's dropout (Steck, NeurIPS 2020) on ELSA's input: in training each
    observed entry of the history is dropped with probability `dropout` (masking noise,
    unscaled), and the output of what is left, `y = x~ A_n A_n^T - x~`, is compared with
    the whole history `x`: the dropped items are what the model must learn to predict from
    the others. With `z~ = x~ A_n` and `z = x A_n`, `<y, x> = z~ . z - <x~, x>` and
    `|y|^2 = z~ (A_n^T A_n) z~^T - 2 |z~|^2 + |x~|^2`, so a step costs one more sparse
    product. Scoring is unchanged.

    Args:
        rank: int. Columns of `A` (the latent dimension). Defaults to `256`.
        alpha: float. Item-side normalisation exponent of the scores, `>= 0`. Defaults to
            `0.0`.
        dropout: float. Probability of dropping an observed entry of the input in
            training, in [0, 1). Defaults to `0.0` (the paper's ELSA).
        seed: int | None. Seed of the initial weights and of the dropout. Defaults to
            `None`.

    Example:

    ```python
    import keras
    from keras_recae.data import sparse_batches, synthetic_interactions
    from keras_recae.models import ELSA

    data = synthetic_interactions(seed=0)
    model = ELSA(rank=32, seed=0)
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    model.fit(sparse_batches(data.matrix, 100, shuffle=True, seed=0), epochs=2)
    ```

    References:
        Vancura, Alves, Kasalicky, Kordik. Scalable Linear Shallow Autoencoder for
        Collaborative Filtering. RecSys 2022.
        Steck. Autoencoders that don't overfit towards the Identity. NeurIPS 2020.
    """

    search_space = {
        "rank": choice(64, 128, 256, 512),
        "lr": float_range(1e-3, 1e-1, log=True),
        "dropout": float_range(0.0, 0.8),
    }
    default_lr = 1e-2
    has_encoder = True

    def __init__(
        self,
        rank: int = 256,
        alpha: float = 0.0,
        dropout: float = 0.0,
        seed: int | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.rank = check_positive_int("rank", rank)
        self.alpha = check_non_negative("alpha", alpha)
        self.dropout = check_rate("dropout", dropout)
        self.seed = seed
        # Only with dropout: an ELSA without it keeps the variables of the paper's model.
        self.masking = SparseMasking(self.dropout, seed=seed, name="masking") if dropout else None

    def build(self, input_shape):
        n_items = input_shape[-1]
        # Entries of variance 1 / rank: rows of norm about one, so that Adam's steps turn
        # them by angles of the order of the learning rate whatever the catalogue size.
        initializer = keras.initializers.VarianceScaling(
            scale=1.0, mode="fan_out", distribution="uniform", seed=self.seed
        )
        self.item_factors = self.add_weight(
            name="item_factors", shape=(n_items, self.rank), initializer=initializer
        )
        if self.alpha:
            # `c^alpha` per item (`adapt` sets it from the training counts).
            self.item_scales = self.add_weight(
                name="item_scales", shape=(n_items,), initializer="ones", trainable=False
            )

    def adapt(self, matrix, combine=None) -> None:
        super().adapt(matrix, combine)
        if self.alpha:
            counts = self.training_item_counts(matrix, combine)
            scales = np.maximum(counts, 1).astype(np.float64) ** self.alpha
            self.item_scales.assign(scales.astype("float32"))

    def scaled_inputs(self, inputs):
        """`x D^alpha` (the input itself without `alpha`)."""
        if not self.alpha:
            return inputs
        scales = keras.ops.take(self.item_scales, inputs.indices[:, 1])
        values = keras.ops.cast(inputs.values, "float32") * scales
        return tf.SparseTensor(inputs.indices, values, inputs.dense_shape)

    def normalized_factors(self, dtype="float32"):
        """`A_n`: the rows of `A` divided by their L2 norms."""
        factors = keras.ops.cast(self.item_factors, "float32")
        norms = keras.ops.sqrt(keras.ops.sum(keras.ops.square(factors), axis=1, keepdims=True))
        return keras.ops.cast(factors / keras.ops.maximum(norms, _EPSILON), dtype)

    def encode(self, inputs, training=False):
        factors = self.normalized_factors(self.compute_dtype)
        return sparse_matmul(self.scaled_inputs(inputs), factors)

    def call(self, inputs, training=False):
        factors = self.normalized_factors(self.compute_dtype)
        codes = sparse_matmul(self.scaled_inputs(inputs), factors)
        if not self.alpha:
            return self.reconstruction(inputs, codes, factors)
        outputs = keras.ops.matmul(codes, keras.ops.transpose(factors))
        outputs = outputs / keras.ops.cast(self.item_scales, outputs.dtype)[None, :]
        values = keras.ops.cast(inputs.values, outputs.dtype)
        return tf.tensor_scatter_nd_sub(outputs, inputs.indices, values)

    @staticmethod
    def reconstruction(inputs, codes, factors):
        """`y = z A_n^T - x`, `[batch, n_items]`, from the codes `z = x A_n`."""
        outputs = keras.ops.matmul(codes, keras.ops.transpose(factors))
        values = keras.ops.cast(inputs.values, outputs.dtype)
        return tf.tensor_scatter_nd_sub(outputs, inputs.indices, values)

    def loss_parts(self, data, training: bool) -> dict:
        inputs = features(data)
        # `model.fit` builds a model by calling it; this loss never calls it.
        self.ensure_built(inputs)
        factors = self.normalized_factors("float32")
        values = keras.ops.cast(inputs.values, "float32")
        inputs = tf.SparseTensor(inputs.indices, values, inputs.dense_shape)
        # What the output is formed from (`x~`: the input, with dropout some entries zeroed).
        kept = inputs if self.masking is None else self.masking(inputs, training=training)
        codes = sparse_matmul(kept, factors)
        input_squares = row_sums(inputs, keras.ops.square(values))
        code_squares = keras.ops.sum(keras.ops.square(codes), axis=1)
        # <x~, x>, |x~|^2 and z~ . z: |x|^2, |x|^2 and |z|^2 when nothing is dropped.
        kept_inputs, kept_squares, code_products = input_squares, input_squares, code_squares
        if kept is not inputs:
            kept_inputs = row_sums(inputs, kept.values * values)
            kept_squares = row_sums(kept, keras.ops.square(kept.values))
            code_products = keras.ops.sum(codes * sparse_matmul(inputs, factors), axis=1)

        def from_output():
            outputs = self.reconstruction(kept, codes, factors)
            return keras.ops.sum(keras.ops.square(outputs), axis=1)

        def from_gram():
            gram = keras.ops.matmul(keras.ops.transpose(factors), factors)
            return (
                keras.ops.sum(keras.ops.matmul(codes, gram) * codes, axis=1)
                - 2.0 * code_squares
                + kept_squares
            )

        if inputs.shape[0] is not None:
            cheaper = self.output_is_cheaper(inputs.shape[0], factors.shape[0])
            output_squares = from_output() if cheaper else from_gram()
        else:
            # A pipeline's batches have no static size: the choice is made per batch, or the
            # Gram matrix (`n_items x rank^2`) would be formed at every rank.
            cheaper = self.output_is_cheaper(inputs.dense_shape[0], factors.shape[0])
            output_squares = tf.cond(cheaper, from_output, from_gram)
        cosine = (code_products - kept_inputs) / keras.ops.maximum(
            keras.ops.sqrt(keras.ops.maximum(output_squares, 0.0) * input_squares), _EPSILON
        )
        distance = 2.0 - 2.0 * cosine
        return {"loss": replica_mean(distance, input_squares > 0)}

    def output_is_cheaper(self, batch_size, n_items: int):
        """Whether `|y|^2` costs less from the `[batch, n_items]` output than from `A_n^T A_n`.

        The output takes `batch x n_items x rank` operations, the Gram matrix
        `n_items x rank^2`: the output wins for batches smaller than the rank, as long as it
        stays under `_OUTPUT_LIMIT` floats. Both give the same loss. `batch_size` is an int
        (a bool is returned) or a scalar tensor, a batch's size known when the step runs (a
        boolean tensor is returned).
        """
        if not tf.is_tensor(batch_size):
            return batch_size < self.rank and batch_size * n_items <= _OUTPUT_LIMIT
        batch_size = tf.cast(batch_size, "int64")
        return tf.logical_and(batch_size < self.rank, batch_size * n_items <= _OUTPUT_LIMIT)

    def get_config(self):
        config = super().get_config()
        config.update(
            {"rank": self.rank, "alpha": self.alpha, "dropout": self.dropout, "seed": self.seed}
        )
        return config
