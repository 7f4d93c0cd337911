"""The base of the `tf.Module`s that `export` saves: signatures over raw item ids."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from keras_recae.data.ids import is_integer_kind, padding_of, vocabulary
from keras_recae.serving.signatures import MISSING_SCORE

# The largest request a signature takes: rows (users) a request, and ids a row (a history
# or a candidate list). Past them a request fails with INVALID_ARGUMENT and a message, so no
# request makes the server allocate without bound: a request's scores take about
# rows x n_items x 4 bytes. TF Serving's `max_batch_size` (export/batching_parameters.txt)
# stays under MAX_ROWS.
MAX_ROWS = 1024
MAX_IDS = 100_000


def check_size(tensor, what: str):
    """`tensor` [rows, ...], readable once its rows (and ids a row, for rank 2) are checked
    against `MAX_ROWS` and `MAX_IDS`."""
    shape = tf.shape(tensor, out_type=tf.int64)
    checks = [
        tf.debugging.assert_less_equal(
            shape[0],
            tf.constant(MAX_ROWS, tf.int64),
            message=f"`{what}`: at most {MAX_ROWS} rows a request",
        )
    ]
    if tensor.shape.rank == 2:
        checks.append(
            tf.debugging.assert_less_equal(
                shape[1],
                tf.constant(MAX_IDS, tf.int64),
                message=f"`{what}`: at most {MAX_IDS} ids a row",
            )
        )
    with tf.control_dependencies(checks):
        return tf.identity(tensor)


class SignatureModule(tf.Module):
    """Base class of the serving modules: a model's item vocabulary and top-k in the graph.

    Holds what every export shares: the item vocabulary (a hash table raw id -> column
    and a variable column -> raw id, so the SavedModel runs with TensorFlow alone), the
    `k` of the top-k signatures, and the variables the signatures read. The Keras model
    itself is kept out of the SavedModel's object tracking, so the SavedModel holds no
    Keras objects. Subclasses build `signatures()` and their `warmup_inputs`.

    Args:
        model: keras.Model. The trained model the signatures call.
        item_ids: array-like | None. The raw item ids, one per column (int64 or str);
            the column indices when None.
        n_items: int. The number of items (columns).
        k: int. Items returned by the top-k signatures, in [1, n_items].
        name: str. The module's name.
    """

    # What "never trained" means for the models of this module, for `check_trained`.
    untrained_reason = "no optimizer step"
    # What an untrained model would serve.
    untrained_outputs = "random scores"

    def __init__(self, model, item_ids, n_items: int, k: int, name: str):
        super().__init__(name=name)
        self._holder = _Unsaved(model)
        self.k = check_k(k, n_items)
        self.n_items = int(n_items)
        item_ids = vocabulary_of(item_ids, n_items, "item_ids")
        self.item_ids = item_ids
        self.item_dtype = tf.int64 if is_integer_kind(item_ids) else tf.string
        self.item_padding = padding_of(item_ids)
        self.item_table = lookup_table(item_ids)
        self.item_vocabulary = tf.Variable(
            item_ids.tolist(), dtype=self.item_dtype, trainable=False, name="item_vocabulary"
        )

    @classmethod
    def check_trained(cls, model) -> None:
        """Refuses a model never trained: its export would serve random outputs."""
        if not model.is_trained():
            raise ValueError(
                f"This {type(model).__name__} was never trained ({cls.untrained_reason}): "
                f"exporting it would serve {cls.untrained_outputs}. Train it first."
            )

    @property
    def model(self):
        return self._holder.model

    def signatures(self) -> dict:
        """The concrete functions to save, by signature name."""
        raise NotImplementedError

    def warmup_inputs(self, signature_names) -> dict:
        """Signature name -> {input name -> numpy array}: one small request per signature."""
        raise NotImplementedError

    # -- graph pieces -------------------------------------------------------------------

    def known_items(self, item_ids):
        """Where a [batch, None] tensor of raw ids (its rank checked) holds known ids.

        Returns:
            `positions` [n, 2] (row, slot) of the known ids and `linear` [n], their
            `row * n_items + column`: equal for a repeated id of a row.
        """
        columns = self.item_table.lookup(item_ids)
        positions = tf.where(columns >= 0)
        linear = positions[:, 0] * self.n_items + tf.gather_nd(columns, positions)
        return positions, linear

    def top_items(self, scores) -> dict:
        """The k best columns of `scores` as raw ids and float32 scores, best first.

        Entries at -inf are never returned: their slots hold the padding id and
        `MISSING_SCORE`.
        """
        values, columns = tf.math.top_k(scores, k=self.k)
        available = values > float("-inf")
        ids = tf.gather(self.item_vocabulary, columns)
        return {
            "item_ids": tf.where(available, ids, tf.constant(self.item_padding, self.item_dtype)),
            "scores": tf.where(available, values, MISSING_SCORE),
        }

    def track_variables(self, signatures: dict) -> None:
        """Tracks the `tf.Variable`s the signatures read.

        Not the Keras variables wrapping them: only then do TF1-style loaders (TF Serving,
        `saved_model_cli run`) restore them.
        """
        used = {}
        for function in signatures.values():
            used.update({id(v): v for v in function.variables})
        self.model_variables = list(used.values())

    def warmup_histories(self, n_known: int) -> np.ndarray:
        """Two rows of raw ids: `n_known` known ids, and padding only.

        Rows lead with padding, as the clients send them (see `ServingClient`).
        """
        padding = self.item_padding
        known = list(self.item_ids[:n_known])
        rows = [[padding] + known, [padding] * (1 + len(known))]
        return np.array(rows, dtype=self.item_ids.dtype)


class _Unsaved:
    """Holds the Keras model out of reach of the SavedModel's object tracking."""

    def __init__(self, model):
        self.model = model


def vocabulary_of(ids, n: int, what: str) -> np.ndarray:
    """Raw ids as an int64 or str array, checked for serving; column indices when None.

    Raises:
        ValueError: for a shape other than `(n,)`, a repeated id, or an id equal to the
            padding value of the signatures.
    """
    if ids is None:
        return np.arange(n, dtype=np.int64)
    ids = np.asarray(ids)
    if ids.ndim != 1 or len(ids) != n:
        raise ValueError(f"The model's `{what}` should hold {n} ids. Received shape {ids.shape}")
    ids = vocabulary(ids, what)
    padding = padding_of(ids)
    if np.any(ids == padding):
        raise ValueError(
            f"The model's `{what}` contain {padding!r}, the padding value of the serving "
            "signatures; re-index the data so that no id equals it."
        )
    unique, counts = np.unique(ids, return_counts=True)
    if len(unique) != len(ids):
        raise ValueError(
            f"The model's `{what}` should be unique. Repeated: {list(unique[counts > 1][:5])}"
        )
    return ids


def check_k(k, n_items: int) -> int:
    """`k`, the items a signature returns, as an int in [1, n_items]."""
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= n_items:
        raise ValueError(
            f"`k` should be an integer in [1, {n_items}] (the catalogue size at export). "
            f"Received: k={k}"
        )
    return int(k)


def lookup_table(ids: np.ndarray) -> tf.lookup.StaticHashTable:
    """A graph table raw id -> position in `ids`, -1 for unknown ids."""
    dtype = tf.int64 if is_integer_kind(ids) else tf.string
    initializer = tf.lookup.KeyValueTensorInitializer(
        tf.constant(ids.tolist(), dtype), tf.range(len(ids), dtype=tf.int64)
    )
    return tf.lookup.StaticHashTable(initializer, default_value=-1)


def after_check(tensor, actual, expected, message: str):
    """`tensor`, readable only once `actual == expected` has been checked.

    A graph runs an assertion whenever it likes; without the dependency, an op that fails on
    the same bad input (a gather, say) may fail first with a less helpful message.
    """
    check = tf.debugging.assert_equal(actual, expected, message=message)
    with tf.control_dependencies([check]):
        return tf.identity(tensor)


def check_rank(tensor, rank: int):
    """A runtime check of the rank the signature declares.

    Neither TF Serving nor a loaded signature checks the fed shape against the
    placeholder's, and the graph would run on, say, a flat list of ids.
    """
    return tf.ensure_shape(tensor, [None] * rank, name=f"check_rank_of_{tensor.name.split(':')[0]}")


def concrete_function(fn, specs):
    """A concrete function; its inputs are named after the `TensorSpec` names."""
    return tf.function(fn, input_signature=specs).get_concrete_function()
