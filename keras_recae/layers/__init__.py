"""Reusable layers."""

from keras_recae.layers.composite_prior import CompositePrior
from keras_recae.layers.gaussian_sampling import GaussianSampling
from keras_recae.layers.item_output import ItemOutput
from keras_recae.layers.rec_vae_encoder import RecVAEEncoder
from keras_recae.layers.sparse_dense import SparseDense
from keras_recae.layers.sparse_dropout import SparseDropout
from keras_recae.layers.sparse_masking import SparseMasking

__all__ = [
    "GaussianSampling",
    "ItemOutput",
    "SparseDense",
    "SparseDropout",
    "CompositePrior",
    "RecVAEEncoder",
    "SparseMasking",
]
