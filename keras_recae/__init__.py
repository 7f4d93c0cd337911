"""keras-recae: autoencoder recommenders for Keras 3 and TensorFlow."""

from keras_recae import (
    callbacks,
    data,
    distribute,
    evaluation,
    layers,
    losses,
    metrics,
    models,
    optimizers,
    serving,
)

__version__ = "0.1.0"

__all__ = [
    "callbacks",
    "data",
    "distribute",
    "evaluation",
    "layers",
    "losses",
    "metrics",
    "models",
    "optimizers",
    "serving",
]
