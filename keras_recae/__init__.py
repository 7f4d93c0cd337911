"""keras-recae: autoencoder recommenders for Keras 3 and TensorFlow."""

from keras_recae import _startup

# Before any module imports TensorFlow: the command line starts it without the C++ noise.
_startup.quiet_tensorflow_start()

from keras_recae import (  # noqa: E402
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
