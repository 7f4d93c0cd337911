"""Test-only models, trained zoo models, example requests and reference predictions.

The reference predictions come from the Keras model in this process, with the raw ids
mapped to columns in Python: an independent computation of what each serving
signature should return.
"""

from __future__ import annotations

import keras
import numpy as np
import scipy.sparse as sp
import tensorflow as tf

from keras_recae.data import sparse_batches, synthetic_interactions, to_sparse_tensor
from keras_recae.models import (
    CDAE,
    EASE,
    Autoencoder,
    AutoRec,
    DeepRec,
    DenoisingAutoencoder,
    MultDAE,
    MultVAE,
    Recommender,
    RecVAE,
)
from keras_recae.serving import MISSING_SCORE

N_USERS = 80
N_ITEMS = 40
K = 10


class ExplicitItemItemFixture(Recommender):
    """Test fixture: an explicit-rating model predicting rating-weighted item averages.

    `prediction[j] = (sum_i r_i s_ij + mean) / (sum_i s_ij + 1)` over the rated items i,
    with `s` a fixed non-negative item-item matrix: the empty history predicts `mean`.
    """

    explicit = True

    def __init__(self, similarity, mean: float, **kwargs):
        super().__init__(**kwargs)
        self.similarity_init = np.asarray(similarity, np.float32)
        self.mean = float(mean)

    def build(self, input_shape):
        self.similarity = self.add_weight(
            name="similarity",
            shape=self.similarity_init.shape,
            initializer=keras.initializers.Constant(self.similarity_init),
            trainable=False,
        )

    def is_trained(self) -> bool:
        return self.built

    def call(self, inputs, training=False):
        ones = tf.SparseTensor(inputs.indices, tf.ones_like(inputs.values), inputs.dense_shape)
        weighted = tf.sparse.sparse_dense_matmul(inputs, self.similarity)
        weights = tf.sparse.sparse_dense_matmul(ones, self.similarity)
        return (weighted + self.mean) / (weights + 1.0)


class UserItemBiasFixture(Recommender):
    """Test fixture: item-item scores plus a per-user item bias, for `recommend_for_user`.

    `score_users` adds the user's row of a bias matrix; unknown users (index -1) get none.
    """

    user_conditioned = True

    def __init__(self, similarity, user_bias, user_ids, **kwargs):
        super().__init__(**kwargs)
        self.similarity_init = np.asarray(similarity, np.float32)
        self.user_bias_init = np.asarray(user_bias, np.float32)
        self.user_ids = np.asarray(user_ids)

    def build(self, input_shape):
        self.similarity = self.add_weight(
            name="similarity",
            shape=self.similarity_init.shape,
            initializer=keras.initializers.Constant(self.similarity_init),
            trainable=False,
        )
        self.user_bias = self.add_weight(
            name="user_bias",
            shape=self.user_bias_init.shape,
            initializer=keras.initializers.Constant(self.user_bias_init),
            trainable=False,
        )

    def is_trained(self) -> bool:
        return self.built

    def call(self, inputs, training=False):
        return tf.sparse.sparse_dense_matmul(inputs, self.similarity)

    def score_users(self, inputs, user_indices):
        known = tf.cast(user_indices >= 0, tf.float32)[:, None]
        bias = tf.gather(self.user_bias, tf.maximum(user_indices, 0)) * known
        return self.call(inputs) + bias


def string_ids(ids) -> np.ndarray:
    return np.array([f"item-{i}" for i in ids], dtype=object)


def training_data(explicit: bool = False):
    return synthetic_interactions(N_USERS, N_ITEMS, n_clusters=4, seed=0, explicit=explicit)


def train_zoo_model(name: str, vocabulary: str):
    """A zoo model trained for a few steps (fitted, for EASE) on tiny synthetic data."""
    data = training_data()
    keras.utils.set_random_seed(0)
    if name == "ease":
        model = EASE(l2=20.0)
        model.fit(data.matrix)
    elif name in ("rec_vae", "cdae"):
        if name == "rec_vae":
            model = RecVAE(hidden_dim=16, latent_dim=8, n_layers=2, seed=0)
        else:
            model = CDAE(hidden_dim=8, negative_ratio=3, seed=0)
            model.set_user_ids(data.user_ids)
        model.compile(optimizer=keras.optimizers.Adam(1e-2), run_eagerly=True)
        batches = model.training_batches(data.matrix, 40, seed=0)
        model.fit(batches, epochs=1, verbose=0)
    elif name in ("auto_rec_item", "auto_rec_user", "deep_rec", "deep_rec_item"):
        if name.startswith("deep_rec"):
            kind = "item" if name == "deep_rec_item" else "user"
            model = DeepRec(hidden_dims=(16, 8), dropout=0.5, seed=0, kind=kind)
        else:
            model = AutoRec(kind=name.rsplit("_", 1)[1], hidden_units=8, seed=0)
        model.compile(optimizer=keras.optimizers.Adam(1e-2), run_eagerly=True)
        model.fit(training_data(explicit=True), batch_size=40, epochs=1, verbose=0)
    else:
        cls = {
            "mult_vae": MultVAE,
            "mult_dae": MultDAE,
            "autoencoder": Autoencoder,
            "denoising_autoencoder": DenoisingAutoencoder,
        }[name]
        model = cls(hidden_dims=(16, 8), seed=0)
        model.compile(optimizer=keras.optimizers.Adam(1e-2), run_eagerly=True)
        model.fit(sparse_batches(data.matrix, 40, shuffle=True, seed=0), epochs=1, verbose=0)
    model.set_item_ids(data.item_ids if vocabulary == "int" else string_ids(data.item_ids))
    return model


def item_item_similarity(data) -> np.ndarray:
    binary = (data.matrix > 0).astype(np.float32)
    similarity = (binary.T @ binary).toarray() / data.n_users
    np.fill_diagonal(similarity, 0.0)
    return similarity


def explicit_fixture_model():
    data = training_data(explicit=True)
    model = ExplicitItemItemFixture(item_item_similarity(data), mean=float(data.matrix.data.mean()))
    model.build((None, data.n_items))
    model.set_item_ids(data.item_ids)
    return model


def user_fixture_model():
    data = training_data()
    rng = np.random.default_rng(0)
    bias = rng.normal(size=(data.n_users, data.n_items)).astype(np.float32)
    model = UserItemBiasFixture(item_item_similarity(data), bias, user_ids=data.user_ids)
    model.build((None, data.n_items))
    model.set_item_ids(string_ids(data.item_ids))
    return model


def example_requests(model, signatures) -> dict:
    """Requests covering plain, duplicated, unknown, padded and empty histories."""
    ids = np.asarray(model.item_ids)
    integer = ids.dtype.kind in "iu"
    pad, unknown, dtype = (-1, 10**9, np.int64) if integer else ("", "no-such-item", object)
    k0, k1, k2, k3, k4, k5 = ids[:6]
    histories = np.array(
        [
            [k0, k1, k2, pad, pad],
            [k3, k3, unknown, k4, pad],
            [pad, pad, pad, pad, pad],
            [unknown, unknown, pad, pad, pad],
        ],
        dtype=dtype,
    )
    history = {"item_ids": histories}
    if model.explicit:
        history["ratings"] = np.array(
            [[5, 1, 4, 0, 0], [1, 5, 3, 2, 0], [0, 0, 0, 0, 0], [4, 4, 0, 0, 0]], np.float32
        )
    requests = {}
    for name in signatures:
        inputs = dict(history)
        if name == "score":
            inputs["candidate_ids"] = np.array(
                [[k0, k5, unknown], [k5, k4, pad], [k1, k2, k3], [pad, k0, unknown]], dtype=dtype
            )
        if name == "recommend_for_user":
            users = model.user_ids
            other = -1 if users.dtype.kind in "iu" else "no-such-user"
            inputs["user_id"] = np.array([users[0], users[1], other, users[2]], dtype=users.dtype)
        requests[name] = inputs
    return requests


def reference_outputs(model, k: int, signature: str, inputs: dict) -> dict:
    """What a signature should return, from the Keras model and Python id mapping."""
    ids = np.asarray(model.item_ids)
    integer = ids.dtype.kind in "iu"
    pad = -1 if integer else ""
    column = {raw: j for j, raw in enumerate(ids.tolist())}
    history = inputs["item_ids"]
    ratings = inputs.get("ratings")
    rows, cols, values = [], [], []
    for r, row in enumerate(history.tolist()):
        entries = {}
        for j, raw in enumerate(row):
            if raw != pad and raw in column:
                entries[column[raw]] = 1.0 if ratings is None else float(ratings[r, j])
        for c, value in sorted(entries.items()):
            rows.append(r)
            cols.append(c)
            values.append(value)
    matrix = sp.csr_matrix((values, (rows, cols)), shape=(len(history), len(ids)))
    x = to_sparse_tensor(matrix)
    if signature == "encode":
        return {"embedding": np.asarray(model.encode(x), np.float32)}
    if signature == "recommend_for_user":
        users = {raw: j for j, raw in enumerate(model.user_ids.tolist())}
        indices = [users.get(raw, -1) for raw in inputs["user_id"].tolist()]
        scores = np.asarray(model.score_users(x, tf.constant(indices, tf.int64)), np.float32)
    else:
        scores = np.asarray(model(x, training=False), np.float32)
    if signature == "score":
        candidates = inputs["candidate_ids"].tolist()
        out = np.full((len(candidates), len(candidates[0])), MISSING_SCORE, np.float32)
        for r, row in enumerate(candidates):
            for j, raw in enumerate(row):
                if raw != pad and raw in column:
                    out[r, j] = scores[r, column[raw]]
        return {"scores": out}
    masked = scores.copy()
    masked[matrix.nonzero()] = -np.inf
    order = np.argsort(-masked, axis=1, kind="stable")[:, :k]
    top = np.take_along_axis(masked, order, axis=1)
    available = top > -np.inf
    top_ids = np.where(available, ids[order], pad)
    return {
        "item_ids": top_ids.astype(np.int64 if integer else object),
        "scores": np.where(available, top, MISSING_SCORE).astype(np.float32),
    }


def decoded(array) -> np.ndarray:
    """Strings as `str` (TensorFlow returns bytes), other arrays as they are."""
    array = np.asarray(array)
    if array.dtype.kind not in "SO":
        return array
    flat = [v.decode() if isinstance(v, bytes) else v for v in array.ravel()]
    return np.array(flat, dtype=object).reshape(array.shape)


def assert_outputs_match(actual: dict, expected: dict, context: str = "") -> None:
    """Same output names, same ids, scores within 1e-5."""
    assert set(actual) == set(expected), (context, set(actual), set(expected))
    for name in expected:
        got, value = decoded(actual[name]), decoded(expected[name])
        assert got.shape == value.shape, (context, name, got.shape, value.shape)
        message = f"{context} {name}"
        if value.dtype.kind == "f":
            np.testing.assert_allclose(got, value, rtol=1e-5, atol=1e-5, err_msg=message)
        else:
            np.testing.assert_array_equal(got, value, err_msg=message)
