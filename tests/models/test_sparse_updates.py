"""Row-sparse updates: the first layer's and the sampled output's gradients are the rows a
batch used, the lazy Adam moves those rows only, and the model is the same function."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_recae.data import sparse_batches, synthetic_interactions
from keras_recae.layers import ItemOutput, SparseDense
from keras_recae.models import Autoencoder, DenoisingAutoencoder, MultDAE, MultVAE, RecVAE
from keras_recae.models.registry import constructor_arguments
from keras_recae.optimizers import FusedAdam


def batch_of(matrix, rows):
    return next(iter(sparse_batches(matrix[rows], len(rows))))


def test_row_gradients_give_the_same_outputs_and_gradient_as_rows():
    data = synthetic_interactions(seed=0)
    batch = batch_of(data.matrix, np.arange(10))
    plain = SparseDense(6, activation="tanh")
    rows = SparseDense(6, activation="tanh", row_gradients=True)
    plain.build((None, data.n_items))
    rows.build((None, data.n_items))
    rows.set_weights(plain.get_weights())
    gradients = []
    for layer in (plain, rows):
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(layer(batch) ** 2)
        gradients.append(tape.gradient(loss, layer.kernel))
    np.testing.assert_allclose(rows(batch).numpy(), plain(batch).numpy(), rtol=1e-5, atol=1e-6)
    assert isinstance(gradients[1], tf.IndexedSlices)
    assert not isinstance(gradients[0], tf.IndexedSlices)
    # Only the batch's items have rows, and together they are the dense gradient.
    items = set(batch.indices[:, 1].numpy().tolist())
    assert set(gradients[1].indices.numpy().tolist()) == items
    np.testing.assert_allclose(
        tf.convert_to_tensor(gradients[1]).numpy(), gradients[0].numpy(), rtol=1e-5, atol=1e-6
    )
    assert SparseDense.from_config(rows.get_config()).row_gradients
    assert not SparseDense.from_config(plain.get_config()).row_gradients


def test_item_output_is_a_transposed_dense_layer():
    rng = np.random.default_rng(0)
    hidden = rng.normal(size=(3, 5)).astype("float32")
    layer = ItemOutput(7)
    logits = layer(hidden).numpy()
    vectors, bias = layer.item_vectors.numpy(), layer.item_bias.numpy()
    assert vectors.shape == (7, 5)
    np.testing.assert_allclose(logits, hidden @ vectors.T + bias, rtol=1e-5, atol=1e-6)
    with tf.GradientTape() as tape:
        rows, biases = layer.gather(tf.constant([4, 1, 4]))
        loss = tf.reduce_sum(rows) + tf.reduce_sum(biases)
    gradient = tape.gradient(loss, layer.item_vectors)
    assert isinstance(gradient, tf.IndexedSlices)
    assert sorted(set(gradient.indices.numpy().tolist())) == [1, 4]


MODELS = [MultVAE, MultDAE, Autoencoder, DenoisingAutoencoder]


def model_of(cls, **settings):
    # The autoencoders' sampled output is the multinomial loss's.
    loss = {"loss": "multinomial"} if cls in (Autoencoder, DenoisingAutoencoder) else {}
    return cls(hidden_dims=(16, 8), seed=0, l2=0.0, **loss, **settings)


def sparse_model(cls, **settings):
    return model_of(cls, sparse_updates=True, **settings)


def training_loss(model, batch):
    """The loss of a training step on `batch`, as the model's train step computes it."""
    if hasattr(model, "loss_parts"):
        return model.loss_parts(batch, training=True)["loss"]
    return model.compute_loss(x=batch, y_pred=model(batch, training=True), training=True)


@pytest.mark.parametrize("cls", MODELS)
def test_a_step_moves_only_the_rows_of_the_batch_and_the_candidates(cls):
    data = synthetic_interactions(seed=0)
    model = sparse_model(cls, sampled_softmax=20, sampled_proposal="uniform")
    model.adapt(data.matrix)
    model.compile(optimizer=FusedAdam(1e-2, sparse_updates=True))
    batch = batch_of(data.matrix, np.arange(5))
    model(batch)  # builds
    first, output = model.encoder_layers[0], model.output_layer
    assert isinstance(output, ItemOutput)
    with tf.GradientTape() as tape:
        loss = training_loss(model, batch)
    gradients = tape.gradient(loss, [first.kernel, output.item_vectors, output.item_bias])
    assert all(isinstance(g, tf.IndexedSlices) for g in gradients)
    batch_items = set(batch.indices[:, 1].numpy().tolist())
    assert set(gradients[0].indices.numpy().tolist()) == batch_items
    assert batch_items <= set(gradients[1].indices.numpy().tolist())
    # One update: rows outside the gradient keep their weights.
    before = first.kernel.numpy(), output.item_vectors.numpy()
    model.optimizer.apply(gradients, [first.kernel, output.item_vectors, output.item_bias])
    after = first.kernel.numpy(), output.item_vectors.numpy()
    for gradient, old, new in zip(gradients, before, after, strict=False):
        moved = np.flatnonzero(np.any(old != new, axis=1))
        assert set(moved.tolist()) <= set(gradient.indices.numpy().tolist())
        assert moved.size > 0
        untouched = np.setdiff1d(np.arange(old.shape[0]), gradient.indices.numpy())
        np.testing.assert_array_equal(new[untouched], old[untouched])


@pytest.mark.parametrize("cls", MODELS)
def test_with_item_rows_the_model_is_the_same_function(cls):
    data = synthetic_interactions(seed=0)
    batch = batch_of(data.matrix, np.arange(12))
    dense = model_of(cls)
    rows = sparse_model(cls)
    dense(batch)
    rows(batch)
    # The same weights, layer by layer; the output kernel transposed into item rows.
    for layer in dense.layers:
        weights = layer.get_weights()
        if layer is dense.output_layer:
            weights = [weights[0].T, weights[1]]
        if weights:
            rows.get_layer(layer.name).set_weights(weights)
    np.testing.assert_allclose(
        rows(batch, training=False).numpy(),
        dense(batch, training=False).numpy(),
        rtol=1e-5,
        atol=1e-5,
    )


@pytest.mark.parametrize("cls", MODELS)
def test_a_sparse_model_trains_saves_and_loads(tmp_path, cls):
    data = synthetic_interactions(seed=0)
    model = sparse_model(cls, sampled_softmax=32)
    model.adapt(data.matrix)
    model.compile(optimizer=FusedAdam(1e-2, sparse_updates=True))
    history = model.fit(sparse_batches(data.matrix, 100, shuffle=True, seed=0), epochs=4, verbose=0)
    losses = history.history["nll" if "nll" in history.history else "loss"]
    assert losses[-1] < losses[0]
    model.save(tmp_path / "model.keras")
    loaded = keras.saving.load_model(tmp_path / "model.keras")
    assert loaded.get_config()["sparse_updates"] and loaded.optimizer.sparse_updates
    batch = batch_of(data.matrix, np.arange(8))
    np.testing.assert_allclose(loaded(batch).numpy(), model(batch).numpy(), rtol=1e-5)


@pytest.mark.parametrize("cls", MODELS)
def test_sparse_updates_refuse_a_penalty_on_the_whole_kernel(cls):
    loss = {"loss": "multinomial"} if cls in (Autoencoder, DenoisingAutoencoder) else {}
    with pytest.raises(ValueError, match="`sparse_updates=True` needs `l2=0`"):
        cls(sparse_updates=True, l2=1e-4, **loss)


@pytest.mark.parametrize("cls", [Autoencoder, DenoisingAutoencoder])
@pytest.mark.parametrize("setting", [{"sampled_softmax": 10}, {"sparse_updates": True}])
def test_the_autoencoders_sample_the_multinomial_loss_only(cls, setting):
    with pytest.raises(ValueError, match="need `loss=\"multinomial\"`.*loss='squared'"):
        cls(loss="squared", **setting)


def rec_vae(**settings):
    return RecVAE(hidden_dim=16, latent_dim=8, n_layers=2, seed=0, **settings)


def test_rec_vae_moves_only_the_rows_of_the_batch_and_the_candidates():
    data = synthetic_interactions(seed=0)
    model = rec_vae(sparse_updates=True, sampled_softmax=20, sampled_proposal="uniform")
    model.adapt(data.matrix)
    batch = batch_of(data.matrix, np.arange(5))
    model(batch)  # builds
    first, decoder = model.encoder.dense_layers[0], model.decoder
    assert isinstance(decoder, ItemOutput) and model.output_layer is decoder
    variables = [first.kernel, decoder.item_vectors, decoder.item_bias]
    with tf.GradientTape() as tape:
        loss = model.loss_parts(batch, training=True, dropout=True)["loss"]
    gradients = tape.gradient(loss, variables)
    assert all(isinstance(g, tf.IndexedSlices) for g in gradients)
    batch_items = set(batch.indices[:, 1].numpy().tolist())
    assert set(gradients[0].indices.numpy().tolist()) == batch_items
    assert batch_items <= set(gradients[1].indices.numpy().tolist())
    before = [v.numpy() for v in variables[:2]]
    FusedAdam(1e-2, sparse_updates=True).apply(gradients, variables)
    for gradient, old, variable in zip(gradients, before, variables):
        new = variable.numpy()
        untouched = np.setdiff1d(np.arange(old.shape[0]), gradient.indices.numpy())
        np.testing.assert_array_equal(new[untouched], old[untouched])
        assert np.any(new != old)


def test_rec_vae_with_item_rows_is_the_same_function_and_trains_saves_and_loads(tmp_path):
    data = synthetic_interactions(seed=0)
    batch = batch_of(data.matrix, np.arange(12))
    dense, rows = rec_vae(), rec_vae(sparse_updates=True, sampled_softmax=32)
    rows.adapt(data.matrix)
    dense(batch)
    rows(batch)
    for layer in dense.layers:
        weights = layer.get_weights()
        if layer.name == "decoder":
            weights = [weights[0].T, weights[1]]
        if weights:
            rows.get_layer(layer.name).set_weights(weights)
    np.testing.assert_allclose(rows(batch).numpy(), dense(batch).numpy(), rtol=1e-5, atol=1e-5)
    # Both halves' optimizers update rows only; the loss falls; the file keeps it all.
    rows.compile(optimizer=FusedAdam(1e-2, sparse_updates=True))
    assert rows.decoder_optimizer.sparse_updates
    history = rows.fit(rows.training_batches(data.matrix, 100, seed=0), epochs=4, verbose=0)
    assert history.history["nll"][-1] < history.history["nll"][0]
    rows.save(tmp_path / "model.keras")
    loaded = keras.saving.load_model(tmp_path / "model.keras")
    assert loaded.get_config()["sparse_updates"] and loaded.encoder.row_gradients
    np.testing.assert_allclose(loaded(batch).numpy(), rows(batch).numpy(), rtol=1e-5)


@pytest.mark.parametrize("cls", [*MODELS, RecVAE])
def test_the_output_settings_are_settings_of_the_command_line(cls):
    # `--set` takes a model's constructor arguments, not what `**kwargs` passes on.
    arguments = constructor_arguments(cls)
    assert {"sampled_softmax", "sampled_proposal", "sparse_updates"} <= set(arguments)


def test_a_sampled_sparse_autoencoder_trains_from_the_command_line(tmp_path):
    from keras_recae import cli

    code = cli.main(
        ["train", "autoencoder", "--data", "synthetic", "--epochs", "2", "--threads", "1",
         "--set", "loss=multinomial", "--set", "sampled_softmax=100",
         "--set", "sparse_updates=true", "--out", str(tmp_path / "run")]
    )  # fmt: skip
    assert code == 0
    loaded = keras.saving.load_model(tmp_path / "run" / "model.keras")
    assert loaded.sampled_softmax == 100 and loaded.optimizer.sparse_updates
