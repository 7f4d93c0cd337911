"""Keras still has the private methods `keras_recae.keras_overrides` overrides."""

import inspect

import keras
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
