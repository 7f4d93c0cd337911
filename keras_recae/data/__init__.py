"""Readers, interactions, protocols, synthetic data and `tf.data` pipelines."""

from keras_recae.data.interactions import Interactions
from keras_recae.data.pipeline import sparse_batches, to_sparse_tensor
from keras_recae.data.protocols import given_full_train, split_given, split_random, split_strong
from keras_recae.data.readers import DataFormatError, read_given, read_ratings
from keras_recae.data.split import EvalSet, Split, align_eval_set
from keras_recae.data.synthetic import synthetic_frame, synthetic_interactions, synthetic_matrix
from keras_recae.data.vectors import VectorFormatError, read_vectors, write_vectors

__all__ = [
    "DataFormatError",
    "EvalSet",
    "Interactions",
    "Split",
    "VectorFormatError",
    "align_eval_set",
    "given_full_train",
    "read_given",
    "read_ratings",
    "read_vectors",
    "sparse_batches",
    "split_given",
    "split_random",
    "split_strong",
    "synthetic_frame",
    "synthetic_interactions",
    "synthetic_matrix",
    "to_sparse_tensor",
    "write_vectors",
]
