"""The train and test steps of the models that name the parts of their loss."""

from __future__ import annotations

import keras
import tensorflow as tf

from keras_recae.distribute import global_sum, weight_penalty


class LossPartsTraining:
    """A mixin for `keras.Model` subclasses: the train step from named loss parts.

    A model lists the names of its loss parts in `part_names` (the total, `"loss"`,
    first; the logs keep that order) and implements `loss_parts(data, training)`, which
    returns them as float32 scalars for a batch `data` as `fit` gives it. This class adds
    the weight penalty of the model's regularizers to the total once (`with_penalty`),
    applies the gradients with the compiled optimizer (scaling the loss as
    `optimizer.scale_loss` does under mixed precision), and tracks every part with a
    `keras.metrics.Mean`, listed in `metrics`.

    Under a `tf.distribute` strategy each replica's parts are its shares of the global
    batch's (see `keras_recae.distribute`): they are summed over the replicas before they
    are tracked, so every replica tracks the global values, except the `replicated_parts`,
    which are the same on every replica (an annealed KL weight).

    `before_update(data)` runs before the gradients are taken (CDAE and the
    reconstruction autoencoders start their output biases there). Models that make
    several updates per batch (RecVAE's alternating optimizers, DeepRec's re-feeding)
    write their own `train_step` with `minimize` (one update) and `track`. It goes before the
    Keras model class in the bases: `class MyModel(LossPartsTraining, Recommender)`.
    """

    part_names = ("loss",)
    # Parts that are the same on every replica rather than shares of the global batch's.
    replicated_parts = ()

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.part_trackers = [keras.metrics.Mean(name=name) for name in self.part_names]

    def loss_parts(self, data, training: bool) -> dict:
        """The loss parts of a batch, named as in `part_names`, before the weight penalty."""
        raise NotImplementedError(f"{type(self).__name__} does not implement `loss_parts`.")

    def before_update(self, data) -> None:
        """Runs before each update's gradient tape; by default nothing."""

    def with_penalty(self, loss):
        """`loss` plus the weight penalty (`losses`): this replica's share under a strategy."""
        if not self.losses:
            return loss
        return loss + weight_penalty(self.losses)

    def minimize(self, compute_parts, optimizer=None, variables=None) -> dict:
        """One update by `optimizer` of `variables` on the loss of `compute_parts()`.

        Args:
            compute_parts: a function of no argument returning loss parts (a dict with
                the total under `"loss"`), called under the gradient tape.
            optimizer: keras.optimizers.Optimizer | None. The optimizer that applies the
                update. Defaults to `None`: the compiled one.
            variables: list | None. The variables to update. Defaults to `None`: the
                trainable weights, read after `compute_parts()`, which may build the model.

        Returns:
            The parts, the weight penalty added to the total.
        """
        optimizer = self.optimizer if optimizer is None else optimizer
        with tf.GradientTape() as tape:
            parts = compute_parts()
            parts = {**parts, "loss": self.with_penalty(parts["loss"])}
            scaled = optimizer.scale_loss(parts["loss"])
        variables = self.trainable_weights if variables is None else variables
        optimizer.apply(tape.gradient(scaled, variables), variables)
        return parts

    def train_step(self, data):
        self.before_update(data)
        return self.track(self.minimize(lambda: self.loss_parts(data, training=True)))

    def test_step(self, data):
        parts = self.loss_parts(data, training=False)
        return self.track({**parts, "loss": self.with_penalty(parts["loss"])})

    def track(self, parts: dict) -> dict:
        """Updates the trackers with a step's parts; returns the logs of the step."""
        shares = {name: value for name, value in parts.items() if name not in self.replicated_parts}
        parts = {**parts, **global_sum(shares)}
        for tracker in self.part_trackers:
            tracker.update_state(parts[tracker.name])
        return {metric.name: metric.result() for metric in self.metrics}

    @property
    def metrics(self):
        return list(self.part_trackers)
