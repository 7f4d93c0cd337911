"""Loss terms, per row, in float32."""

from __future__ import annotations

import math

import keras
import tensorflow as tf

from keras_recae.sparse_ops import gather_entries, row_sums


def multinomial_nll(logits, targets: tf.SparseTensor) -> tf.Tensor:
    """Multinomial negative log-likelihood of sparse counts per row, shape [batch].

    `-sum_i x_i log softmax(logits)_i` needs only the logits at the non-zeros
    and one logsumexp per row: `sum_i x_i * lse - sum_i x_i * logits_i`.
    """
    logits = keras.ops.cast(logits, "float32")
    values = keras.ops.cast(targets.values, "float32")
    log_normalizer = keras.ops.logsumexp(logits, axis=-1)
    observed = row_sums(targets, values * gather_entries(logits, targets))
    return row_sums(targets, values) * log_normalizer - observed


def sampled_multinomial_nll(
    hidden, kernel, bias, targets: tf.SparseTensor, sampled, log_expected_counts, item_axis=1
) -> tf.Tensor:
    """The multinomial NLL per row with a sampled softmax: logits only where they are needed.

    The candidates are the batch's target items and the `sampled` items. For row u the
    softmax runs over u's own targets and the sampled items, with the logit of each sampled
    item that is not one of u's targets lowered by the log of its expected count in the
    sample over the times it was drawn (the log-Q correction, which makes the sum over the
    sample an unbiased estimate of the sum over the rest of the catalogue); a sampled item
    that is one of u's targets counts once, as a target (accidental hits removed); other
    rows' targets are left out of u's softmax. With every item sampled once at expected
    count 1 it is exactly `multinomial_nll`.

    Args:
        hidden: float tensor [batch, d]. The input of the output layer.
        kernel: float tensor [d, n_items] (a Dense kernel), or [n_items, d] with
            `item_axis=0` (`ItemOutput`'s rows: pass the variable, and its gradient is a
            `tf.IndexedSlices` of the candidates' rows).
        bias: float tensor [n_items] | None. Its bias.
        targets: tf.SparseTensor [batch, n_items]. Counts (or weights) per row.
        sampled: int tensor [n_sampled]. Sampled item columns (repeats allowed).
        log_expected_counts: float tensor [n_sampled]. log(n_sampled x q(item)) of each
            sampled item under the proposal q.
        item_axis: int. The axis of `kernel` that runs over the items. Defaults to 1.

    Returns:
        Float32 tensor [batch].
    """
    hidden = tf.cast(hidden, tf.float32)
    columns = tf.cast(targets.indices[:, 1], tf.int64)
    sampled = tf.cast(sampled, tf.int64)
    n_targets = tf.shape(columns)[0]
    candidates, position = tf.unique(tf.concat([columns, sampled], axis=0), out_idx=tf.int64)
    target_position, sample_position = position[:n_targets], position[n_targets:]
    n_candidates = tf.shape(candidates, out_type=tf.int64)[0]
    vectors = tf.cast(tf.gather(kernel, candidates, axis=item_axis), tf.float32)
    logits = tf.matmul(hidden, vectors, transpose_b=item_axis == 0)
    if bias is not None:
        logits = logits + tf.cast(tf.gather(bias, candidates), tf.float32)
    batch = tf.shape(logits, out_type=tf.int64)[0]
    rows = tf.cast(targets.indices[:, 0], tf.int64)
    # [batch, candidates]: the row's own targets.
    own = tf.scatter_nd(
        tf.stack([rows, target_position], axis=1),
        tf.ones_like(rows, dtype=tf.bool),
        tf.stack([batch, n_candidates]),
    )
    # Per candidate: sampled or not, and its correction (the first sampled copy's; repeats of
    # an item share it, as they share their expected count).
    is_sampled = tf.scatter_nd(
        sample_position[:, None], tf.ones_like(sample_position, dtype=tf.bool), [n_candidates]
    )
    # An item drawn c times stands for c draws: its correction is log(expected / c), so that
    # the sum over the unique candidates is the sum over the draws.
    draws = tf.math.unsorted_segment_sum(
        tf.ones_like(sample_position, dtype=tf.float32), sample_position, n_candidates
    )
    correction = tf.tensor_scatter_nd_update(
        tf.zeros([n_candidates], tf.float32),
        sample_position[:, None],
        tf.cast(log_expected_counts, tf.float32),
    ) - tf.math.log(tf.maximum(draws, 1.0))
    corrected = logits - tf.where(own, 0.0, correction[None, :])
    allowed = own | is_sampled[None, :]
    log_normalizer = tf.reduce_logsumexp(
        tf.where(allowed, corrected, tf.constant(float("-inf"), tf.float32)), axis=-1
    )
    values = tf.cast(targets.values, tf.float32)
    observed = row_sums(
        targets, values * tf.gather_nd(logits, tf.stack([rows, target_position], 1))
    )
    return row_sums(targets, values) * log_normalizer - observed


def gaussian_kl(mean, log_var) -> tf.Tensor:
    """KL(N(mean, exp(log_var)) || N(0, I)) per row, shape [batch]."""
    mean = keras.ops.cast(mean, "float32")
    log_var = keras.ops.cast(log_var, "float32")
    return 0.5 * keras.ops.sum(keras.ops.exp(log_var) + mean * mean - 1.0 - log_var, axis=-1)


def masked_mean(values, mask) -> tf.Tensor:
    """Mean of `values` over the rows where `mask` is non-zero; 0 when there are none."""
    mask = keras.ops.cast(mask, values.dtype)
    return keras.ops.sum(values * mask) / keras.ops.maximum(keras.ops.sum(mask), 1.0)


RECONSTRUCTION_LOSSES = ("multinomial", "logistic", "squared")


def logistic_loss(logits, targets: tf.SparseTensor) -> tf.Tensor:
    """Sigmoid cross-entropy summed over every item of each row, shape [batch].

    The targets are the stored values (1 for implicit feedback) and 0 elsewhere, so
    `sum_i softplus(logit_i) - sum_i y_i logit_i` needs no dense target matrix.
    """
    logits = keras.ops.cast(logits, "float32")
    values = keras.ops.cast(targets.values, "float32")
    observed = row_sums(targets, values * gather_entries(logits, targets))
    return keras.ops.sum(keras.ops.softplus(logits), axis=-1) - observed


def squared_loss(outputs, targets: tf.SparseTensor) -> tf.Tensor:
    """Squared error summed over every item of each row, shape [batch].

    `sum_i (y_i - o_i)^2 = sum_i o_i^2 + sum_i (y_i^2 - 2 y_i o_i)`, the second sum over
    the stored entries only.
    """
    outputs = keras.ops.cast(outputs, "float32")
    values = keras.ops.cast(targets.values, "float32")
    at_targets = gather_entries(outputs, targets)
    observed = row_sums(targets, values * values - 2.0 * values * at_targets)
    return keras.ops.sum(keras.ops.square(outputs), axis=-1) + observed


def reconstruction_loss(outputs, targets: tf.SparseTensor, kind: str) -> tf.Tensor:
    """One of `RECONSTRUCTION_LOSSES` per row over the whole catalogue, shape [batch].

    `outputs` are logits for `"multinomial"` and `"logistic"`, predictions for `"squared"`.
    """
    if kind == "multinomial":
        return multinomial_nll(outputs, targets)
    if kind == "logistic":
        return logistic_loss(outputs, targets)
    if kind == "squared":
        return squared_loss(outputs, targets)
    raise ValueError(f"`loss` should be one of {RECONSTRUCTION_LOSSES}. Received: loss={kind!r}")


def pointwise_loss(outputs, labels, kind: str) -> tf.Tensor:
    """The logistic or squared loss of each (output, label) pair, elementwise."""
    outputs = keras.ops.cast(outputs, "float32")
    labels = keras.ops.cast(labels, "float32")
    if kind == "logistic":
        return keras.ops.softplus(outputs) - labels * outputs
    if kind == "squared":
        return keras.ops.square(labels - outputs)
    raise ValueError(f"`loss` should be 'logistic' or 'squared'. Received: loss={kind!r}")


def gaussian_log_density(x, mean, log_var) -> tf.Tensor:
    """Elementwise log N(x; mean, exp(log_var))."""
    x = keras.ops.cast(x, "float32")
    mean = keras.ops.cast(mean, "float32")
    log_var = keras.ops.cast(log_var, "float32")
    return -0.5 * (
        log_var + math.log(2.0 * math.pi) + keras.ops.square(x - mean) * keras.ops.exp(-log_var)
    )


def composite_prior_log_density(
    z, posterior_mean, posterior_log_var, mixture_weights, standard_log_var=0.0, wide_log_var=10.0
) -> tf.Tensor:
    """RecVAE's composite prior, log-density per latent dimension, shape [batch, latent].

    Each dimension follows the mixture `w_0 N(0, exp(standard_log_var)) + w_1
    N(posterior_mean, exp(posterior_log_var)) + w_2 N(0, exp(wide_log_var))`, as in the
    reference code (the mixture is taken per dimension, then summed by the caller).
    """
    components = [
        gaussian_log_density(z, 0.0, standard_log_var),
        gaussian_log_density(z, posterior_mean, posterior_log_var),
        gaussian_log_density(z, 0.0, wide_log_var),
    ]
    weighted = [c + math.log(w) for c, w in zip(components, mixture_weights)]
    return keras.ops.logsumexp(keras.ops.stack(weighted, axis=-1), axis=-1)


def masked_squared_error(predictions, targets: tf.SparseTensor) -> tf.Tensor:
    """Sum of squared errors at the stored entries of `targets` per row, shape [batch].

    Only observed ratings count: the predictions at the other positions are ignored, and
    an empty row sums to 0.
    """
    predictions = keras.ops.cast(predictions, "float32")
    errors = gather_entries(predictions, targets) - keras.ops.cast(targets.values, "float32")
    return row_sums(targets, errors * errors)
