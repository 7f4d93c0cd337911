"""The `tf.Module` that TF Serving runs: raw-id signatures around a `Recommender`."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

# Signature names, as in DESIGN.md's serving contract.
SERVING_DEFAULT = "serving_default"
RECOMMEND = "recommend"
SCORE = "score"
ENCODE = "encode"
RECOMMEND_FOR_USER = "recommend_for_user"

# What `score` returns for unknown or padding candidates, and `recommend` for slots with
# no item left to recommend: float32's lowest finite value, since -inf is not valid JSON.
MISSING_SCORE = float(np.finfo(np.float32).min)
INT_PADDING = -1
STRING_PADDING = ""


def vocabulary_of(ids, n: int, what: str) -> np.ndarray:
    """Raw ids as an int64 or str array; column indices where `ids` is None."""
    if ids is None:
        return np.arange(n, dtype=np.int64)
    ids = np.asarray(ids)
    if ids.ndim != 1 or len(ids) != n:
        raise ValueError(f"The model's `{what}` should hold {n} ids. Received shape {ids.shape}")
    if ids.dtype.kind in "iu":
        ids = ids.astype(np.int64)
        padding = INT_PADDING
    else:
        ids = ids.astype(str).astype(object)
        padding = STRING_PADDING
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


def _lookup_table(ids: np.ndarray) -> tf.lookup.StaticHashTable:
    dtype = tf.int64 if ids.dtype.kind in "iu" else tf.string
    initializer = tf.lookup.KeyValueTensorInitializer(
        tf.constant(ids.tolist(), dtype), tf.range(len(ids), dtype=tf.int64)
    )
    return tf.lookup.StaticHashTable(initializer, default_value=-1)


class ServingModule(tf.Module):
    """The serving signatures of a `Recommender`, over raw ids, for `tf.saved_model.save`.

    The item vocabulary (raw id -> column, and back) lives in the graph as a hash table
    and a variable, so the SavedModel runs with TensorFlow alone. Histories come as raw
    ids padded to a rectangle with -1 (int64 ids) or "" (string ids); padding and unknown
    ids are ignored and a repeated id counts once (for explicit models, with its last
    rating). The signatures, built by `signatures()`:

    - `serving_default` and `recommend`: `item_ids` [batch, None] (and `ratings`
      [batch, None] for explicit models) -> `item_ids` [batch, k], `scores` [batch, k]
      (float32), best first, the history never recommended. Slots with no item left
      hold the padding id and `MISSING_SCORE`.
    - `score`: the history and `candidate_ids` [batch, m] -> `scores` [batch, m], the
      model's scores (predicted ratings for explicit models) with the history not masked;
      unknown or padding candidates get `MISSING_SCORE` (float32's lowest value).
    - `encode`, where the model has `encode`: the history -> `embedding` [batch, d].
    - `recommend_for_user`, for models that keep `user_ids` and define
      `score_users(inputs, user_indices)`: `user_id` [batch] and the history -> as
      `recommend`. Unknown users reach the model as index -1.

    The Keras model itself is not tracked, only the variables its graphs read, so the
    SavedModel holds no Keras objects.

    Args:
        model: Recommender. A built, trained model.
        k: int. Items returned by `recommend`, in [1, n_items].
    """

    def __init__(self, model, k: int):
        super().__init__(name="recommender")
        n_items = model.n_items
        if n_items is None:
            raise ValueError(f"The {type(model).__name__} is not built: train it first.")
        self._holder = _Unsaved(model)
        self.k = check_k(k, n_items)
        self.n_items = int(n_items)
        self.explicit = bool(getattr(model, "explicit", False))
        item_ids = vocabulary_of(model.item_ids, n_items, "item_ids")
        self.item_ids = item_ids
        self.item_dtype = tf.int64 if item_ids.dtype.kind == "i" else tf.string
        self.item_padding = INT_PADDING if self.item_dtype == tf.int64 else STRING_PADDING
        self.item_table = _lookup_table(item_ids)
        self.item_vocabulary = tf.Variable(
            item_ids.tolist(), dtype=self.item_dtype, trainable=False, name="item_vocabulary"
        )
        self.has_users = callable(getattr(model, "score_users", None))
        self.user_ids = None
        if self.has_users:
            user_ids = getattr(model, "user_ids", None)
            if user_ids is None:
                raise ValueError(
                    f"{type(model).__name__} defines `score_users` but has no `user_ids`."
                )
            user_ids = vocabulary_of(user_ids, len(user_ids), "user_ids")
            self.user_ids = user_ids
            self.user_dtype = tf.int64 if user_ids.dtype.kind == "i" else tf.string
            self.user_table = _lookup_table(user_ids)

    @property
    def model(self):
        return self._holder.model

    # -- graph pieces -------------------------------------------------------------------

    def history(self, item_ids, ratings=None) -> tf.SparseTensor:
        """The [batch, n_items] sparse input of the model for raw-id histories."""
        item_ids = _check_rank(item_ids, 2)
        if ratings is not None:
            ratings = _check_rank(ratings, 2)
        columns = self.item_table.lookup(item_ids)
        positions = tf.where(columns >= 0)
        linear = positions[:, 0] * self.n_items + tf.gather_nd(columns, positions)
        unique, segments = tf.unique(linear, out_idx=tf.int64)
        if ratings is None:
            values = tf.ones_like(unique, dtype=tf.float32)
        else:
            ratings = _after_check(
                ratings,
                tf.shape(ratings),
                tf.shape(item_ids),
                "`ratings` should have the shape of `item_ids`, one rating per id",
            )
            last = tf.math.unsorted_segment_max(
                tf.range(tf.size(linear, out_type=tf.int64)), segments, tf.size(unique)
            )
            values = tf.gather(tf.gather_nd(ratings, positions), last)
        order = tf.argsort(unique)
        unique = tf.gather(unique, order)
        values = tf.gather(values, order)
        indices = tf.stack([unique // self.n_items, unique % self.n_items], axis=1)
        batch = tf.shape(item_ids, out_type=tf.int64)[0]
        return tf.SparseTensor(indices, values, tf.stack([batch, self.n_items]))

    def top_k(self, scores, inputs: tf.SparseTensor) -> dict:
        """The k best items outside the history, as raw ids and float32 scores."""
        masked = tf.tensor_scatter_nd_update(
            scores, inputs.indices, tf.fill(tf.shape(inputs.values), float("-inf"))
        )
        values, columns = tf.math.top_k(masked, k=self.k)
        available = values > float("-inf")
        ids = tf.gather(self.item_vocabulary, columns)
        return {
            "item_ids": tf.where(available, ids, tf.constant(self.item_padding, self.item_dtype)),
            "scores": tf.where(available, values, MISSING_SCORE),
        }

    def scores(self, inputs: tf.SparseTensor):
        return tf.cast(self.model(inputs, training=False), tf.float32)

    def candidate_scores(self, scores, candidate_ids, item_ids):
        candidate_ids = _check_rank(candidate_ids, 2)
        candidate_ids = _after_check(
            candidate_ids,
            tf.shape(candidate_ids)[0],
            tf.shape(item_ids)[0],
            "`candidate_ids` and `item_ids` should have the same batch size",
        )
        columns = self.item_table.lookup(candidate_ids)
        gathered = tf.gather(scores, tf.maximum(columns, 0), batch_dims=1)
        return {"scores": tf.where(columns >= 0, gathered, MISSING_SCORE)}

    def user_scores(self, user_id, inputs: tf.SparseTensor, item_ids):
        user_id = _check_rank(user_id, 1)
        user_id = _after_check(
            user_id,
            tf.shape(user_id)[0],
            tf.shape(item_ids)[0],
            "`user_id` should hold one id per row of `item_ids`",
        )
        users = self.user_table.lookup(user_id)
        return tf.cast(self.model.score_users(inputs, users), tf.float32)

    # -- signatures ---------------------------------------------------------------------

    def signatures(self) -> dict:
        """The concrete functions to save, by signature name."""
        ids = tf.TensorSpec([None, None], self.item_dtype, name="item_ids")
        ratings = tf.TensorSpec([None, None], tf.float32, name="ratings")
        candidates = tf.TensorSpec([None, None], self.item_dtype, name="candidate_ids")
        history = [ids, ratings] if self.explicit else [ids]

        def recommend(*args):
            inputs = self.history(*args)
            return self.top_k(self.scores(inputs), inputs)

        def score(*args):
            *history_args, candidate_ids = args
            inputs = self.history(*history_args)
            return self.candidate_scores(self.scores(inputs), candidate_ids, args[0])

        def encode(*args):
            return {"embedding": tf.cast(self.model.encode(self.history(*args)), tf.float32)}

        def recommend_for_user(user_id, *args):
            inputs = self.history(*args)
            return self.top_k(self.user_scores(user_id, inputs, args[0]), inputs)

        recommend_fn = _concrete(recommend, history)
        signatures = {
            SERVING_DEFAULT: recommend_fn,
            RECOMMEND: recommend_fn,
            SCORE: _concrete(score, history + [candidates]),
        }
        try:
            signatures[ENCODE] = _concrete(encode, history)
        except NotImplementedError:
            pass  # The model has no user representation: no `encode` signature.
        if self.has_users:
            user = tf.TensorSpec([None], self.user_dtype, name="user_id")
            signatures[RECOMMEND_FOR_USER] = _concrete(recommend_for_user, [user] + history)
        # Track the `tf.Variable`s the graphs read, not the Keras variables wrapping
        # them: only then do TF1-style loaders (TF Serving, saved_model_cli run)
        # restore them.
        used = {}
        for function in signatures.values():
            used.update({id(v): v for v in function.variables})
        self.model_variables = list(used.values())
        return signatures


class _Unsaved:
    """Holds the Keras model out of reach of the SavedModel's object tracking."""

    def __init__(self, model):
        self.model = model


def _after_check(tensor, actual, expected, message: str):
    """`tensor`, readable only once `actual == expected` has been checked.

    A graph runs an assertion whenever it likes; without the dependency, an op that fails on
    the same bad input (a gather, say) may fail first with a less helpful message.
    """
    check = tf.debugging.assert_equal(actual, expected, message=message)
    with tf.control_dependencies([check]):
        return tf.identity(tensor)


def _check_rank(tensor, rank: int):
    """A runtime check of the rank the signature declares.

    Neither TF Serving nor a loaded signature checks the fed shape against the
    placeholder's, and the graph would run on, say, a flat list of ids.
    """
    return tf.ensure_shape(tensor, [None] * rank, name=f"check_rank_of_{tensor.name.split(':')[0]}")


def _concrete(fn, specs):
    """A concrete function; its inputs are named after the `TensorSpec` names."""
    return tf.function(fn, input_signature=specs).get_concrete_function()
