"""keras-recae: autoencoder recommenders for Keras 3 and TensorFlow."""

from keras_recae import (
    callbacks,
    data,
    distribute,
    errors,
    evaluation,
    layers,
    losses,
    metrics,
    models,
    optimizers,
    refining,
    runs,
    serving,
    training,
)

__version__ = "0.1.0"

__all__ = [
    "callbacks",
    "data",
    "distribute",
    "errors",
    "evaluation",
    "layers",
    "losses",
    "metrics",
    "models",
    "optimizers",
    "refining",
    "runs",
    "serving",
    "training",
]
