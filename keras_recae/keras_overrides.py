"""The package's overrides of private `keras.Model` methods, in one place.

Keras's TensorFlow trainer has two behaviours under `tf.distribute` that the models of the
package cannot use as they are; `DistributedTrainerOverrides` replaces them:

- `_maybe_symbolic_build(iterator=None, data_batch=None)`: Keras builds the model from
  the first distributed batch averaged over the replicas, which `tf.SparseTensor` batches
  cannot be. The model builds itself from the first replica's part instead.
- `_make_function(step_function)`: across workers Keras averages each log of a step along
  its first axis, which scalars lack (tensorflow/tensorflow#72388); they get one.

`tests/test_keras_overrides.py` checks that Keras still has these methods with these
parameters, and names the installed Keras version when it does not.

`resume_fit_at(model, epoch)` sets the private attribute by which a callback's
`on_train_begin` makes `fit` start at a later epoch (what `keras.callbacks.BackupAndRestore`
does); a test checks that `fit` still honours it.
"""

from __future__ import annotations

import contextlib

import keras
import tensorflow as tf

from keras_recae import distribute

# The private methods overridden here, with the parameters the overrides rely on.
OVERRIDDEN = {
    "_maybe_symbolic_build": ("self", "iterator", "data_batch"),
    "_make_function": ("self", "step_function"),
}


def resume_fit_at(model, epoch: int) -> None:
    """From a callback's `on_train_begin`: the running `fit` starts at `epoch` (0-based)."""
    model._initial_epoch = int(epoch)


class DistributedTrainerOverrides:
    """A mixin for `keras.Model` subclasses trained on sparse or padded batches under
    `tf.distribute` (see the module's docstring); it goes before `keras.Model` in the bases.

    Without a strategy, or for Keras's single-batch methods (`train_on_batch`), Keras's
    own methods run.
    """

    def fit_strategy(self):
        """The strategy `fit` runs under, or None for the default one (one device)."""
        # Keras keeps the strategy under which the model was created; `fit` uses it, else
        # the strategy of the scope it is called in.
        strategy = getattr(self, "_distribute_strategy", None)
        if strategy is None and tf.distribute.has_strategy():
            strategy = tf.distribute.get_strategy()
        return strategy

    def build_for_fit(self, input_shape) -> None:
        """Builds the model under `fit_strategy()`, so that its weights are mirrored there."""
        strategy = self.fit_strategy()
        with strategy.scope() if strategy is not None else contextlib.nullcontext():
            self.build(input_shape)

    def ensure_built(self, inputs) -> None:
        """Builds the model from a batch; Keras leaves that to the first step on TensorFlow."""
        if not self.built:
            self.build(tuple(inputs.shape))

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        # Only the trainer's own attribute tells the strategy `fit` runs under here.
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
        if not distribute.is_multi_worker(getattr(self, "_distribute_strategy", None)):
            return super()._make_function(step_function)

        def step(data):
            logs = step_function(data)
            return tf.nest.map_structure(
                lambda value: keras.ops.reshape(value, (1,)) if value.shape.rank == 0 else value,
                logs,
            )

        return super()._make_function(step)
