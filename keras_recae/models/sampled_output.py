"""The output over the catalogue of the multinomial models: full or sampled softmax, and
updates that touch only the rows a batch used."""

from __future__ import annotations

import math
import re
import textwrap

import keras
import numpy as np

from keras_recae.checks import check_choice, check_non_negative_int
from keras_recae.layers.item_output import ItemOutput
from keras_recae.losses import multinomial_nll, sampled_multinomial_nll
from keras_recae.models.building import vae_cf_dense

SAMPLED_PROPOSALS = ("popularity", "uniform")

# The three settings, as the models' docstrings state them (see `document_settings`).
SETTINGS_DOC = """\
sampled_softmax: int. 0 trains with the full softmax over the catalogue; N > 0
    samples N items an update from `sampled_proposal` and computes the logits of the
    batch's target items and those only, with the log-Q correction and accidental
    hits removed (`keras_recae.losses.sampled_multinomial_nll`). Evaluation and
    serving always score the whole catalogue. Defaults to `0`.
sampled_proposal: str. `"popularity"` (each item's training users plus one, set by
    `adapt`) or `"uniform"`. Defaults to `"popularity"`.
sparse_updates: bool. Updates that touch only the rows a batch used: the first
    layer's kernel rows of the batch's items and, with `sampled_softmax`, the output
    rows of the candidates (the output layer is then an `ItemOutput`, one row per
    item), updated by a lazy Adam (`FusedAdam(sparse_updates=True)`, which
    `keras-recae train` uses for such a model). For catalogues of 10^5 items and
    more; needs `l2=0` (a penalty on a whole kernel has a whole gradient). Defaults
    to `False`."""


def document_settings(cls):
    """A class decorator: the line `{output settings}` of the class's docstring becomes the
    `Args:` entries of the three settings, at that line's indentation."""
    cls.__doc__ = re.sub(
        r"^([ \t]*)\{output settings\}$",
        lambda match: textwrap.indent(SETTINGS_DOC, match.group(1)),
        cls.__doc__,
        flags=re.MULTILINE,
    )
    return cls


class SampledOutput:
    """A mixin for the multinomial models (Mult-VAE, Mult-DAE, RecVAE): their output layer
    over the catalogue and its negative log-likelihood, with the full softmax or a sampled one.

    A model calls `init_output` in its constructor, keeps `build_output`'s layer as its
    `output_layer` (an attribute, or a property naming its own) in `build`, trains with
    `output_nll(hidden, targets, training)` (the input of the output layer, not its logits),
    adds `output_config()` to its config, and lets `adapt` set the popularity proposal.
    """

    def init_output(
        self, sampled_softmax: int, sampled_proposal: str, sparse_updates: bool, l2: float, seed
    ) -> None:
        self.sampled_softmax = check_non_negative_int("sampled_softmax", sampled_softmax)
        self.sampled_proposal = check_choice(
            "sampled_proposal", sampled_proposal, SAMPLED_PROPOSALS
        )
        self.sparse_updates = bool(sparse_updates)
        if self.sparse_updates and l2:
            raise ValueError(
                "`sparse_updates=True` needs `l2=0`: a penalty on a whole kernel has a "
                f"gradient on every row. Received: l2={l2}"
            )
        if self.sampled_softmax:
            # Only then: a model without it keeps the variables of earlier versions.
            self.candidate_seed = keras.random.SeedGenerator(
                None if seed is None else seed + 2, name="candidate_sampling"
            )

    def encoder_dense(self, units: int, activation, name: str, l2: float, first: bool):
        """A layer of the encoder (`vae_cf_dense`); the first takes the sparse input and, with
        `sparse_updates`, gives its kernel's gradient as the batch's rows."""
        return vae_cf_dense(
            units,
            activation,
            name,
            l2,
            sparse=first,
            row_gradients=first and self.sparse_updates,
        )

    def build_output(
        self,
        n_items: int,
        l2: float,
        dense=None,
        item_initializers: dict | None = None,
        name: str = "logits",
    ):
        """Creates the output layer (and the proposal's weights); returns the layer, unbuilt,
        for the model to keep as its `output_layer`.

        Args:
            n_items: int. The catalogue's size.
            l2: float. The output kernel's penalty (the default dense layer's).
            dense: keras.layers.Dense | None. The output layer without `sparse_updates`;
                None makes `vae_cf_dense`'s.
            item_initializers: dict | None. `kernel_initializer` and `bias_initializer` of
                the `ItemOutput` layer with `sparse_updates`, whose kernel is drawn in the
                shape `[n_items, input_dim]` (fixed bounds, or symmetric in the two
                dimensions); None gives Glorot's and vae_cf's bias.
            name: str. The layer's name. Defaults to `"logits"`.
        """
        if self.sparse_updates:
            initializers = item_initializers or {
                "bias_initializer": keras.initializers.TruncatedNormal(stddev=0.001)
            }
            layer = ItemOutput(n_items, name=name, **initializers)
        else:
            layer = dense if dense is not None else vae_cf_dense(n_items, None, name, l2)
        if self.sampled_softmax and self.sampled_proposal == "popularity":
            self.log_proposal = self.add_weight(
                shape=(n_items,),
                initializer=keras.initializers.Constant(-math.log(n_items)),
                trainable=False,
                name="log_proposal",
            )
        return layer

    def adapt(self, matrix, combine=None) -> None:
        super().adapt(matrix, combine)
        if self.sampled_softmax and self.sampled_proposal == "popularity":
            users = 1.0 + self.training_item_counts(matrix, combine)
            self.log_proposal.assign(np.log(users / users.sum()).astype("float32"))

    def sampled_candidates(self):
        """This update's sampled items and the log of their expected counts in the sample."""
        n_sampled = self.sampled_softmax
        n_items = self.output_layer.units
        if self.sampled_proposal == "uniform":
            sampled = keras.random.randint((n_sampled,), 0, n_items, seed=self.candidate_seed)
            expected = keras.ops.full((n_sampled,), math.log(n_sampled / n_items))
            return sampled, expected
        log_q = keras.ops.convert_to_tensor(self.log_proposal)
        sampled = keras.random.categorical(log_q[None, :], n_sampled, seed=self.candidate_seed)[0]
        return sampled, math.log(n_sampled) + keras.ops.take(log_q, sampled)

    def output_nll(self, hidden, targets, training: bool):
        """The multinomial NLL per row of the output layer on `hidden` (its input): over the
        whole catalogue, or over a sample in training with `sampled_softmax`."""
        output = self.output_layer
        if not (self.sampled_softmax and training):
            return multinomial_nll(output(hidden), targets)
        sampled, log_expected = self.sampled_candidates()
        if self.sparse_updates:
            # The variables themselves: their gradients are the candidates' rows.
            return sampled_multinomial_nll(
                hidden,
                output.item_vectors.value,
                output.item_bias.value,
                targets,
                sampled,
                log_expected,
                item_axis=0,
            )
        # The output kernel's penalty is not added: Keras counts a weight's regularizer in
        # the model's `losses` whether or not its layer was called.
        return sampled_multinomial_nll(
            hidden, output.kernel, output.bias, targets, sampled, log_expected
        )

    def output_config(self) -> dict:
        return {
            "sampled_softmax": self.sampled_softmax,
            "sampled_proposal": self.sampled_proposal,
            "sparse_updates": self.sparse_updates,
        }
