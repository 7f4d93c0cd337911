"""SavedModel export of an embedding refiner: `refine` and `similar_items` over raw ids."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tensorflow as tf

from keras_recae.data.vectors import integer_keys
from keras_recae.serving.serving_module import (
    INT_PADDING,
    MISSING_SCORE,
    STRING_PADDING,
    _check_rank,
    _concrete,
    _lookup_table,
    _Unsaved,
    check_k,
    vocabulary_of,
)

REFINE = "refine"
SIMILAR_ITEMS = "similar_items"
SERVING_DEFAULT = "serving_default"
DEFAULT_MODEL_NAME = "refiner"


def serving_item_ids(item_ids) -> np.ndarray:
    """The ids the signatures take: int64 when every key is an integer (`"12"`), else str."""
    item_ids = np.asarray(item_ids)
    integers = integer_keys(item_ids)
    return integers if integers is not None else item_ids.astype(str).astype(object)


class RefinerModule(tf.Module):
    """The serving signatures of an `EmbeddingRefiner`, for `tf.saved_model.save`.

    The catalogue's refined vectors, L2-normalised, are computed once here and live in
    the graph beside the id vocabulary (a hash table and a variable), so the SavedModel
    runs with TensorFlow alone.

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

    def __init__(self, model, k: int):
        super().__init__(name="refiner")
        if model.item_ids is None or model.item_vectors is None:
            raise ValueError(
                f"The {type(model).__name__} has no catalogue: call `set_items(item_ids, "
                "vectors)` before exporting."
            )
        n_items = len(model.item_ids)
        self._holder = _Unsaved(model)
        self.k = check_k(k, n_items)
        self.n_items = n_items
        self.input_dim = int(model.input_dim)
        item_ids = vocabulary_of(serving_item_ids(model.item_ids), n_items, "item_ids")
        self.item_ids = item_ids
        self.item_dtype = tf.int64 if item_ids.dtype.kind == "i" else tf.string
        self.item_padding = INT_PADDING if self.item_dtype == tf.int64 else STRING_PADDING
        self.item_table = _lookup_table(item_ids)
        self.item_vocabulary = tf.Variable(
            item_ids.tolist(), dtype=self.item_dtype, trainable=False, name="item_vocabulary"
        )
        refined = model.refine().astype(np.float64)
        norms = np.linalg.norm(refined, axis=1, keepdims=True)
        unit = refined / np.maximum(norms, 1e-12)
        self.catalogue = tf.Variable(
            unit.astype(np.float32), trainable=False, name="refined_catalogue"
        )

    @property
    def model(self):
        return self._holder.model

    def refine(self, vectors):
        vectors = tf.ensure_shape(vectors, [None, self.input_dim], name="check_shape_of_vectors")
        return {"refined": tf.cast(self.model.encode(vectors), tf.float32)}

    def similar_items(self, item_ids):
        item_ids = _check_rank(item_ids, 2)
        columns = self.item_table.lookup(item_ids)
        positions = tf.where(columns >= 0)
        linear = positions[:, 0] * self.n_items + tf.gather_nd(columns, positions)
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
        values, top = tf.math.top_k(scores, k=self.k)
        available = values > float("-inf")
        ids = tf.gather(self.item_vocabulary, top)
        padding = tf.constant(self.item_padding, self.item_dtype)
        return {
            "item_ids": tf.where(available, ids, padding),
            "scores": tf.where(available, values, MISSING_SCORE),
        }

    def signatures(self) -> dict:
        """The concrete functions to save, by signature name."""
        vectors = tf.TensorSpec([None, self.input_dim], tf.float32, name="vectors")
        ids = tf.TensorSpec([None, None], self.item_dtype, name="item_ids")
        similar = _concrete(self.similar_items, [ids])
        signatures = {
            SERVING_DEFAULT: similar,
            SIMILAR_ITEMS: similar,
            REFINE: _concrete(self.refine, [vectors]),
        }
        # As in `ServingModule`: track the `tf.Variable`s the graphs read, so that TF1
        # loaders (TF Serving, saved_model_cli run) restore them.
        used = {}
        for function in signatures.values():
            used.update({id(v): v for v in function.variables})
        self.model_variables = list(used.values())
        return signatures


def refiner_warmup_inputs(item_ids: np.ndarray, input_dim: int) -> dict:
    """Warm-up inputs per signature: two short queries (one all padding), two vectors."""
    integer = item_ids.dtype.kind in "iu"
    padding = INT_PADDING if integer else STRING_PADDING
    dtype = np.int64 if integer else object
    known = list(item_ids[:2])
    queries = np.array([[padding] + known, [padding] * (1 + len(known))], dtype=dtype)
    vectors = np.random.default_rng(0).normal(size=(2, input_dim)).astype(np.float32)
    return {
        SERVING_DEFAULT: {"item_ids": queries},
        SIMILAR_ITEMS: {"item_ids": queries},
        REFINE: {"vectors": vectors},
    }


def export_refiner(
    model,
    base_dir,
    version: int | None = None,
    k: int = 100,
    *,
    model_name: str = DEFAULT_MODEL_NAME,
    warmup: bool = True,
) -> Path:
    """Exports a trained `EmbeddingRefiner` as `base_dir/<version>/`, ready for TF Serving.

    The layout and guarantees are those of `keras_recae.serving.export` (which calls this
    function for refiners): a new integer version, written to a temporary directory and
    renamed, never overwriting one; raw ids in the graph (int64 when every item key is an
    integer, else string; padding -1 or ""; unknown ids ignored); warm-up records in
    `assets.extra/tf_serving_warmup_requests`. Signatures: see `RefinerModule`.

    Args:
        model: EmbeddingRefiner. A trained refiner with its catalogue (`set_items`).
        base_dir: path. The model's base directory, created if missing.
        version: int | None. The version number; the next free one by default.
            Defaults to `None`.
        k: int. Items per `similar_items` answer, at most the catalogue size.
            Defaults to `100`.
        model_name: str. The model name written in the warm-up requests. Defaults to
            `"refiner"`.
        warmup: bool. Whether to write the warm-up records (they need the
            `tensorflow-serving-api` package). Defaults to `True`.

    Returns:
        The path of the new version directory.

    Raises:
        ValueError: for a model never trained or without a catalogue, or `k` outside
            [1, n_items].
        FileExistsError: when `version` is given and exists.

    Example:

    ```python
    from keras_recae.serving import export_refiner

    path = export_refiner(model, "export/models/refiner", k=20)
    ```
    """
    from keras_recae.serving.export import check_version, save_version
    from keras_recae.serving.warmup import write_warmup_requests

    trained = getattr(model, "is_trained", None)
    if trained is None or not trained():
        raise ValueError(
            f"This {type(model).__name__} was never trained (no optimizer step): exporting "
            "it would serve random vectors. Train it first."
        )
    check_version(base_dir, version)
    module = RefinerModule(model, k)
    signatures = module.signatures()

    def write(temporary: Path) -> None:
        tf.saved_model.save(module, str(temporary), signatures=signatures)
        if warmup:
            requests = refiner_warmup_inputs(module.item_ids, module.input_dim)
            write_warmup_requests(temporary, model_name, requests)

    return save_version(base_dir, version, write)
