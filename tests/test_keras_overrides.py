"""Keras still has the private methods `keras_recae.keras_overrides` overrides."""

import inspect

import keras
import numpy as np
import pytest

from keras_recae.keras_overrides import OVERRIDDEN, DistributedTrainerOverrides
from keras_recae.models import EmbeddingRefiner, Recommender


@pytest.mark.parametrize("name", sorted(OVERRIDDEN))
def test_keras_model_has_the_overridden_method_with_its_parameters(name):
    method = getattr(keras.Model, name, None)
    assert method is not None, (
        f"keras.Model.{name} is gone in Keras {keras.__version__}: "
        "keras_recae/keras_overrides.py overrides it and needs updating."
    )
    parameters = tuple(inspect.signature(method).parameters)
    assert parameters == OVERRIDDEN[name], (
        f"keras.Model.{name} takes {parameters} in Keras {keras.__version__}, not "
        f"{OVERRIDDEN[name]}: keras_recae/keras_overrides.py needs updating."
    )


@pytest.mark.parametrize("name", sorted(OVERRIDDEN))
def test_the_override_keeps_the_parameters_of_keras(name):
    override = getattr(DistributedTrainerOverrides, name)
    assert tuple(inspect.signature(override).parameters) == OVERRIDDEN[name]


@pytest.mark.parametrize("cls", [Recommender, EmbeddingRefiner])
def test_the_models_use_the_overrides(cls):
    for name in OVERRIDDEN:
        assert getattr(cls, name) is getattr(DistributedTrainerOverrides, name)


def test_fit_starts_at_the_epoch_a_callback_resumes_it_at():
    from keras_recae.keras_overrides import resume_fit_at

    class Resume(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            resume_fit_at(self.model, 2)

    epochs = []

    class Record(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            epochs.append(epoch)

    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    x = np.zeros((4, 2), np.float32)
    model.fit(x, x[:, :1], epochs=4, verbose=0, callbacks=[Resume(), Record()])
    assert epochs == [2, 3], (
        f"Keras {keras.__version__} no longer starts `fit` at `model._initial_epoch`: "
        "keras_recae.keras_overrides.resume_fit_at (used by RunBackup) needs updating."
    )
