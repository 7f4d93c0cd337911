"""The zoo by name: command-line names of the models and the refiners, and their settings.

A model's name is its class name in kebab case (`MultVAE` -> `mult-vae`); the command line,
the runner, the tuner and `run.json` files use these names. Adding a model to the zoo means
adding its class to `MODELS` (or `REFINERS`).
"""

from __future__ import annotations

import inspect
import re

from keras_recae.errors import ConfigError
from keras_recae.models.auto_rec import AutoRec
from keras_recae.models.autoencoder import Autoencoder
from keras_recae.models.cdae import CDAE
from keras_recae.models.deep_rec import DeepRec
from keras_recae.models.denoising_autoencoder import DenoisingAutoencoder
from keras_recae.models.denoising_embedding_autoencoder import DenoisingEmbeddingAutoencoder
from keras_recae.models.dlae import DLAE
from keras_recae.models.ease import EASE
from keras_recae.models.edlae import EDLAE
from keras_recae.models.elsa import ELSA
from keras_recae.models.embedding_autoencoder import EmbeddingAutoencoder
from keras_recae.models.embedding_vae import EmbeddingVAE
from keras_recae.models.mult_dae import MultDAE
from keras_recae.models.mult_vae import MultVAE
from keras_recae.models.rdlae import RDLAE
from keras_recae.models.rec_vae import RecVAE

# The recommenders `train` fits, and the embedding refiners `refine` fits.
MODELS = (
    AutoRec,
    Autoencoder,
    CDAE,
    DeepRec,
    DenoisingAutoencoder,
    DLAE,
    EASE,
    EDLAE,
    ELSA,
    MultDAE,
    MultVAE,
    RDLAE,
    RecVAE,
)
REFINERS = (EmbeddingAutoencoder, DenoisingEmbeddingAutoencoder, EmbeddingVAE)
MODEL_ALIASES = {"autorec": "auto-rec"}
REFINER_ALIASES = {
    "ae": "embedding-autoencoder",
    "dae": "denoising-embedding-autoencoder",
    "vae": "embedding-vae",
}


def kebab_case(name: str) -> str:
    """`MultVAE` -> `mult-vae`, `EASE` -> `ease`, `AutoRec` -> `auto-rec`."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "-", name).lower()


def model_classes() -> dict:
    """The trainable recommenders by their names, aliases included."""
    return _with_aliases(MODELS, MODEL_ALIASES)


def refiner_classes() -> dict:
    """The embedding refiners by their names: short ones (`ae`, `dae`, `vae`) first."""
    classes = _with_aliases(REFINERS, REFINER_ALIASES)
    return {**{alias: classes[alias] for alias in REFINER_ALIASES}, **classes}


def _with_aliases(classes, aliases: dict) -> dict:
    named = {kebab_case(cls.__name__): cls for cls in classes}
    named.update({alias: named[name] for alias, name in aliases.items()})
    return named


def model_class(name: str):
    """The recommender class of a name; an unknown name lists the known ones."""
    classes = model_classes()
    if name not in classes:
        raise ConfigError(f"unknown model {name!r}. Models: {', '.join(sorted(classes))}")
    return classes[name]


def refiner_class(name: str):
    """The refiner class of a name; an unknown name lists the known ones."""
    classes = refiner_classes()
    if name not in classes:
        raise ConfigError(f"unknown refiner {name!r}. Refiners: {', '.join(classes)}")
    return classes[name]


def model_name(cls) -> str:
    """The name of a model or refiner class, as `model_classes` lists it."""
    return kebab_case(cls.__name__)


def constructor_arguments(cls) -> list[str]:
    """The keyword arguments of `cls.__init__`, without `self` and `**kwargs`."""
    return [p for p in inspect.signature(cls.__init__).parameters if p not in ("self", "kwargs")]


def check_settings(cls, settings: dict) -> dict:
    """Constructor arguments checked by name and by building one model from them.

    Raises:
        ConfigError: for an argument `cls` does not take, naming the ones it does, or a
            value the constructor refuses, with the constructor's message.
    """
    accepted = constructor_arguments(cls)
    for key in settings:
        if key not in accepted:
            raise ConfigError(
                f"--set {key}: {cls.__name__} has no argument {key!r}. "
                f"Its arguments: {', '.join(accepted)}"
            )
    try:
        cls(**settings)
    except (TypeError, ValueError) as error:
        raise ConfigError(f"--set: {error}") from None
    return settings


def takes_seed(cls) -> bool:
    """Whether the class has a `seed` argument, which the runner fills from the run's seed."""
    return "seed" in constructor_arguments(cls)
