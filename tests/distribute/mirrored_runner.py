"""Trains zoo models on one device and under MirroredStrategy over two logical CPUs.

Run as a script (the CPU must be split before TensorFlow starts, so not in the pytest
process): `python mirrored_runner.py OUT.json MODEL [MODEL ...]`. For each model it
trains the same initial weights for two epochs with the same seeds and global batches on
one device and under the strategy, and writes to OUT.json, per model: the largest
difference between the two runs' weights, how far training moved them, whether the
two replicas' copies agree, and both runs' per-epoch logs.

Under the strategy `Recommender.fit` feeds the pipeline repeated, with `steps_per_epoch`;
the one-device run is fed the same way. (Fed a finite pipeline, Keras makes a spare
iterator at the end of each epoch, so a reshuffling pipeline's second epoch on one device
is its third pass.)
"""

from __future__ import annotations

import contextlib
import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from keras_recae.distribute import split_cpu  # noqa: E402 (TensorFlow not started yet)

split_cpu(2)

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from keras_recae.data import sparse_batches, synthetic_interactions  # noqa: E402
from keras_recae.distribute import distribute_batches  # noqa: E402
from keras_recae.models import (  # noqa: E402
    CDAE,
    EASE,
    Autoencoder,
    AutoRec,
    DeepRec,
    DenoisingAutoencoder,
    DenoisingEmbeddingAutoencoder,
    EmbeddingAutoencoder,
    EmbeddingRefiner,
    EmbeddingVAE,
    MultDAE,
    MultVAE,
    RecVAE,
)
from keras_recae.optimizers import FusedAdam  # noqa: E402

# 90 users in batches of 40: the last batch has 30 padding rows, so the second replica
# gets 20 rows, all padding, in the last step of each epoch. Item-based AutoRec's rows are
# the 30 items, in batches of 8: 2 padding rows, both on the second replica.
N_USERS, N_ITEMS, BATCH, ITEM_BATCH, EPOCHS = 90, 30, 40, 8, 2
# The refiners' 90 vectors of 12 dimensions, in the same batches of 40 (30 padding rows).
VECTOR_DIM = 12


def implicit():
    return synthetic_interactions(n_users=N_USERS, n_items=N_ITEMS, n_clusters=3, density=0.2)


def explicit():
    return synthetic_interactions(
        n_users=N_USERS, n_items=N_ITEMS, n_clusters=3, density=0.2, explicit=True
    )


def vectors():
    rng = np.random.default_rng(0)
    return (rng.normal(size=(N_USERS, 3)) @ rng.normal(size=(3, VECTOR_DIM)) + 1.0).astype(
        "float32"
    )


def vectors_pipeline(model, data):
    # What `EmbeddingRefiner.fit(vectors, batch_size=BATCH)` makes under a strategy.
    return model.training_batches(data, BATCH, seed=model.seed)


def rows_pipeline(model, data):
    return sparse_batches(data.matrix, BATCH, shuffle=True, seed=0)


def own_pipeline(model, data):
    return model.training_batches(data.matrix, BATCH, seed=0)


def batch_size(model) -> int:
    return ITEM_BATCH if getattr(model, "item_based", False) else BATCH


def ratings_pipeline(model, data):
    # What `RatingAutoencoder.fit(data, batch_size=...)` makes.
    return model.training_batches(data, batch_size(model), seed=model.seed)


# name -> (data, model factory, pipeline, optimizer factory)
MODELS = {
    "mult_vae": (
        implicit,
        lambda data: MultVAE(hidden_dims=(16, 4), dropout=0.5, total_anneal_steps=4, seed=1),
        rows_pipeline,
        lambda: FusedAdam(1e-2),
    ),
    "mult_vae_keras_adam": (
        implicit,
        lambda data: MultVAE(hidden_dims=(16, 4), dropout=0.5, total_anneal_steps=4, seed=1),
        rows_pipeline,
        lambda: keras.optimizers.Adam(1e-2),
    ),
    # A sampled softmax (10 of the 30 items a step) with row-sparse updates: the replicas
    # draw the same candidates, and the lazy Adam updates each copy's rows.
    "mult_vae_sparse": (
        implicit,
        lambda data: MultVAE(
            hidden_dims=(16, 4),
            total_anneal_steps=4,
            seed=1,
            sampled_softmax=10,
            sampled_proposal="uniform",
            sparse_updates=True,
        ),
        rows_pipeline,
        lambda: FusedAdam(1e-2, sparse_updates=True),
    ),
    "mult_dae": (
        implicit,
        lambda data: MultDAE(hidden_dims=(8,), dropout=0.5, l2=1e-3, seed=1),
        rows_pipeline,
        lambda: FusedAdam(1e-2),
    ),
    "rec_vae": (
        implicit,
        lambda data: RecVAE(hidden_dim=16, latent_dim=4, n_layers=2, n_enc_epochs=2, seed=1),
        own_pipeline,
        lambda: FusedAdam(1e-2),
    ),
    "rec_vae_sparse": (
        implicit,
        lambda data: RecVAE(
            hidden_dim=16,
            latent_dim=4,
            n_layers=2,
            n_enc_epochs=2,
            seed=1,
            sampled_softmax=10,
            sampled_proposal="uniform",
            sparse_updates=True,
        ),
        own_pipeline,
        lambda: FusedAdam(1e-2, sparse_updates=True),
    ),
    "cdae": (
        implicit,
        lambda data: CDAE(hidden_dim=8, negative_ratio=2, n_users=data.n_users, seed=1),
        own_pipeline,
        lambda: FusedAdam(1e-2),
    ),
    "autoencoder": (
        implicit,
        lambda data: Autoencoder(hidden_dims=(8,), loss="logistic", l2=1e-3, seed=1),
        rows_pipeline,
        lambda: FusedAdam(1e-2),
    ),
    "denoising_autoencoder": (
        implicit,
        lambda data: DenoisingAutoencoder(hidden_dims=(8,), corruption=0.3, seed=1),
        rows_pipeline,
        lambda: FusedAdam(1e-2),
    ),
    "auto_rec": (
        explicit,
        lambda data: AutoRec(kind="item", hidden_units=8, l2=1.0, seed=1),
        ratings_pipeline,
        lambda: FusedAdam(1e-2),
    ),
    "deep_rec": (
        explicit,
        lambda data: DeepRec(hidden_dims=(8, 4), dropout=0.5, l2=1e-3, seed=1, kind="user"),
        ratings_pipeline,
        lambda: FusedAdam(1e-3),
    ),
    # Centring runs after `fit` on its data, which the one-device run feeds repeated.
    "embedding_autoencoder": (
        vectors,
        lambda data: EmbeddingAutoencoder(
            latent_dim=4, hidden_dims=(8,), l2=1e-3, center=False, seed=1
        ),
        vectors_pipeline,
        lambda: FusedAdam(1e-2),
    ),
    "denoising_embedding_autoencoder": (
        vectors,
        lambda data: DenoisingEmbeddingAutoencoder(
            latent_dim=4, hidden_dims=(8,), noise_stddev=0.5, dropout=0.3, center=False, seed=1
        ),
        vectors_pipeline,
        lambda: FusedAdam(1e-2),
    ),
    "embedding_vae": (
        vectors,
        lambda data: EmbeddingVAE(
            latent_dim=4, hidden_dims=(8,), beta=0.5, anneal_steps=4, center=False, seed=1
        ),
        vectors_pipeline,
        lambda: FusedAdam(1e-2),
    ),
}


def is_refiner(model) -> bool:
    return isinstance(model, EmbeddingRefiner)


def train(name, strategy, initial=None):
    """Two epochs of `name`; returns the weights before and after, and the logs."""
    make_data, make_model, pipeline, make_optimizer = MODELS[name]
    data = make_data()
    keras.utils.set_random_seed(0)
    scope = strategy.scope() if strategy is not None else contextlib.nullcontext()
    with scope:
        model = make_model(data)
        model.compile(optimizer=make_optimizer())
        if is_refiner(model):
            # Refiners are built by `adapt`, under the model's strategy.
            model.adapt(data)
        elif model.explicit:
            # Explicit models are built by `adapt`, under the model's strategy.
            model.adapt(data)
        else:
            model.build((None, data.n_items))
    if initial is not None:
        model.set_weights(initial)
    before = [np.array(w) for w in model.get_weights()]
    if strategy is None:
        dataset = pipeline(model, data)
        steps = int(dataset.cardinality())
        history = model.fit(dataset.repeat(), steps_per_epoch=steps, epochs=EPOCHS, verbose=0)
    elif is_refiner(model) or model.explicit:
        history = model.fit(data, batch_size=batch_size(model), epochs=EPOCHS, verbose=0)
    else:
        history = model.fit(pipeline(model, data), epochs=EPOCHS, verbose=0)
    return model, before, history.history


def replica_spread(strategy, model) -> float:
    """The largest difference between the replicas' copies of a weight."""
    spread = 0.0
    for weight in model.weights:
        copies = [
            np.asarray(c.numpy(), np.float64)
            for c in strategy.experimental_local_results(weight.value)
        ]
        for copy in copies[1:]:
            spread = max(spread, float(np.max(np.abs(copy - copies[0]), initial=0.0)))
    return spread


class FallbackCounter:
    """Counts the updates FusedAdam leaves to Keras's Adam (traced once per variable)."""

    def __init__(self):
        self.count = 0
        self.update_step = keras.optimizers.Adam.update_step

    def __enter__(self):
        counter = self

        def update_step(optimizer, *args, **kwargs):
            if isinstance(optimizer, FusedAdam):
                counter.count += 1
            return counter.update_step(optimizer, *args, **kwargs)

        keras.optimizers.Adam.update_step = update_step
        return self

    def __exit__(self, *exc):
        keras.optimizers.Adam.update_step = self.update_step


def compare(name: str, strategy) -> dict:
    one, initial, one_logs = train(name, None)
    with FallbackCounter() as fallbacks:
        mirrored, _, mirrored_logs = train(name, strategy, initial)

    def largest(arrays):
        return max(float(np.max(np.abs(a), initial=0.0)) for a in arrays)

    after = [np.asarray(w, np.float64) for w in one.get_weights()]
    others = [np.asarray(w, np.float64) for w in mirrored.get_weights()]
    before = [np.asarray(w, np.float64) for w in initial]
    difference = largest(a - b for a, b in zip(after, others))
    moved = largest(a - b for a, b in zip(after, before))
    return {
        "replicas": strategy.num_replicas_in_sync,
        "difference": difference,
        "scale": largest(after),
        "moved": moved,
        "replica_spread": replica_spread(strategy, mirrored),
        "fused_adam_fallbacks": fallbacks.count,
        "steps": int(keras.ops.convert_to_numpy(one.optimizer.iterations)),
        "mirrored_steps": int(keras.ops.convert_to_numpy(mirrored.optimizer.iterations)),
        "one_logs": one_logs,
        "mirrored_logs": mirrored_logs,
    }


def check_errors(strategy) -> dict:
    """The messages of what the strategy refuses: an odd batch, EASE."""
    messages = {}
    data = implicit()
    try:
        distribute_batches(strategy, sparse_batches(data.matrix, 41))
    except ValueError as error:
        messages["odd_batch"] = str(error)
    with strategy.scope():
        ease = EASE(l2=10.0)
    try:
        ease.fit(data)
    except ValueError as error:
        messages["ease"] = str(error)
    return messages


def check_unbuilt(strategy) -> dict:
    """A model left unbuilt builds itself from the first replica's part of a batch."""
    data = implicit()
    with strategy.scope():
        model = MultVAE(hidden_dims=(8, 4), seed=1)
        model.compile(optimizer=FusedAdam(1e-2))
    model.fit(sparse_batches(data.matrix, BATCH, shuffle=True, seed=0), epochs=1, verbose=0)
    kernel = model.output_layer.kernel.value
    return {
        "n_items": model.n_items,
        "steps": int(keras.ops.convert_to_numpy(model.optimizer.iterations)),
        "mirrored": len(strategy.experimental_local_results(kernel)),
    }


def check_parts(strategy) -> dict:
    """Whether the replicas' parts of each batch are the batch's rows, in replica order."""
    data = implicit()

    def dataset():
        return sparse_batches(data.matrix, BATCH, shuffle=True, seed=3, with_rows=True)

    expected = [(tf.sparse.to_dense(x).numpy(), rows.numpy()) for x, rows in dataset()]
    distributed, steps = distribute_batches(strategy, dataset())
    iterator = iter(distributed)
    equal = []
    for dense, rows in expected:
        x, part_rows = next(iterator)
        parts = [tf.sparse.to_dense(p).numpy() for p in strategy.experimental_local_results(x)]
        row_parts = [r.numpy() for r in strategy.experimental_local_results(part_rows)]
        shapes = [tuple(p.shape) for p in strategy.experimental_local_results(x)]
        equal.append(
            bool(np.array_equal(np.concatenate(parts), dense))
            and bool(np.array_equal(np.concatenate(row_parts), rows))
            and shapes == [(BATCH // 2, N_ITEMS)] * 2
        )
    return {"steps": steps, "parts_equal": equal}


def main(argv: list[str]) -> int:
    out, names = argv[0], argv[1:]
    # One strategy for all models: strategies made one after the other in a process can
    # draw the same keys for their collective ops.
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    results = {
        "errors": check_errors(strategy),
        "parts": check_parts(strategy),
        "unbuilt": check_unbuilt(strategy),
    }
    for name in names:
        try:
            results[name] = compare(name, strategy)
        except Exception as error:  # reported to the test, which shows it
            results[name] = {"error": f"{type(error).__name__}: {error}"}
    with open(out + ".tmp", "w", encoding="utf-8") as file:
        json.dump(results, file, default=float)
    os.replace(out + ".tmp", out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
