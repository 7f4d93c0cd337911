"""The `tf.Module` that TF Serving runs: raw-id signatures around a `Recommender`."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from keras_recae.data.ids import is_integer_kind, padding_of
from keras_recae.serving.signature_module import (
    SignatureModule,
    after_check,
    check_rank,
    check_size,
    concrete_function,
    lookup_table,
    vocabulary_of,
)
from keras_recae.serving.signatures import (
    ENCODE,
    MISSING_SCORE,
    RECOMMEND,
    RECOMMEND_FOR_USER,
    SCORE,
    SERVING_DEFAULT,
)


class ServingModule(SignatureModule):
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
    - `encode`, where the model has an encoder (`model.has_encoder`): the history ->
      `embedding` [batch, d].
    - `recommend_for_user`, for models conditioned on users (`model.user_conditioned`,
      with their `user_ids`): `user_id` [batch] and the history -> as `recommend`, scored
      by `model.score_users`. Unknown users reach the model as index -1.

    Args:
        model: Recommender. A built, trained model.
        k: int. Items returned by `recommend`, in [1, n_items].
    """

    untrained_reason = "no optimizer step, or EASE not fitted"

    def __init__(self, model, k: int):
        n_items = model.n_items
        if n_items is None:
            raise ValueError(f"The {type(model).__name__} is not built: train it first.")
        super().__init__(model, model.item_ids, n_items, k, name="recommender")
        self.explicit = model.explicit
        self.user_ids = None
        if model.user_conditioned:
            if model.user_ids is None:
                raise ValueError(
                    f"{type(model).__name__} is conditioned on users but has no `user_ids`: "
                    "call `set_user_ids(ids)` before exporting."
                )
            user_ids = vocabulary_of(model.user_ids, len(model.user_ids), "user_ids")
            self.user_ids = user_ids
            self.user_dtype = tf.int64 if is_integer_kind(user_ids) else tf.string
            self.user_table = lookup_table(user_ids)

    # -- graph pieces -------------------------------------------------------------------

    def history(self, item_ids, ratings=None) -> tf.SparseTensor:
        """The [batch, n_items] sparse input of the model for raw-id histories."""
        item_ids = check_size(check_rank(item_ids, 2), "item_ids")
        if ratings is not None:
            ratings = check_rank(ratings, 2)
        positions, linear = self.known_items(item_ids)
        unique, segments = tf.unique(linear, out_idx=tf.int64)
        if ratings is None:
            values = tf.ones_like(unique, dtype=tf.float32)
        else:
            ratings = after_check(
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
        return self.top_items(masked)

    def scores(self, inputs: tf.SparseTensor):
        return tf.cast(self.model(inputs, training=False), tf.float32)

    def candidate_scores(self, scores, candidate_ids, item_ids):
        candidate_ids = check_size(check_rank(candidate_ids, 2), "candidate_ids")
        candidate_ids = after_check(
            candidate_ids,
            tf.shape(candidate_ids)[0],
            tf.shape(item_ids)[0],
            "`candidate_ids` and `item_ids` should have the same batch size",
        )
        columns = self.item_table.lookup(candidate_ids)
        gathered = tf.gather(scores, tf.maximum(columns, 0), batch_dims=1)
        return {"scores": tf.where(columns >= 0, gathered, MISSING_SCORE)}

    def user_scores(self, user_id, inputs: tf.SparseTensor, item_ids):
        user_id = check_rank(user_id, 1)
        user_id = after_check(
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

        recommend_fn = concrete_function(recommend, history)
        signatures = {
            SERVING_DEFAULT: recommend_fn,
            RECOMMEND: recommend_fn,
            SCORE: concrete_function(score, history + [candidates]),
        }
        if self.model.has_encoder:
            signatures[ENCODE] = concrete_function(encode, history)
        if self.user_ids is not None:
            user = tf.TensorSpec([None], self.user_dtype, name="user_id")
            signatures[RECOMMEND_FOR_USER] = concrete_function(recommend_for_user, [user] + history)
        self.track_variables(signatures)
        return signatures

    def warmup_inputs(self, signature_names) -> dict:
        """Per signature: a short history of known ids and an empty one (see `export`)."""
        histories = self.warmup_histories(3)
        padding = self.item_padding
        history = {"item_ids": histories}
        if self.explicit:
            history["ratings"] = np.where(histories == padding, 0.0, 4.0).astype(np.float32)
        known = list(histories[0, 1:])
        requests = {}
        for name in signature_names:
            inputs = dict(history)
            if name == SCORE:
                inputs["candidate_ids"] = np.array(
                    [[padding] + known[-1:], [padding] + known[:1]], dtype=histories.dtype
                )
            if name == RECOMMEND_FOR_USER:
                inputs["user_id"] = np.array(
                    [self.user_ids[0], padding_of(self.user_ids)], dtype=self.user_ids.dtype
                )
            requests[name] = inputs
        return requests
