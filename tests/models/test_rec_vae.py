import keras
import numpy as np
import pytest
import scipy.sparse as sp
import tensorflow as tf

from keras_recae.callbacks import LearningRateDecay
from keras_recae.data import sparse_batches, synthetic_interactions, to_sparse_tensor
from keras_recae.models import RecVAE
from keras_recae.models.rec_vae import DECODER_PHASE, ENCODER_PHASE

N_ITEMS = 40
BATCH = 40
TINY = {"hidden_dim": 16, "latent_dim": 4, "n_layers": 2}


@pytest.fixture(scope="module")
def data():
    return synthetic_interactions(n_users=120, n_items=N_ITEMS, n_clusters=4, density=0.15)


@pytest.fixture(scope="module")
def trained(data):
    """A small RecVAE fitted for one epoch (4 passes of 3 steps), with the evaluated loss
    around it and the data's item ids."""
    keras.utils.set_random_seed(0)
    model = RecVAE(**TINY, gamma=0.01, seed=1)
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    before = model.evaluate(sparse_batches(data.matrix, BATCH), return_dict=True, verbose=0)
    history = model.fit(model.training_batches(data.matrix, BATCH, seed=0), epochs=1, verbose=0)
    after = model.evaluate(sparse_batches(data.matrix, BATCH), return_dict=True, verbose=0)
    model.set_item_ids(data.item_ids)
    return model, before["loss"], after["loss"], history.history


def batch(data, rows=slice(0, 10)):
    return to_sparse_tensor(data.matrix[rows])


def numpy_encoder(encoder, dense):
    """Posterior mean and log-variance of a `RecVAEEncoder` for L2-normalised rows."""
    dense = dense.astype(np.float64)
    norms = np.linalg.norm(dense, axis=1, keepdims=True)
    h = np.divide(dense, norms, out=np.zeros_like(dense), where=norms > 0)
    total = None
    for fc, norm in zip(encoder.dense_layers, encoder.norm_layers):
        pre = h @ fc.kernel.numpy() + fc.bias.numpy() + (0.0 if total is None else total)
        swish = pre / (1.0 + np.exp(-pre))
        centred = swish - swish.mean(axis=1, keepdims=True)
        h = centred / np.sqrt(swish.var(axis=1, keepdims=True) + 0.1)
        h = h * norm.gamma.numpy() + norm.beta.numpy()
        total = h if total is None else total + h
    mean = h @ encoder.mean_layer.kernel.numpy() + encoder.mean_layer.bias.numpy()
    log_var = h @ encoder.log_var_layer.kernel.numpy() + encoder.log_var_layer.bias.numpy()
    return mean, log_var


def normal_log_pdf(x, mean, log_var):
    return -0.5 * (log_var + np.log(2 * np.pi) + (x - mean) ** 2 / np.exp(log_var))


def numpy_loss_parts(model, dense):
    """Loss, NLL and weighted KL at inference (z = posterior mean), computed in numpy."""
    mean, log_var = numpy_encoder(model.encoder, dense)
    old_mean, old_log_var = numpy_encoder(model.prior_encoder, dense)
    logits = mean @ model.decoder.kernel.numpy() + model.decoder.bias.numpy()
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_softmax = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    nll = -(dense * log_softmax).sum(axis=1)
    log_q = normal_log_pdf(mean, mean, log_var).sum(axis=1)
    w = model.mixture_weights
    prior = (
        w[0] * np.exp(normal_log_pdf(mean, 0.0, 0.0))
        + w[1] * np.exp(normal_log_pdf(mean, old_mean, old_log_var))
        + w[2] * np.exp(normal_log_pdf(mean, 0.0, 10.0))
    )
    log_p = np.log(prior).sum(axis=1)
    weight = model.beta if model.beta is not None else model.gamma * dense.sum(axis=1)
    present = dense.sum(axis=1) > 0
    kl = (weight * (log_q - log_p))[present].mean()
    return nll[present].mean() + kl, nll[present].mean(), kl


def test_one_epoch_is_the_encoder_passes_then_the_decoder_passes(data):
    model = RecVAE(**TINY, n_enc_epochs=3, n_dec_epochs=2)
    dataset = model.training_batches(data.matrix, BATCH, seed=0)
    phases = [int(phase) for _, phase in dataset]
    assert phases == [ENCODER_PHASE] * 9 + [DECODER_PHASE] * 6
    assert dataset.cardinality().numpy() == 15
    assert all(isinstance(x, tf.SparseTensor) and x.shape == (BATCH, N_ITEMS) for x, _ in dataset)
    # Each pass holds every user once, in a new order.
    passes = [list(dataset)[3 * p : 3 * p + 3] for p in range(5)]
    rows = [np.concatenate([tf.sparse.to_dense(x).numpy() for x, _ in part]) for part in passes]
    ordered = [r[np.lexsort(r.T[::-1])] for r in rows]
    expected = data.matrix.toarray()
    expected = expected[np.lexsort(expected.T[::-1])]
    assert all(np.array_equal(r, expected) for r in ordered)
    assert not np.array_equal(rows[0], rows[1])


def test_a_pipeline_from_a_later_epoch_gives_that_epoch_passes(data):
    model = RecVAE(**TINY, n_enc_epochs=2, n_dec_epochs=1)

    def dense(batches):
        return [tf.sparse.to_dense(x).numpy() for x, _ in batches]

    uninterrupted = model.training_batches(data.matrix, BATCH, seed=0).repeat()
    first_three_epochs = dense(uninterrupted.take(3 * 3 * 3))
    resumed = model.training_batches(data.matrix, BATCH, seed=0, initial_epoch=2)
    later = dense(resumed)
    assert len(later) == 9
    for got, expected in zip(later, first_three_epochs[18:], strict=True):
        np.testing.assert_array_equal(got, expected)


def test_one_epoch_lowers_the_loss(trained):
    _, before, after, history = trained
    assert after < before - 0.5
    np.testing.assert_allclose(history["loss"], np.add(history["nll"], history["kl"]), rtol=1e-5)


class WeightRecorder(keras.callbacks.Callback):
    """Copies of the encoder, decoder and prior-encoder weights after every batch."""

    def __init__(self):
        super().__init__()
        self.snapshots = []

    def snapshot(self):
        model = self.model
        return {
            part: [w.numpy().copy() for w in getattr(model, part).weights]
            for part in ("encoder", "decoder", "prior_encoder")
        }

    def on_train_begin(self, logs=None):
        self.snapshots.append(self.snapshot())

    def on_train_batch_end(self, batch, logs=None):
        self.snapshots.append(self.snapshot())


def same(first, second) -> bool:
    return all(np.array_equal(a, b) for a, b in zip(first, second))


def test_the_alternating_schedule_updates_one_half_and_refreshes_the_prior_at_the_switch(data):
    # One batch per pass: the steps of an epoch are encoder, encoder, decoder.
    keras.utils.set_random_seed(0)
    model = RecVAE(**TINY, n_enc_epochs=2, n_dec_epochs=1, seed=0)
    model.build((None, N_ITEMS))
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    recorder = WeightRecorder()
    model.fit(
        model.training_batches(data.matrix, data.n_users, seed=0),
        epochs=2,
        callbacks=[recorder],
        verbose=0,
    )
    s = recorder.snapshots
    assert len(s) == 1 + 6
    assert not same(s[0]["prior_encoder"], s[0]["encoder"])
    for step in (1, 2, 4, 5):  # encoder steps
        assert not same(s[step]["encoder"], s[step - 1]["encoder"])
        assert same(s[step]["decoder"], s[step - 1]["decoder"])
        assert same(s[step]["prior_encoder"], s[step - 1]["prior_encoder"])
    for step in (3, 6):  # decoder steps, the first of their epoch
        assert same(s[step]["encoder"], s[step - 1]["encoder"])
        assert not same(s[step]["decoder"], s[step - 1]["decoder"])
        assert same(s[step]["prior_encoder"], s[step - 1]["encoder"])
    assert int(model.optimizer.iterations) == 4
    assert int(model.decoder_optimizer.iterations) == 2
    assert int(model.last_phase) == DECODER_PHASE


def test_the_optimizers_hold_slots_for_their_own_half_only(trained):
    model = trained[0]
    encoder = {id(v) for v in model.encoder.trainable_variables}
    decoder = {id(v) for v in model.decoder.trainable_variables}
    assert {id(v) for v in model.optimizer._trainable_variables} == encoder
    assert {id(v) for v in model.decoder_optimizer._trainable_variables} == decoder
    assert {id(v) for v in model.trainable_variables} == encoder | decoder
    assert not model.prior_encoder.trainable_variables


def test_evaluated_loss_matches_numpy_with_the_composite_prior_and_user_weights():
    # Seven users, one of them empty, values of 2 (|x_u| is the row sum), and three
    # padding rows in the batch: the empty and padding rows must stay out of the means.
    rng = np.random.default_rng(5)
    dense = (rng.random((7, N_ITEMS)) < 0.2).astype(np.float32)
    dense[:, 0] = 1.0
    dense[4] = 0.0
    dense[1, 3] = 2.0
    dense[2, :5] = 2.0
    model = RecVAE(**TINY, gamma=1.0, seed=0)
    model.compile(optimizer="adam")
    results = model.evaluate(sparse_batches(sp.csr_matrix(dense), 10), return_dict=True, verbose=0)
    # The prior's encoder is its own initialisation, not the encoder's, until the first copy.
    assert not np.allclose(model.prior_encoder.weights[0].numpy(), model.encoder.weights[0])
    loss, nll, kl = numpy_loss_parts(model, dense)
    assert abs(kl) > 0.05 * nll
    assert results["nll"] == pytest.approx(nll, rel=1e-5)
    assert results["kl"] == pytest.approx(kl, rel=1e-4, abs=1e-5)
    assert results["loss"] == pytest.approx(loss, rel=1e-5)

    fixed = RecVAE(**TINY, beta=0.7, seed=0)
    fixed.compile(optimizer="adam")
    fixed.build((None, N_ITEMS))
    fixed.set_weights(model.get_weights())
    results = fixed.evaluate(sparse_batches(sp.csr_matrix(dense), 10), return_dict=True, verbose=0)
    loss, nll, kl = numpy_loss_parts(fixed, dense)
    assert results["kl"] == pytest.approx(kl, rel=1e-4, abs=1e-5)
    assert results["loss"] == pytest.approx(loss, rel=1e-5)


def test_kl_weight_is_gamma_times_the_row_sum_or_a_fixed_beta():
    dense = np.array([[1, 1, 0, 2], [0, 0, 0, 0], [1, 0, 0, 0]], np.float32)
    x = tf.sparse.from_dense(dense)
    np.testing.assert_allclose(RecVAE(gamma=0.5).kl_weights(x).numpy(), [2.0, 0.0, 0.5])
    np.testing.assert_allclose(RecVAE(beta=0.2).kl_weights(x).numpy(), [0.2, 0.2, 0.2])


def test_inference_is_deterministic_and_decodes_the_posterior_mean(trained, data):
    model = trained[0]
    x = batch(data)
    scores = model(x, training=False).numpy()
    np.testing.assert_array_equal(model(x).numpy(), scores)
    assert np.any(model(x, training=True).numpy() != scores)
    mean, _ = numpy_encoder(model.encoder, data.matrix[:10].toarray())
    np.testing.assert_allclose(model.encode(x).numpy(), mean, rtol=1e-4, atol=1e-4)
    expected = mean @ model.decoder.kernel.numpy() + model.decoder.bias.numpy()
    np.testing.assert_allclose(scores, expected, rtol=1e-4, atol=1e-4)


def test_fit_on_batches_without_phases_says_what_to_use(data):
    model = RecVAE(**TINY)
    model.compile(optimizer="adam")
    with pytest.raises(ValueError, match=r"fit it on\s+`model.training_batches"):
        model.fit(sparse_batches(data.matrix, BATCH), epochs=1, verbose=0)


def test_train_step_compiles_with_xla(data):
    model = RecVAE(hidden_dim=8, latent_dim=2, n_layers=2, n_enc_epochs=1, n_dec_epochs=1)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), jit_compile=True)
    assert model.jit_compile is True
    # One batch per pass: a single shape, so XLA compiles once.
    dataset = model.training_batches(data.matrix, data.n_users, seed=0)
    history = model.fit(dataset, epochs=1, verbose=0)
    assert all(np.isfinite(values).all() for values in history.history.values())
    assert int(model.optimizer.iterations) == int(model.decoder_optimizer.iterations) == 1
    np.testing.assert_array_equal(
        model.prior_encoder.weights[0].numpy(), model.encoder.weights[0].numpy()
    )


def test_mixed_precision_fit_scales_both_losses(data, dtype_policy):
    # mixed_bfloat16 runs the same code without loss scaling; MultVAE's tests cover it.
    dtype_policy("mixed_float16")
    model = RecVAE(**TINY, seed=0)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    history = model.fit(model.training_batches(data.matrix, BATCH, seed=0), epochs=1, verbose=0)
    assert all(np.isfinite(values).all() for values in history.history.values())
    assert model(batch(data)).dtype == "float16"
    assert {metric.result().dtype for metric in model.metrics} == {tf.float32}
    for optimizer in (model.optimizer, model.decoder_optimizer):
        assert isinstance(optimizer, keras.optimizers.LossScaleOptimizer)
        assert int(optimizer.iterations) > 0


def test_is_trained_after_an_encoder_step(trained):
    model = RecVAE(**TINY)
    model.build((None, N_ITEMS))
    assert not model.is_trained()
    model.compile(optimizer="adam")
    assert not model.is_trained()
    assert trained[0].is_trained()


def test_a_decoder_optimizer_of_its_own(tmp_path):
    model = RecVAE(**TINY, seed=0)
    model.build((None, N_ITEMS))
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3), decoder_optimizer=keras.optimizers.SGD(0.5)
    )
    assert model.decoder_optimizer.built and model.optimizer.built
    path = tmp_path / "rec_vae.keras"
    model.save(path)
    restored = keras.saving.load_model(path)
    assert type(restored.decoder_optimizer) is keras.optimizers.SGD
    assert float(restored.decoder_optimizer.learning_rate) == pytest.approx(0.5)
    assert type(restored.optimizer) is keras.optimizers.Adam
    assert float(restored.optimizer.learning_rate) == pytest.approx(1e-3)


def test_learning_rate_decay_sets_both_optimizers(data):
    model = RecVAE(**TINY, n_enc_epochs=1, n_dec_epochs=1, seed=0)
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    model.fit(
        model.training_batches(data.matrix, BATCH, seed=0),
        epochs=3,
        verbose=0,
        callbacks=[LearningRateDecay(1e-2, 0.5)],
    )
    # The third epoch (epoch 2) ran at 1e-2 * 0.5**2, in the encoder and the decoder passes.
    assert float(model.optimizer.learning_rate) == pytest.approx(2.5e-3)
    assert float(model.decoder_optimizer.learning_rate) == pytest.approx(2.5e-3)


def test_defaults_are_the_reference_codes_but_for_gamma():
    model = RecVAE()
    assert (model.hidden_dim, model.latent_dim, model.n_layers) == (600, 200, 5)
    # gamma is set from the data, not the reference code's 0.005: the next test.
    assert (model.dropout, model.gamma, model.beta) == (0.5, None, None)
    assert (model.n_enc_epochs, model.n_dec_epochs) == (3, 1)
    assert model.mixture_weights == pytest.approx((3 / 20, 3 / 4, 1 / 10))


def test_default_gamma_gives_the_mean_user_a_kl_weight_of_one_half(data):
    # Counts, not only ones, and an empty row (left out of the mean).
    matrix = data.matrix.toarray()
    matrix[0] = 0.0
    matrix[1] *= 3.0
    sums = matrix.sum(axis=1)
    expected = 0.5 / sums[sums > 0].mean()
    model = RecVAE(**TINY, seed=0)
    with pytest.raises(ValueError, match=r"call `model.adapt\(matrix\)`"):
        model.kl_weights(to_sparse_tensor(data.matrix[:4]))
    model.adapt(sp.csr_matrix(matrix))
    assert model.gamma == pytest.approx(expected, rel=1e-12)
    np.testing.assert_allclose(
        model.kl_weights(to_sparse_tensor(sp.csr_matrix(matrix[:5]))).numpy(),
        expected * sums[:5],
        rtol=1e-6,
    )
    # Set once: adapting to other data, or training on it, keeps it; the file holds it.
    model.adapt(data.matrix[:10])
    model.training_batches(data.matrix[:10], BATCH)
    assert model.gamma == pytest.approx(expected, rel=1e-12)
    assert RecVAE.from_config(model.get_config()).gamma == model.gamma
    # Fitting on `training_batches` alone sets it too.
    fresh = RecVAE(**TINY, seed=0)
    fresh.training_batches(sp.csr_matrix(matrix), BATCH)
    assert fresh.gamma == pytest.approx(expected, rel=1e-12)
    # Under per-worker shards the mean is the whole data's: two workers' totals summed.
    first, second = sp.csr_matrix(matrix[:50]), sp.csr_matrix(matrix[50:])

    def combine(values):
        shard = second.sum(axis=1).A.ravel()
        return np.asarray(values, np.float64) + [shard.sum(), np.count_nonzero(shard)]

    sharded = RecVAE(**TINY, seed=0)
    sharded.adapt(first, combine=combine)
    assert sharded.gamma == pytest.approx(expected, rel=1e-12)
    given = RecVAE(**TINY, gamma=0.02)
    given.adapt(first)
    given.training_batches(first, BATCH)
    assert given.gamma == 0.02
    with pytest.raises(ValueError, match=r"training matrix \(3 rows\) has no entries"):
        RecVAE(**TINY).adapt(sp.csr_matrix((3, N_ITEMS)))
    # A fixed beta needs no gamma.
    fixed = RecVAE(**TINY, beta=0.2)
    fixed.adapt(first)
    assert fixed.gamma is None


def test_keras_file_round_trip(trained, data, tmp_path):
    model = trained[0]
    path = tmp_path / "rec_vae.keras"
    model.save(path)
    restored = keras.saving.load_model(path)
    assert type(restored) is RecVAE
    assert restored.get_config() == model.get_config()
    x = batch(data)
    np.testing.assert_allclose(restored(x).numpy(), model(x).numpy(), rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(restored.item_ids, data.item_ids)
    assert restored.is_trained()
    for name in ("optimizer", "decoder_optimizer"):
        assert int(getattr(restored, name).iterations) == int(getattr(model, name).iterations)
    assert int(restored.decoder_optimizer.iterations) == 3
    for saved, loaded in zip(
        model.decoder_optimizer.variables, restored.decoder_optimizer.variables
    ):
        np.testing.assert_array_equal(loaded.numpy(), saved.numpy())
    for saved, loaded in zip(model.prior_encoder.weights, restored.prior_encoder.weights):
        np.testing.assert_array_equal(loaded.numpy(), saved.numpy())
    assert int(restored.last_phase) == DECODER_PHASE
    # Training goes on from the restored state.
    restored.fit(restored.training_batches(data.matrix, BATCH, seed=1), epochs=1, verbose=0)
    assert int(restored.decoder_optimizer.iterations) == 2 * 3


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"dropout": 1.0}, "`dropout` should be in [0, 1). Received: dropout=1.0"),
        ({"hidden_dim": 0}, "`hidden_dim` should be a positive integer. Received: hidden_dim=0"),
        (
            {"latent_dim": 2.5},
            "`latent_dim` should be a positive integer. Received: latent_dim=2.5",
        ),
        ({"gamma": -1.0}, "`gamma` should be >= 0. Received: gamma=-1.0"),
        ({"beta": -0.1}, "`beta` should be >= 0. Received: beta=-0.1"),
        (
            {"n_enc_epochs": 0},
            "`n_enc_epochs` should be a positive integer. Received: n_enc_epochs=0",
        ),
        (
            {"n_dec_epochs": 0},
            "`n_dec_epochs` should be a positive integer. Received: n_dec_epochs=0",
        ),
        ({"mixture_weights": [0.5, 0.5]}, "`mixture_weights` should be 3 positive numbers"),
    ],
)
def test_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ValueError) as error:
        RecVAE(**kwargs)
    assert message in str(error.value)
