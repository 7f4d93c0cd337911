"""The `tf.Module` of an embedding refiner's export: `refine` and `similar_items`."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from keras_recae.data.ids import as_strings, integer_ids
from keras_recae.serving.signature_module import (
    SignatureModule,
    check_rank,
    check_size,
    concrete_function,
)
from keras_recae.serving.signatures import REFINE, SERVING_DEFAULT, SIMILAR_ITEMS


class RefinerModule(SignatureModule):
    """The serving signatures of an `EmbeddingRefiner`, for `tf.saved_model.save`.

    The catalogue's refined vectors, L2-normalised, are computed once here and live in
    the graph beside the id vocabulary (a hash table and a variable), so the SavedModel
    runs with TensorFlow alone. The ids are int64 when every key of the catalogue is an
    integer, in text or not (`"12"`, as word2vec files give them), else strings.

    - `refine`: `vectors` [batch, d] float32 (raw vectors) -> `refined` [batch, d']
      (the code; the posterior mean for the VAE).
    - `similar_items` and `serving_default`: `item_ids` [batch, None] (raw ids, padded
      with -1 or "") -> `item_ids` [batch, k], `scores` [batch, k]: the k items of the
      catalogue with the highest cosine to the row's query, best first, the query's own
      items excluded. A row's query is the mean of the unit refined vectors of its known
      ids (one id: that item's vector); padding, unknown and repeated ids are ignored. Slots
      with no item (a row with no known id, or k above the items left) hold the padding
      id and `MISSING_SCORE`.

    Args:
        model: EmbeddingRefiner. A trained refiner with its catalogue (`set_items`).
        k: int. Items returned by `similar_items`, in [1, n_items].
    """

    untrained_outputs = "random vectors"

    def __init__(self, model, k: int):
        if model.item_ids is None or model.item_vectors is None:
            raise ValueError(
                f"The {type(model).__name__} has no catalogue: call `set_items(item_ids, "
                "vectors)` before exporting."
            )
        keys = np.asarray(model.item_ids)
        integers = integer_ids(keys)
        item_ids = integers if integers is not None else as_strings(keys)
        super().__init__(model, item_ids, len(keys), k, name="refiner")
        self.input_dim = int(model.input_dim)
        refined = model.refine().astype(np.float64)
        norms = np.linalg.norm(refined, axis=1, keepdims=True)
        unit = refined / np.maximum(norms, 1e-12)
        self.catalogue = tf.Variable(
            unit.astype(np.float32), trainable=False, name="refined_catalogue"
        )

    def refine(self, vectors):
        vectors = tf.ensure_shape(vectors, [None, self.input_dim], name="check_shape_of_vectors")
        vectors = check_size(vectors, "vectors")
        return {"refined": tf.cast(self.model.encode(vectors), tf.float32)}

    def similar_items(self, item_ids):
        item_ids = check_size(check_rank(item_ids, 2), "item_ids")
        _, linear = self.known_items(item_ids)
        unique, _ = tf.unique(linear, out_idx=tf.int64)
        rows, items = unique // self.n_items, unique % self.n_items
        batch = tf.shape(item_ids, out_type=tf.int64)[0]
        query = tf.math.unsorted_segment_sum(tf.gather(self.catalogue, items), rows, batch)
        has_query = tf.math.unsorted_segment_sum(tf.ones_like(rows), rows, batch) > 0
        query = tf.math.l2_normalize(query, axis=1)
        scores = tf.matmul(query, self.catalogue, transpose_b=True)
        scores = tf.where(has_query[:, None], scores, float("-inf"))
        scores = tf.tensor_scatter_nd_update(
            scores, tf.stack([rows, items], axis=1), tf.fill(tf.shape(rows), float("-inf"))
        )
        return self.top_items(scores)

    def signatures(self) -> dict:
        """The concrete functions to save, by signature name."""
        vectors = tf.TensorSpec([None, self.input_dim], tf.float32, name="vectors")
        ids = tf.TensorSpec([None, None], self.item_dtype, name="item_ids")
        similar = concrete_function(self.similar_items, [ids])
        signatures = {
            SERVING_DEFAULT: similar,
            SIMILAR_ITEMS: similar,
            REFINE: concrete_function(self.refine, [vectors]),
        }
        self.track_variables(signatures)
        return signatures

    def warmup_inputs(self, signature_names) -> dict:
        """Per signature: two short queries (one all padding), or two random vectors."""
        queries = self.warmup_histories(2)
        vectors = np.random.default_rng(0).normal(size=(2, self.input_dim)).astype(np.float32)
        return {
            name: {"vectors": vectors} if name == REFINE else {"item_ids": queries}
            for name in signature_names
        }
