"""The model zoo, its base classes and the mixin of their train step."""

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
from keras_recae.models.embedding_refiner import EmbeddingRefiner
from keras_recae.models.embedding_vae import EmbeddingVAE
from keras_recae.models.linear_autoencoder import LinearAutoencoder
from keras_recae.models.mult_dae import MultDAE
from keras_recae.models.mult_vae import MultVAE
from keras_recae.models.rating_autoencoder import RatingAutoencoder
from keras_recae.models.rdlae import RDLAE
from keras_recae.models.rec_vae import RecVAE
from keras_recae.models.recommender import Recommender
from keras_recae.models.reconstruction_autoencoder import ReconstructionAutoencoder

__all__ = [
    "AutoRec",
    "DeepRec",
    "EASE",
    "DLAE",
    "EDLAE",
    "RDLAE",
    "ELSA",
    "LinearAutoencoder",
    "MultDAE",
    "MultVAE",
    "Recommender",
    "RecVAE",
    "CDAE",
    "Autoencoder",
    "DenoisingAutoencoder",
    "EmbeddingRefiner",
    "EmbeddingAutoencoder",
    "DenoisingEmbeddingAutoencoder",
    "EmbeddingVAE",
    "RatingAutoencoder",
    "ReconstructionAutoencoder",
]
