"""The scoring interface shared by every model of the zoo."""

from __future__ import annotations

import json
import os

import keras
import numpy as np
import tensorflow as tf

from keras_recae import distribute
from keras_recae.sparse_ops import mask_entries

_VOCABULARY_FILE = "item_ids.json"


@keras.saving.register_keras_serializable(package="keras_recae")
class Recommender(keras.Model):
    """A model that scores the whole catalogue from a user's sparse history.

    Subclasses implement `call(inputs, training=False)`, taking a
    `tf.SparseTensor` of shape `[batch, n_items]` (ratings, or 1.0 for implicit
    feedback) and returning scores of shape `[batch, n_items]`, higher meaning
    more relevant. On top of that this class gives `recommend` and `encode`,
    and keeps the raw item ids of the columns (`item_ids`), which are saved
    with the model in `.keras` files and become the vocabulary of the serving
    signatures.

    Explicit-rating models set the class attribute `explicit = True`: their input
    values are ratings and `call` returns predicted ratings, so the serving
    signatures take `ratings` beside the item ids.
    """

    explicit = False

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.item_ids = None

    @property
    def n_items(self) -> int | None:
        """The catalogue size, known once the model is built."""
        shape = (self.get_build_config() or {}).get("input_shape")
        return None if shape is None else int(shape[-1])

    def set_item_ids(self, item_ids) -> None:
        """Records the raw item id of each column, in column order."""
        item_ids = np.asarray(item_ids)
        if item_ids.ndim != 1:
            raise ValueError(
                f"`item_ids` should be one-dimensional. Received shape {item_ids.shape}"
            )
        if self.n_items is not None and len(item_ids) != self.n_items:
            raise ValueError(
                f"`item_ids` should hold one id per item of the model ({self.n_items}). "
                f"Received: {len(item_ids)} ids."
            )
        if item_ids.dtype.kind not in "iu":
            item_ids = item_ids.astype(str).astype(object)
        self.item_ids = item_ids

    def is_trained(self) -> bool:
        """Whether the weights were ever fitted: at least one optimizer step."""
        optimizer = getattr(self, "optimizer", None)
        return optimizer is not None and int(optimizer.iterations) > 0

    def ensure_built(self, inputs: tf.SparseTensor) -> None:
        """Builds the model from a batch; Keras leaves that to the first step on TensorFlow."""
        if not self.built:
            self.build(tuple(inputs.shape))

    def fit(self, x=None, y=None, *args, **kwargs):
        """`keras.Model.fit`; under a `tf.distribute` strategy, each replica gets its users.

        When the model was created under a strategy's scope (or `fit` is called in one), a
        `tf.data.Dataset` of sparse batches is split by `keras_recae.distribute.
        distribute_batches`, replica `r` of `R` getting rows `[r * B / R, (r + 1) * B / R)`
        of each global batch of `B` users, and `steps_per_epoch` defaults to the batches
        of one pass. The other arguments are those of `keras.Model.fit`.
        """
        strategy = distribute.model_strategy(self)
        if strategy is not None and isinstance(x, tf.data.Dataset):
            x, steps = distribute.distribute_batches(strategy, x)
            if kwargs.get("steps_per_epoch") is None and len(args) < 11:
                kwargs["steps_per_epoch"] = steps
        return super().fit(x, y, *args, **kwargs)

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        # Under a strategy Keras builds the model from the first distributed batch averaged
        # over the replicas, which SparseTensors cannot be: the model builds itself from the
        # first replica's part instead (its shape is all `build` needs).
        strategy = getattr(self, "_distribute_strategy", None)
        if strategy is None or iterator is None:
            return super()._maybe_symbolic_build(iterator=iterator, data_batch=data_batch)
        with strategy.scope():
            if not self.built:
                for _, _, batches in iterator:
                    batch = next(batches)
                    break
                batch = tf.nest.map_structure(
                    lambda part: strategy.experimental_local_results(part)[0], batch
                )
                self.ensure_built(batch[0] if isinstance(batch, (tuple, list)) else batch)
            if self.optimizer is not None and not self.optimizer.built:
                self.optimizer.build(self.trainable_variables)
            self._post_build()

    def _make_function(self, step_function):
        # Across workers Keras averages each log of a train or test step along its first
        # axis, which scalars lack (tensorflow/tensorflow#72388): they get one.
        if not distribute.is_multi_worker(getattr(self, "_distribute_strategy", None)):
            return super()._make_function(step_function)

        def step(data):
            logs = step_function(data)
            return tf.nest.map_structure(
                lambda value: keras.ops.reshape(value, (1,)) if value.shape.rank == 0 else value,
                logs,
            )

        return super()._make_function(step)

    def encode(self, inputs: tf.SparseTensor):
        """The user representation of each row (posterior mean for VAEs)."""
        raise NotImplementedError(f"{type(self).__name__} has no user representation.")

    def recommend(self, inputs: tf.SparseTensor, k: int = 10, exclude_inputs: bool = True):
        """Top-`k` column indices and scores per row, the input items left out.

        Returns:
            A pair `(indices, scores)` of tensors of shape `[batch, k]`.
        """
        scores = keras.ops.cast(self(inputs, training=False), "float32")
        if exclude_inputs:
            scores = mask_entries(scores, inputs)
        scores, indices = tf.math.top_k(scores, k=k)
        return indices, scores

    def save_assets(self, dir_path):
        if self.item_ids is None:
            return
        kind = "int64" if self.item_ids.dtype.kind in "iu" else "string"
        ids = (
            [int(i) for i in self.item_ids] if kind == "int64" else [str(i) for i in self.item_ids]
        )
        with open(os.path.join(dir_path, _VOCABULARY_FILE), "w", encoding="utf-8") as file:
            json.dump({"dtype": kind, "ids": ids}, file)

    def load_assets(self, dir_path):
        path = os.path.join(dir_path, _VOCABULARY_FILE)
        if not os.path.exists(path):
            return
        with open(path, encoding="utf-8") as file:
            content = json.load(file)
        dtype = np.int64 if content["dtype"] == "int64" else object
        self.set_item_ids(np.asarray(content["ids"], dtype=dtype))
