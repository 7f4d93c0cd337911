"""Writes one small trained `.keras` file per model class, and its predictions beside it.

Run from outside the repository with the package to freeze on the path, e.g.
`cd /tmp && PYTHONPATH=/path/to/checkout python /path/to/make.py OUT_DIR`.
"""

import os
import sys
import zipfile

import keras
import numpy as np
import tensorflow as tf

import keras_recae
from keras_recae.data import sparse_batches, synthetic_interactions
from keras_recae.models import (
    CDAE,
    EASE,
    Autoencoder,
    AutoRec,
    DeepRec,
    DenoisingAutoencoder,
    DenoisingEmbeddingAutoencoder,
    EmbeddingAutoencoder,
    EmbeddingVAE,
    MultDAE,
    MultVAE,
    RecVAE,
)

N_USERS, N_ITEMS, N_ROWS = 40, 30, 6


def sparse(dense: np.ndarray) -> tf.SparseTensor:
    return tf.sparse.from_dense(tf.constant(dense, tf.float32))


def save(model, path: str) -> None:
    """`model.save`, the archive then deflated (Keras stores it uncompressed), entries unchanged."""
    model.save(path)
    with zipfile.ZipFile(path) as archive:
        entries = [(info, archive.read(info)) for info in archive.infolist()]
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for info, content in entries:
            archive.writestr(info, content, compress_type=zipfile.ZIP_DEFLATED)


def ranking(name, model, data, batches, item_ids=None):
    model.set_item_ids(data.item_ids if item_ids is None else item_ids)
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    model.fit(batches, epochs=1, steps_per_epoch=2, verbose=0)
    return name, model


def main(out: str) -> None:
    print("keras_recae from", keras_recae.__file__)
    os.makedirs(out, exist_ok=True)
    keras.utils.set_random_seed(0)
    data = synthetic_interactions(N_USERS, N_ITEMS, n_clusters=3, density=0.2, seed=0)
    ratings = synthetic_interactions(
        N_USERS, N_ITEMS, n_clusters=3, density=0.2, seed=1, explicit=True
    )
    batches = sparse_batches(data.matrix, 10, shuffle=True, seed=0)
    inputs = data.matrix[:N_ROWS].toarray()
    rating_inputs = ratings.matrix[:N_ROWS].toarray()
    users = np.array([0, 3, -1, 5, 7, 1])
    models = [
        ranking("autoencoder", Autoencoder((8, 4), loss="logistic", seed=0), data, batches),
        ranking("denoising_autoencoder", DenoisingAutoencoder((8, 4), seed=0), data, batches),
        # String ids for one model, integers for the others.
        ranking("mult_dae", MultDAE((8, 4), seed=0), data, batches, data.item_ids.astype(str)),
        ranking("mult_vae", MultVAE((8, 4), seed=0), data, batches),
    ]
    rec_vae = RecVAE(hidden_dim=8, latent_dim=4, n_layers=2, seed=0)
    models.append(
        ranking("rec_vae", rec_vae, data, rec_vae.training_batches(data.matrix, 10, seed=0))
    )
    cdae = CDAE(hidden_dim=4, negative_ratio=2, seed=0)
    cdae.set_user_ids(data.user_ids)
    models.append(ranking("cdae", cdae, data, cdae.training_batches(data.matrix, 10, seed=0)))
    ease = EASE(l2=10.0)
    ease.fit(data)
    models.append(("ease", ease))
    for kind in ("item", "user"):
        auto_rec = AutoRec(kind=kind, hidden_units=4, l2=1.0, seed=0)
        auto_rec.compile(optimizer=keras.optimizers.Adam(1e-2))
        auto_rec.fit(ratings, batch_size=10, epochs=1, verbose=0)
        models.append((f"auto_rec_{kind}", auto_rec))
    deep_rec = DeepRec((8, 4), dropout=0.5, seed=0)
    deep_rec.compile(optimizer=keras.optimizers.Adam(1e-2))
    deep_rec.fit(ratings, batch_size=10, epochs=1, verbose=0)
    models.append(("deep_rec", deep_rec))

    for name, model in models:
        rows = rating_inputs if model.explicit else inputs
        predictions = {"inputs": rows, "scores": keras.ops.convert_to_numpy(model(sparse(rows)))}
        if isinstance(model, CDAE) or (isinstance(model, AutoRec) and model.kind == "item"):
            scores = model.score_users(sparse(rows), users)
            predictions.update(users=users, user_scores=keras.ops.convert_to_numpy(scores))
        save(model, os.path.join(out, f"{name}.keras"))
        np.savez_compressed(os.path.join(out, f"{name}.npz"), **predictions)

    rng = np.random.default_rng(0)
    vectors = (rng.normal(size=(24, 6)) + 1.0).astype(np.float32)
    keys = np.array([f"item-{i}" for i in range(len(vectors))], dtype=object)
    refiners = {
        "embedding_autoencoder": EmbeddingAutoencoder(latent_dim=3, hidden_dims=(4,), seed=0),
        "denoising_embedding_autoencoder": DenoisingEmbeddingAutoencoder(
            latent_dim=3, hidden_dims=(4,), dropout=0.1, seed=0
        ),
        "embedding_vae": EmbeddingVAE(latent_dim=3, hidden_dims=(4,), anneal_steps=2, seed=0),
    }
    for name, model in refiners.items():
        model.compile(optimizer=keras.optimizers.Adam(1e-2))
        model.fit(vectors, batch_size=12, epochs=1, verbose=0)
        model.set_items(keys, vectors)
        save(model, os.path.join(out, f"{name}.keras"))
        np.savez_compressed(
            os.path.join(out, f"{name}.npz"), inputs=vectors, refined=model.refine(vectors)
        )


if __name__ == "__main__":
    main(sys.argv[1])
