"""Behaviour shared by the three embedding refiners (see `EmbeddingRefiner`)."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from scipy.special import erf

from keras_recae.models import (
    DenoisingEmbeddingAutoencoder,
    EmbeddingAutoencoder,
    EmbeddingRefiner,
    EmbeddingVAE,
)

CLASSES = [EmbeddingAutoencoder, DenoisingEmbeddingAutoencoder, EmbeddingVAE]
N, DIM, LATENT = 120, 10, 3


def vectors(seed: int = 0, n: int = N) -> np.ndarray:
    """Low-rank vectors with an offset shared by every item, as word2vec's have."""
    rng = np.random.default_rng(seed)
    factors = rng.normal(size=(n, 3)) @ rng.normal(size=(3, DIM))
    return (factors + 0.3 * rng.normal(size=(n, DIM)) + 2.0).astype(np.float32)


def fitted(cls, epochs: int = 3, **settings):
    keras.utils.set_random_seed(0)
    model = cls(latent_dim=LATENT, hidden_dims=(8,), seed=0, **settings)
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    history = model.fit(vectors(), batch_size=30, epochs=epochs, verbose=0)
    return model, history.history


def gelu(x):
    return 0.5 * x * (1.0 + erf(x / np.sqrt(2.0)))


def numpy_normalize(model, x):
    x = x.astype(np.float64)
    if model.normalization == "l2":
        return x / np.linalg.norm(x, axis=1, keepdims=True)
    if model.normalization == "standardize":
        return (x - model.input_mean.numpy()) / model.input_scale.numpy()
    return x


def dense(layer, h, activation=None):
    out = h @ layer.kernel.numpy().astype(np.float64) + layer.bias.numpy()
    return activation(out) if activation else out


def numpy_code(model, x):
    """The code at inference (the posterior mean), before centring."""
    h = numpy_normalize(model, x)
    for layer in model.encoder_layers:
        h = dense(layer, h, gelu)
    return dense(model.code_layer, h)[:, :LATENT]


def numpy_decode(model, code):
    h = code
    for layer in model.decoder_layers:
        h = dense(layer, h, gelu)
    return dense(model.output_layer, h)


@pytest.mark.parametrize("cls", CLASSES)
@pytest.mark.parametrize("normalization", ["none", "l2", "standardize"])
def test_refine_is_the_centred_code_of_a_numpy_forward_pass(cls, normalization):
    model, _ = fitted(cls, normalization=normalization)
    x = vectors(seed=1, n=17)
    codes = numpy_code(model, x)
    expected = codes - model.code_center.numpy()
    np.testing.assert_allclose(model.refine(x), expected, rtol=1e-4, atol=1e-5)
    # The centre is the mean code of the training vectors.
    np.testing.assert_allclose(
        model.code_center.numpy(), numpy_code(model, vectors()).mean(axis=0), atol=1e-5
    )
    np.testing.assert_allclose(model.refine(vectors()).mean(axis=0), 0.0, atol=1e-5)
    np.testing.assert_array_equal(model.refine(x), model.refine(x))


@pytest.mark.parametrize("cls", CLASSES)
def test_center_false_keeps_the_raw_code(cls):
    model, _ = fitted(cls, center=False)
    x = vectors(seed=1, n=5)
    np.testing.assert_allclose(model.refine(x), numpy_code(model, x), rtol=1e-4, atol=1e-5)
    assert not np.any(model.code_center.numpy())


@pytest.mark.parametrize("normalization", ["none", "l2", "standardize"])
def test_adapt_sets_the_statistics_of_numpy(normalization):
    x = vectors()
    model = EmbeddingAutoencoder(latent_dim=LATENT, normalization=normalization)
    model.adapt(x, batch_size=7)
    x64 = x.astype(np.float64)
    unit = x64 / np.linalg.norm(x64, axis=1, keepdims=True)
    if normalization == "standardize":
        np.testing.assert_allclose(model.input_mean.numpy(), x64.mean(0), rtol=1e-5)
        np.testing.assert_allclose(model.input_scale.numpy(), x64.std(0), rtol=1e-5)
        np.testing.assert_allclose(model.spread.numpy(), 1.0)
    else:
        np.testing.assert_array_equal(model.input_mean.numpy(), 0.0)
        np.testing.assert_array_equal(model.input_scale.numpy(), 1.0)
        spread = unit.std(0) if normalization == "l2" else x64.std(0)
        np.testing.assert_allclose(model.spread.numpy(), spread, rtol=1e-4)
    assert model.is_adapted()


def test_a_constant_dimension_neither_divides_by_zero_nor_vanishes_from_the_loss():
    x = vectors()
    x[:, 4] = 3.0
    model = EmbeddingAutoencoder(latent_dim=LATENT, normalization="standardize")
    model.adapt(x)
    assert model.input_scale.numpy()[4] == 1.0
    assert model.spread.numpy()[4] == 1.0
    assert np.isfinite(model.refine(x)).all()


@pytest.mark.parametrize("reconstruction", ["mse", "cosine"])
@pytest.mark.parametrize("normalization", ["none", "l2", "standardize"])
def test_evaluate_reports_the_reconstruction_loss_of_numpy(reconstruction, normalization):
    x = vectors(seed=2)
    l2 = 1e-3
    model = EmbeddingAutoencoder(
        latent_dim=LATENT,
        hidden_dims=(8,),
        normalization=normalization,
        reconstruction=reconstruction,
        l2=l2,
        seed=0,
    )
    model.adapt(x)
    model.compile(optimizer="adam")
    results = model.evaluate(x, batch_size=N, return_dict=True, verbose=0)
    targets = numpy_normalize(model, x)
    outputs = numpy_decode(model, numpy_code(model, x))
    if reconstruction == "mse":
        errors = (outputs - targets) / model.spread.numpy()
        expected = np.mean(np.mean(errors**2, axis=1))
    else:
        cosine = np.sum(outputs * targets, 1) / (
            np.linalg.norm(outputs, axis=1) * np.linalg.norm(targets, axis=1)
        )
        expected = np.mean(1.0 - cosine)
    kernels = [layer.kernel.numpy() for layer in model.layers if hasattr(layer, "kernel")]
    assert len(kernels) == 4
    penalty = l2 * sum(np.sum(k.astype(np.float64) ** 2) for k in kernels)
    assert results["reconstruction"] == pytest.approx(expected, rel=1e-5)
    assert results["loss"] == pytest.approx(expected + penalty, rel=1e-5)


@pytest.mark.parametrize("cls", CLASSES)
def test_fit_on_a_dataset_adapts_and_centres_as_on_an_array(cls):
    array_model, _ = fitted(cls, epochs=1, normalization="standardize")
    keras.utils.set_random_seed(0)
    model = cls(latent_dim=LATENT, hidden_dims=(8,), normalization="standardize", seed=0)
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    dataset = tf.data.Dataset.from_tensor_slices(vectors()).batch(30)
    history = model.fit(dataset, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    np.testing.assert_allclose(model.input_mean.numpy(), array_model.input_mean.numpy(), rtol=1e-5)
    np.testing.assert_allclose(model.refine(vectors()).mean(axis=0), 0.0, atol=1e-5)


def test_statistics_refuse_an_infinite_dataset_instead_of_hanging():
    repeated = tf.data.Dataset.from_tensor_slices(vectors()).batch(30).repeat()
    model = EmbeddingAutoencoder(latent_dim=LATENT, seed=0)
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    with pytest.raises(ValueError, match="finite dataset.*repeat"):
        model.fit(repeated, epochs=1, steps_per_epoch=2, verbose=0)
    model.adapt(vectors())
    # Adapted, but the codes would still be centred over the dataset after training.
    with pytest.raises(ValueError, match="finite dataset.*repeat"):
        model.fit(repeated, epochs=1, steps_per_epoch=2, verbose=0)
    assert model.optimizer.iterations.numpy() == 0
    with pytest.raises(ValueError, match="finite dataset"):
        model.center_codes(repeated)
    uncentred = EmbeddingAutoencoder(latent_dim=LATENT, center=False, seed=0)
    uncentred.compile(optimizer=keras.optimizers.Adam(1e-2))
    uncentred.adapt(vectors())
    uncentred.fit(repeated, epochs=1, steps_per_epoch=2, verbose=0)
    assert uncentred.optimizer.iterations.numpy() == 2


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"latent_dim": 0}, "`latent_dim` should be a positive integer. Received: latent_dim=0"),
        ({"latent_dim": 2.5}, "latent_dim=2.5"),
        ({"hidden_dims": (8, 0)}, r"`hidden_dims` should be a list of positive integers"),
        ({"activation": "nope"}, "activation='nope'"),
        ({"normalization": "unit"}, r"`normalization` should be one of \['none', 'l2'"),
        ({"reconstruction": "l1"}, "reconstruction='l1'"),
        ({"center": "yes"}, "`center` should be True or False"),
        ({"l2": -1.0}, r"`l2` should be >= 0. Received: l2=-1.0"),
    ],
)
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        EmbeddingAutoencoder(**kwargs)


def test_refine_and_set_items_check_their_inputs():
    model, _ = fitted(EmbeddingAutoencoder)
    with pytest.raises(ValueError, match=r"`vectors` should have shape \(n, 10\)"):
        model.refine(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="the model has none"):
        model.refine()
    with pytest.raises(ValueError, match="should have 10 dimensions"):
        model.set_items(["a", "b"], np.zeros((2, 3)))
    with pytest.raises(ValueError, match="should be unique"):
        model.set_items(["a", "a"], np.zeros((2, DIM)))
    with pytest.raises(ValueError, match="one key per vector"):
        model.set_items(["a"], np.zeros((2, DIM)))
    with pytest.raises(ValueError, match="not built"):
        EmbeddingAutoencoder().refine(np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"\(n, d\) array or a tf.data.Dataset"):
        EmbeddingAutoencoder().fit({"not": "vectors"})


def test_the_refiners_share_the_base_class():
    assert all(issubclass(cls, EmbeddingRefiner) for cls in CLASSES)


def test_training_batches_pad_the_last_batch_with_rows_of_weight_zero():
    model = EmbeddingAutoencoder(latent_dim=LATENT)
    x = vectors(n=70)
    batches = list(model.training_batches(x, 30, seed=1).as_numpy_iterator())
    assert [b[0].shape for b in batches] == [(30, DIM)] * 3
    rows = np.concatenate([b[0] for b in batches])
    weights = np.concatenate([b[2] for b in batches])
    assert weights.tolist() == [1.0] * 70 + [0.0] * 20
    np.testing.assert_array_equal(rows[70:], 0.0)
    # Every vector once, in a shuffled order.
    order = np.lexsort(rows[:70].T)
    np.testing.assert_array_equal(rows[:70][order], x[np.lexsort(x.T)])
    assert not np.array_equal(rows[:70], x)
    with pytest.raises(ValueError, match="`batch_size` should be a positive integer"):
        model.training_batches(x, 0)


@pytest.mark.parametrize("cls", [EmbeddingAutoencoder, EmbeddingVAE])
def test_rows_of_weight_zero_count_nowhere(cls):
    """Padding rows change neither the statistics of `adapt` nor the losses."""
    x = vectors(n=20)
    padded = cls(latent_dim=LATENT, hidden_dims=(8,), normalization="standardize")
    padded.adapt(padded.training_batches(x, 16, shuffle=False))
    model = cls(latent_dim=LATENT, hidden_dims=(8,), normalization="standardize")
    model.adapt(x)
    model.set_weights(padded.get_weights())
    for refiner in (padded, model):
        refiner.compile(optimizer=keras.optimizers.Adam(1e-2))
    np.testing.assert_allclose(padded.input_mean.numpy(), x.mean(axis=0), rtol=1e-5)
    batch = np.concatenate([x[16:], np.full((12, DIM), 7.0, np.float32)])
    weights = np.array([1.0] * 4 + [0.0] * 12, np.float32)
    parts = padded.loss_parts((batch, batch, weights), training=False)
    expected = model.loss_parts(x[16:], training=False)
    for name in expected:
        np.testing.assert_allclose(float(parts[name]), float(expected[name]), rtol=1e-6)
