"""The base of the embedding refiners: autoencoders over pre-trained item vectors."""

from __future__ import annotations

import os

import keras
import numpy as np
import tensorflow as tf

from keras_recae import distribute
from keras_recae.checks import (
    check_activation,
    check_choice,
    check_hidden_dims,
    check_non_negative,
    check_positive_int,
)
from keras_recae.data import ids
from keras_recae.data.vectors import as_keys
from keras_recae.keras_overrides import DistributedTrainerOverrides
from keras_recae.models.building import build_stack
from keras_recae.models.loss_parts_training import LossPartsTraining

NORMALIZATIONS = ("none", "l2", "standardize")
RECONSTRUCTIONS = ("mse", "cosine")
_VECTORS_FILE = "item_vectors.npy"
# Rows of zero norm, and dimensions that never vary, are left as they are.
_EPSILON = 1e-12
# Keras's default batch size, which `fit` keeps when it makes the pipeline itself.
_DEFAULT_BATCH_SIZE = 32


@keras.saving.register_keras_serializable(package="keras_recae")
class EmbeddingRefiner(LossPartsTraining, DistributedTrainerOverrides, keras.Model):
    """An autoencoder that compresses item vectors trained elsewhere into refined ones.

    Subclasses define the code (`EmbeddingAutoencoder`, `DenoisingEmbeddingAutoencoder`,
    `EmbeddingVAE`). An input row is normalised (`normalization`: as it is, to unit
    length, or standardised per dimension with the catalogue's mean and standard
    deviation), encoded by dense `hidden_dims` layers into a `latent_dim` code, and decoded
    by the mirrored layers back into the normalised row. The code (the posterior mean for
    the VAE), less the catalogue's mean code when `center=True`, is the refined vector:
    `refine(vectors)`. Refined vectors are meant for cosine similarity, which a direction
    shared by every item would dominate (word2vec vectors have one); centring removes it,
    as PCA does, and on item2vec vectors it is worth several times the Recall@20 of
    user-item retrieval (benchmarks/RESULTS.md).

    Reconstruction losses, per row and averaged over rows: `"mse"`, the mean over the
    dimensions of the squared error in units of each dimension's standard deviation over
    the catalogue (so a prediction of the mean costs about 1 whatever the scale of the
    vectors), or `"cosine"`, one minus the cosine of the output and the normalised input.

    The statistics of the normalisation and of the loss come from `adapt(vectors)`, which
    `fit` runs on its training data when it has not been run. The model keeps the item
    ids and raw vectors of the catalogue (`set_items`) in its `.keras` file, for the
    `similar_items` serving signature (`keras_recae.serving.export`).

    Training batches may carry row weights as Keras's `(x, y, sample_weight)`: the
    losses are then means weighted by them, and rows of weight 0 (the padding of
    `training_batches`) count nowhere. Under a `tf.distribute` strategy (the model created
    in `strategy.scope()`), `fit` feeds each replica its rows of each global batch, and
    each replica's loss is its share of the global batch's; see `fit` and
    `keras_recae.distribute`.

    Args:
        latent_dim: int. The dimension of the refined vectors. Defaults to `64`.
        hidden_dims: list of int. Encoder widths between the input and the code; the
            decoder mirrors them. `()` makes both linear. Defaults to `(512,)`.
        activation: str. Activation of the hidden layers. Defaults to `"gelu"`.
        normalization: str. `"none"`, `"l2"` or `"standardize"`. Defaults to `"l2"`.
        reconstruction: str. `"mse"` or `"cosine"`. Defaults to `"mse"`.
        center: bool. Whether refined vectors are centred on the catalogue's mean code
            (see `center_codes`). Defaults to `True`.
        l2: float. L2 penalty on the kernels. Defaults to `0.0`.
        seed: int | None. Seed of the model's randomness. Defaults to `None`.
    """

    part_names = ("loss", "reconstruction")

    def __init__(
        self,
        latent_dim: int = 64,
        hidden_dims=(512,),
        activation: str = "gelu",
        normalization: str = "l2",
        reconstruction: str = "mse",
        center: bool = True,
        l2: float = 0.0,
        seed: int | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.latent_dim = check_positive_int("latent_dim", latent_dim)
        self.hidden_dims = check_hidden_dims(hidden_dims, allow_empty=True)
        self.activation = check_activation(activation)
        self.normalization = check_choice("normalization", normalization, NORMALIZATIONS)
        self.reconstruction = check_choice("reconstruction", reconstruction, RECONSTRUCTIONS)
        if not isinstance(center, bool):
            raise ValueError(f"`center` should be True or False. Received: center={center!r}")
        self.center = center
        self.l2 = check_non_negative("l2", l2)
        self.seed = seed
        self.encoder_layers = [
            self.dense(units, self.activation, f"encoder_{i}")
            for i, units in enumerate(self.hidden_dims)
        ]
        self.code_layer = self.dense(self.code_units(), None, "code")
        self.decoder_layers = [
            self.dense(units, self.activation, f"decoder_{i}")
            for i, units in enumerate(reversed(self.hidden_dims))
        ]
        self.item_ids = None
        self.item_vectors = None

    # -- structure ----------------------------------------------------------------------

    def dense(self, units: int, activation, name: str) -> keras.layers.Dense:
        return keras.layers.Dense(
            units,
            activation=activation,
            kernel_regularizer=keras.regularizers.L2(self.l2) if self.l2 else None,
            name=name,
        )

    def code_units(self) -> int:
        """Outputs of the code layer: the code itself (twice that for a posterior)."""
        return self.latent_dim

    def build(self, input_shape):
        dim = int(input_shape[-1])
        # The normalisation's statistics are weights, so they travel in `.keras` files.
        self.input_mean = self.add_weight(
            shape=(dim,), initializer="zeros", trainable=False, name="input_mean"
        )
        self.input_scale = self.add_weight(
            shape=(dim,), initializer="ones", trainable=False, name="input_scale"
        )
        self.spread = self.add_weight(
            shape=(dim,), initializer="ones", trainable=False, name="spread"
        )
        self.adapted = self.add_weight(
            shape=(), initializer="zeros", trainable=False, name="adapted"
        )
        self.code_center = self.add_weight(
            shape=(self.latent_dim,), initializer="zeros", trainable=False, name="code_center"
        )
        self.output_layer = self.dense(dim, None, "reconstruction")
        build_stack(self.encoder_layers + [self.code_layer], dim)
        build_stack(self.decoder_layers + [self.output_layer], self.latent_dim)

    @property
    def input_dim(self) -> int | None:
        """The dimension of the raw vectors, known once the model is built."""
        shape = (self.get_build_config() or {}).get("input_shape")
        return None if shape is None else int(shape[-1])

    # -- statistics ---------------------------------------------------------------------

    def is_adapted(self) -> bool:
        return self.built and bool(keras.ops.convert_to_numpy(self.adapted))

    def adapt(self, data, batch_size: int = 4096) -> None:
        """Sets the normalisation's statistics from the catalogue's vectors.

        Args:
            data: an `(n, d)` array, or a `tf.data.Dataset` of such batches (or of tuples
                whose first part they are).
            batch_size: int. Rows per step over an array. Defaults to `4096`.
        """
        totals = None
        for batch in _batches(data, batch_size):
            batch = np.asarray(batch, dtype=np.float64)
            if batch.ndim != 2:
                raise ValueError(
                    f"`adapt` expects (n, d) vectors. Received a batch of shape {batch.shape}"
                )
            norms = np.linalg.norm(batch, axis=1, keepdims=True)
            unit = batch / np.maximum(norms, _EPSILON)
            parts = (len(batch), batch.sum(0), (batch**2).sum(0), unit.sum(0), (unit**2).sum(0))
            totals = parts if totals is None else tuple(t + p for t, p in zip(totals, parts))
        if totals is None:
            raise ValueError("`adapt` received no vectors")
        count, total, squares, unit_total, unit_squares = totals
        if not self.built:
            self.build_for_fit((None, len(total)))
        if len(total) != self.input_dim:
            raise ValueError(
                f"The vectors should have {self.input_dim} dimensions, as the model was built "
                f"for. Received: {len(total)}"
            )
        mean = total / count
        std = np.sqrt(np.maximum(squares / count - mean**2, 0.0))
        unit_mean = unit_total / count
        unit_std = np.sqrt(np.maximum(unit_squares / count - unit_mean**2, 0.0))
        scale = np.where(std > _EPSILON, std, 1.0)
        if self.normalization == "standardize":
            self.input_mean.assign(mean.astype("float32"))
            self.input_scale.assign(scale.astype("float32"))
            spread = np.where(std > _EPSILON, 1.0, 0.0)
        else:
            spread = unit_std if self.normalization == "l2" else std
        # A dimension that never varies still weighs in the loss, on the scale of the rest.
        typical = np.mean(spread[spread > _EPSILON]) if np.any(spread > _EPSILON) else 1.0
        self.spread.assign(np.where(spread > _EPSILON, spread, typical).astype("float32"))
        self.adapted.assign(1.0)

    def fit(self, x=None, y=None, batch_size=None, epochs=1, **kwargs):
        """`keras.Model.fit` on the catalogue's vectors `x` (an array or a `tf.data.Dataset`).

        Runs `adapt(x)` first if it was not run, and `center_codes(x)` after training.

        Under a `tf.distribute` strategy (the model created in `strategy.scope()`, or `fit`
        called in one), the global batches are split by `keras_recae.distribute.
        distribute_batches`, replica `r` of `R` getting rows `[r * B / R, (r + 1) * B / R)`
        of each batch of `B` rows, and `steps_per_epoch` defaults to the batches of one
        pass. An array `x` is batched by `training_batches(x, batch_size, shuffle,
        seed=self.seed)` (`batch_size` 32 by default, a multiple of `R`); a dataset must
        have batches of one static size, as `training_batches` makes them (the last one
        padded with rows of weight 0). Each replica then draws its noise as the one device
        would for the global batch, so training equals that on one device fed the same
        batches.

        Args:
            x: an `(n, d)` array of vectors, or a `tf.data.Dataset` of such batches (or of
                `(x, y)` or `(x, y, sample_weight)` tuples; `y` is not read).
            y: ignored: the targets are the normalised inputs.
            batch_size: int | None. Rows per batch of an array `x`.
            epochs: int. Passes over the data.
            **kwargs: the other arguments of `keras.Model.fit`.
        """
        if not isinstance(x, tf.data.Dataset):
            try:
                x = np.asarray(x, dtype=np.float32)
            except (TypeError, ValueError):
                raise ValueError(
                    "`fit` expects the vectors `x` as an (n, d) array or a tf.data.Dataset. "
                    f"Received: {type(x).__name__}"
                ) from None
        if not self.is_adapted() or self.center:
            # Refused before training, not after it: the statistics need a finite pass.
            _check_finite(x)
        if not self.is_adapted():
            self.adapt(x)
        data = x
        strategy = self.fit_strategy()
        if strategy is not None:
            if not isinstance(x, tf.data.Dataset):
                shuffle = kwargs.pop("shuffle", True)
                batch_size = batch_size or _DEFAULT_BATCH_SIZE
                # Every worker of a multi-worker strategy makes the same pipeline: the
                # shuffle is seeded.
                data = self.training_batches(x, batch_size, shuffle=shuffle, seed=self.seed)
                # The pipeline shuffles; Keras would warn that it cannot.
                batch_size, kwargs["shuffle"] = None, False
            data, steps = distribute.distribute_batches(strategy, data)
            if kwargs.get("steps_per_epoch") is None:
                kwargs["steps_per_epoch"] = steps
        history = super().fit(data, y, batch_size=batch_size, epochs=epochs, **kwargs)
        if self.center:
            self.center_codes(x)
        return history

    def training_batches(
        self, vectors, batch_size: int = _DEFAULT_BATCH_SIZE, shuffle: bool = True, seed=None
    ) -> tf.data.Dataset:
        """The `tf.data` pipeline `fit` trains on under a `tf.distribute` strategy.

        Elements are `(x, x, weights)` of static shapes `[batch_size, d]` and
        `[batch_size]`: `batch_size` rows of `vectors` (reshuffled on each pass when
        `shuffle`), the last batch padded with zero rows of weight 0, which the losses
        leave out. The rows are gathered in the graph from one copy of `vectors`.

        Args:
            vectors: array-like of shape `(n, d)`.
            batch_size: int. Rows per batch. Defaults to `32`.
            shuffle: bool. Whether to reshuffle the rows on each pass. Defaults to `True`.
            seed: int | None. Seed of the shuffle. Defaults to `None`.
        """
        batch_size = check_positive_int("batch_size", batch_size)
        vectors = np.asarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or not len(vectors):
            raise ValueError(
                f"`vectors` should be a non-empty (n, d) array. Received shape {vectors.shape}"
            )
        table = tf.convert_to_tensor(vectors)
        dim = vectors.shape[1]
        rows = tf.data.Dataset.range(len(vectors))
        if shuffle:
            rows = rows.shuffle(len(vectors), seed=seed, reshuffle_each_iteration=True)

        def gather(indices):
            padding = batch_size - tf.shape(indices)[0]
            x = tf.pad(tf.gather(table, indices), [[0, padding], [0, 0]])
            weights = tf.pad(tf.ones(tf.shape(indices), "float32"), [[0, padding]])
            x = tf.ensure_shape(x, [batch_size, dim])
            return x, x, tf.ensure_shape(weights, [batch_size])

        # Plain graph code: AutoGraph has nothing to convert and warns about the closure.
        gather = tf.autograph.experimental.do_not_convert(gather)
        batches = rows.batch(batch_size).map(gather)
        return batches.prefetch(tf.data.AUTOTUNE)

    def center_codes(self, data, batch_size: int = 4096) -> None:
        """Makes the catalogue's mean code the origin of the refined vectors.

        Refined vectors are compared by cosine, which the mean of the codes (a direction
        every item shares, as in word2vec vectors) would dominate; PCA removes it by
        centring. `fit` calls this on its data when `center=True`.

        Args:
            data: an `(n, d)` array, or a `tf.data.Dataset` of such batches (or of tuples
                whose first part they are).
            batch_size: int. Rows per step over an array. Defaults to `4096`.
        """
        total, count = 0.0, 0
        for batch in _batches(data, batch_size):
            codes = self.code(self.normalize(batch), training=False)
            total = total + np.sum(keras.ops.convert_to_numpy(codes), axis=0, dtype=np.float64)
            count += len(batch)
        if not count:
            raise ValueError("`center_codes` received no vectors")
        self.code_center.assign((total / count).astype("float32"))

    # -- forward ------------------------------------------------------------------------

    def normalize(self, inputs):
        """The row as the encoder sees it and the decoder reconstructs it."""
        inputs = keras.ops.cast(inputs, "float32")
        if self.normalization == "l2":
            norms = keras.ops.sqrt(keras.ops.sum(inputs * inputs, axis=-1, keepdims=True))
            return inputs / keras.ops.maximum(norms, _EPSILON)
        if self.normalization == "standardize":
            return (inputs - self.input_mean) / self.input_scale
        return inputs

    def corrupt(self, normalized, training=False):
        """The encoder's input in training; denoising models corrupt it here."""
        return normalized

    def hidden(self, normalized):
        h = normalized
        for layer in self.encoder_layers:
            h = layer(h)
        return self.code_layer(h)

    def code(self, normalized, training=False):
        """The code the decoder reads (a posterior sample in VAE training)."""
        return self.hidden(normalized)

    def decode(self, code):
        h = code
        for layer in self.decoder_layers:
            h = layer(h)
        return self.output_layer(h)

    def encode(self, inputs):
        """The refined vectors of raw input rows (the posterior mean for VAEs), centred."""
        codes = self.code(self.normalize(inputs), training=False)
        return codes - self.code_center if self.center else codes

    def call(self, inputs, training=False):
        normalized = self.corrupt(self.normalize(inputs), training=training)
        return self.decode(self.code(normalized, training=training))

    # -- training -----------------------------------------------------------------------

    def reconstruction_loss(self, outputs, targets):
        """Per-row reconstruction loss, shape [batch]."""
        outputs = keras.ops.cast(outputs, "float32")
        if self.reconstruction == "cosine":
            dot = keras.ops.sum(outputs * targets, axis=-1)
            norms = keras.ops.sqrt(
                keras.ops.sum(outputs * outputs, axis=-1) * keras.ops.sum(targets * targets, -1)
            )
            return 1.0 - dot / keras.ops.maximum(norms, _EPSILON)
        errors = (outputs - targets) / self.spread
        return keras.ops.mean(errors * errors, axis=-1)

    def loss_parts(self, data, training: bool = False) -> dict:
        """The loss and its parts for a batch of raw vectors, before the weight penalty.

        `data` is the rows, or Keras's `(x, y, sample_weight)` whose row weights (shape
        [batch], by default ones) weigh the rows' losses; under a `tf.distribute`
        strategy the parts are this replica's shares of the global batch's weighted means
        (see `batch_mean`).
        """
        inputs, _, weights = keras.utils.unpack_x_y_sample_weight(data)
        self.ensure_built(inputs)
        targets = self.normalize(inputs)
        outputs = self.decode(self.code(self.corrupt(targets, training), training))
        reconstruction = self.batch_mean(self.reconstruction_loss(outputs, targets), weights)
        return {"loss": reconstruction, "reconstruction": reconstruction}

    def batch_mean(self, values, weights=None):
        """The weighted mean of per-row `values` over the global batch (this replica's share).

        The weighted sum over this replica's rows divided by the sum of the weights over
        the global batch (a cross-replica sum), so that padding rows (weight 0) count
        nowhere and the replicas' shares add up to the mean on one device.
        """
        if weights is None:
            weights = keras.ops.ones_like(values)
        return distribute.replica_mean(values, keras.ops.cast(weights, values.dtype))

    def is_trained(self) -> bool:
        """Whether the weights were ever fitted: at least one optimizer step."""
        return self.compiled and int(self.optimizer.iterations) > 0

    # -- refined vectors and the catalogue ----------------------------------------------

    def refine(self, vectors=None, batch_size: int = 4096) -> np.ndarray:
        """The refined vectors of raw vectors (by default the catalogue's), as float32.

        Args:
            vectors: array-like of shape `(n, d)` | None. Defaults to `None`, the
                vectors of `set_items`.
            batch_size: int. Rows per step. Defaults to `4096`.

        Returns:
            A float32 array of shape `(n, latent_dim)`.
        """
        if vectors is None:
            if self.item_vectors is None:
                raise ValueError("No vectors given, and the model has none (`set_items`)")
            vectors = self.item_vectors
        vectors = np.asarray(vectors, dtype=np.float32)
        if not self.built:
            raise ValueError(f"The {type(self).__name__} is not built: adapt or train it first.")
        if vectors.ndim != 2 or vectors.shape[1] != self.input_dim:
            raise ValueError(
                f"`vectors` should have shape (n, {self.input_dim}). Received: {vectors.shape}"
            )
        parts = [
            keras.ops.convert_to_numpy(self.encode(vectors[start : start + batch_size]))
            for start in range(0, len(vectors), batch_size)
        ]
        if not parts:
            return np.zeros((0, self.latent_dim), np.float32)
        return np.concatenate(parts).astype(np.float32)

    def set_items(self, item_ids, vectors) -> None:
        """Records the catalogue: the raw ids and vectors `similar_items` serves.

        Args:
            item_ids: array-like of shape `(n,)`. Unique integer or string ids.
            vectors: array-like of shape `(n, d)`. The raw vectors, in the order of the ids.
        """
        vectors = np.asarray(vectors, dtype=np.float32)
        if vectors.ndim != 2:
            raise ValueError(f"`vectors` should be (n, d). Received shape {vectors.shape}")
        if self.input_dim is not None and vectors.shape[1] != self.input_dim:
            raise ValueError(
                f"`vectors` should have {self.input_dim} dimensions, as the model was built "
                f"for. Received: {vectors.shape[1]}"
            )
        self.item_ids = as_keys(item_ids, len(vectors))
        self.item_vectors = vectors

    def save_assets(self, dir_path):
        if self.item_ids is None:
            return
        ids.write_id_asset(dir_path, ids.ITEM_IDS_FILE, self.item_ids)
        np.save(os.path.join(dir_path, _VECTORS_FILE), self.item_vectors)

    def load_assets(self, dir_path):
        item_ids = ids.read_id_asset(dir_path, ids.ITEM_IDS_FILE)
        if item_ids is None:
            return
        vectors = np.load(os.path.join(dir_path, _VECTORS_FILE), allow_pickle=False)
        self.set_items(item_ids, vectors)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "latent_dim": self.latent_dim,
                "hidden_dims": list(self.hidden_dims),
                "activation": self.activation,
                "normalization": self.normalization,
                "reconstruction": self.reconstruction,
                "center": self.center,
                "l2": self.l2,
                "seed": self.seed,
            }
        )
        return config


def _check_finite(data) -> None:
    """Statistics need one pass over the catalogue: a repeated dataset would never end."""
    if isinstance(data, tf.data.Dataset) and data.cardinality() == tf.data.INFINITE_CARDINALITY:
        raise ValueError(
            "The statistics of the vectors (`adapt`, `center_codes`) need a finite dataset; "
            "received an infinite one (`repeat()`). Call `model.adapt(vectors)` before `fit` "
            "and `model.center_codes(vectors)` after it on the vectors themselves (with "
            "`center=False`), or pass the dataset before `repeat()`."
        )


def _batches(data, batch_size: int):
    """Numpy batches of an array or of a `tf.data.Dataset` (first part of tuples).

    Rows of weight 0 in `(x, y, sample_weight)` batches (padding) are left out.
    """
    if isinstance(data, tf.data.Dataset):
        _check_finite(data)
        for batch in data.as_numpy_iterator():
            if isinstance(batch, (tuple, list)) and len(batch) == 3:
                yield batch[0][np.asarray(batch[2]).reshape(-1) > 0]
            else:
                yield batch[0] if isinstance(batch, (tuple, list)) else batch
        return
    array = np.asarray(data)
    for start in range(0, len(array), batch_size):
        yield array[start : start + batch_size]
