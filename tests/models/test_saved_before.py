"""`.keras` files saved by an earlier version of the package load, and predict as they did."""

import pathlib

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_recae import models

SAVED = pathlib.Path(__file__).parent / "saved_at_0_1"
CLASSES = {
    "auto_rec_item": models.AutoRec,
    "auto_rec_user": models.AutoRec,
    "autoencoder": models.Autoencoder,
    "cdae": models.CDAE,
    "deep_rec": models.DeepRec,
    "denoising_autoencoder": models.DenoisingAutoencoder,
    "denoising_embedding_autoencoder": models.DenoisingEmbeddingAutoencoder,
    "ease": models.EASE,
    "embedding_autoencoder": models.EmbeddingAutoencoder,
    "embedding_vae": models.EmbeddingVAE,
    "mult_dae": models.MultDAE,
    "mult_vae": models.MultVAE,
    "rec_vae": models.RecVAE,
}
REFINERS = {"embedding_autoencoder", "denoising_embedding_autoencoder", "embedding_vae"}


def test_every_saved_file_is_checked():
    assert {path.stem for path in SAVED.glob("*.keras")} == set(CLASSES)


@pytest.mark.parametrize("name", sorted(CLASSES))
def test_saved_model_loads_and_predicts_as_before(name):
    model = keras.saving.load_model(SAVED / f"{name}.keras")
    expected = np.load(SAVED / f"{name}.npz")
    assert type(model) is CLASSES[name]
    assert model.is_trained()
    if name in REFINERS:
        assert model.item_ids.tolist() == [f"item-{i}" for i in range(24)]
        np.testing.assert_allclose(model.refine(expected["inputs"]), expected["refined"], atol=1e-5)
        return
    ids = model.item_ids.tolist()
    assert ids == ([str(i) for i in range(1, 31)] if name == "mult_dae" else list(range(1, 31)))
    inputs = tf.sparse.from_dense(tf.constant(expected["inputs"], tf.float32))
    np.testing.assert_allclose(model(inputs), expected["scores"], atol=1e-5)
    if "users" in expected:
        assert model.user_ids.tolist() == list(range(1, 41))
        scores = model.score_users(inputs, expected["users"])
        np.testing.assert_allclose(scores, expected["user_scores"], atol=1e-5)
