"""The export of the embedding refiners: `refine` and `similar_items` over raw ids."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf
from background_checks import HERE, clean_environment, saved_model_cli
from fixture_models import train_zoo_model

from keras_recae.models import DenoisingEmbeddingAutoencoder, EmbeddingAutoencoder, EmbeddingVAE
from keras_recae.serving import (
    MISSING_SCORE,
    SavedModelClient,
    export,
    read_warmup_requests,
    version_dir,
)

N_ITEMS = 30
DIM = 12
K = 5
KEYS = {
    "int": np.arange(100, 100 + N_ITEMS, dtype=np.int64) * 7,
    # Every key an integer in text (as word2vec files give them): served as int64.
    "int_text": np.array([str(i) for i in range(N_ITEMS)], dtype=object),
    "str": np.array([f"item-{i}" for i in range(N_ITEMS)], dtype=object),
}


def clustered_vectors(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(4, DIM)) * 3.0
    return (centres[np.arange(N_ITEMS) % 4] + rng.normal(size=(N_ITEMS, DIM))).astype(np.float32)


def trained(cls=EmbeddingAutoencoder, keys="str", **settings):
    keras.utils.set_random_seed(0)
    vectors = clustered_vectors()
    model = cls(latent_dim=4, hidden_dims=(8,), seed=0, **settings)
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    model.fit(vectors, batch_size=10, epochs=3, verbose=0)
    model.set_items(KEYS[keys], vectors)
    return model


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    root = tmp_path_factory.mktemp("refiners")
    models = {
        "ae_str": trained(EmbeddingAutoencoder, "str"),
        "dae_int": trained(DenoisingEmbeddingAutoencoder, "int", normalization="standardize"),
        "vae_int_text": trained(EmbeddingVAE, "int_text", beta=0.01),
    }
    return {name: (model, export(model, root / name, k=K)) for name, model in models.items()}


def serving_keys(model) -> np.ndarray:
    keys = model.item_ids
    if keys.dtype == object and all(k.isdigit() for k in keys):
        return keys.astype(np.int64)
    return keys


def numpy_similar(model, queries, k=K):
    """Top-k by cosine with the mean unit refined vector of each row's known ids."""
    refined = model.refine().astype(np.float64)
    unit = refined / np.linalg.norm(refined, axis=1, keepdims=True)
    keys = serving_keys(model)
    index = {key: i for i, key in enumerate(keys.tolist())}
    padding = -1 if keys.dtype.kind == "i" else ""
    ids, scores = [], []
    for row in queries:
        known = sorted({index[q] for q in row if q in index})
        top_ids = [padding] * k
        top_scores = [MISSING_SCORE] * k
        if known:
            query = unit[known].sum(axis=0)
            cosine = unit @ (query / np.linalg.norm(query))
            cosine[known] = -np.inf
            order = [j for j in np.argsort(-cosine, kind="stable") if j not in known][:k]
            top_ids[: len(order)] = keys[order].tolist()
            top_scores[: len(order)] = cosine[order].tolist()
        ids.append(top_ids)
        scores.append(top_scores)
    return np.array(ids, dtype=keys.dtype), np.array(scores, dtype=np.float32)


def run(function, **inputs):
    return {name: value.numpy() for name, value in function(**inputs).items()}


def decoded(ids):
    return np.array([[v.decode() if isinstance(v, bytes) else v for v in row] for row in ids])


def test_layout_and_signatures(exported):
    model, path = exported["ae_str"]
    assert path.name == "1" and version_dir(path.parent) == path
    for entry in ("saved_model.pb", "variables", "assets.extra/tf_serving_warmup_requests"):
        assert (path / entry).exists(), entry
    loaded = tf.saved_model.load(str(path))
    assert set(loaded.signatures) == {"serving_default", "similar_items", "refine"}


@pytest.mark.parametrize("name", ["ae_str", "dae_int", "vae_int_text"])
def test_similar_items_against_a_numpy_cosine_top_k(exported, name):
    model, path = exported[name]
    keys = serving_keys(model)
    integer = keys.dtype.kind == "i"
    pad, unknown = (-1, 99999999) if integer else ("", "nope")
    queries = [
        [keys[0], pad, pad],
        [keys[3], keys[7], pad],
        # Repeated, padding and unknown ids are ignored.
        [keys[3], unknown, keys[7], keys[3]],
        [unknown, pad, pad, pad],
    ]
    width = max(map(len, queries))
    padded = [row + [pad] * (width - len(row)) for row in queries]
    dtype = tf.int64 if integer else tf.string
    signature = tf.saved_model.load(str(path)).signatures["similar_items"]
    top = run(signature, item_ids=tf.constant(padded, dtype))
    expected_ids, expected_scores = numpy_similar(model, padded)
    np.testing.assert_array_equal(decoded(top["item_ids"]), expected_ids)
    np.testing.assert_allclose(top["scores"], expected_scores, rtol=1e-5, atol=1e-5)
    # The query is never among the answers, and rows 2 and 3 agree.
    assert keys[0] not in decoded(top["item_ids"][:1]).ravel().tolist()
    np.testing.assert_array_equal(top["item_ids"][1], top["item_ids"][2])
    assert (top["scores"][3] == MISSING_SCORE).all()
    np.testing.assert_array_equal(decoded(top["item_ids"][3:]), [[pad] * K])


def test_ids_are_int64_only_when_every_key_is_an_integer(exported):
    specs = {
        name: tf.saved_model.load(str(path))
        .signatures["similar_items"]
        .structured_input_signature[1]["item_ids"]
        .dtype
        for name, (_, path) in exported.items()
    }
    assert specs == {"ae_str": tf.string, "dae_int": tf.int64, "vae_int_text": tf.int64}


def test_refine_signature_equals_the_model(exported):
    for name, (model, path) in exported.items():
        signature = tf.saved_model.load(str(path)).signatures["refine"]
        vectors = clustered_vectors(seed=3)[:7]
        refined = run(signature, vectors=tf.constant(vectors))["refined"]
        np.testing.assert_allclose(refined, model.refine(vectors), rtol=1e-5, atol=1e-6)
        assert refined.shape == (7, 4)


def test_k_larger_than_the_items_left_pads_the_rest(tmp_path):
    model = trained()
    signature = tf.saved_model.load(str(export(model, tmp_path, k=N_ITEMS))).signatures[
        "similar_items"
    ]
    top = run(signature, item_ids=tf.constant([list(model.item_ids[:3])]))
    assert (top["scores"][0, : N_ITEMS - 3] > MISSING_SCORE).all()
    assert (top["scores"][0, N_ITEMS - 3 :] == MISSING_SCORE).all()
    assert (top["item_ids"][0, N_ITEMS - 3 :] == b"").all()


@pytest.mark.parametrize(
    "signature, inputs, message",
    [
        ("similar_items", {"item_ids": tf.constant([[1.0]])}, "int64"),
        ("similar_items", {"item_ids": tf.constant([1, 2], tf.int64)}, r"item_ids \[2\]"),
        ("refine", {"vectors": tf.constant([[1.0, 2.0]])}, r"\[1,2\]"),
        ("refine", {"vectors": tf.constant([[1, 2]], tf.int64)}, "float"),
    ],
)
def test_bad_requests_fail_clearly(exported, signature, inputs, message):
    function = tf.saved_model.load(str(exported["dae_int"][1])).signatures[signature]
    with pytest.raises((tf.errors.InvalidArgumentError, TypeError, ValueError), match=message):
        function(**inputs)


def test_versions_are_never_overwritten(exported, tmp_path):
    model = exported["ae_str"][0]
    assert export(model, tmp_path, k=3).name == "1"
    assert export(model, tmp_path, version=5, k=3).name == "5"
    before = (tmp_path / "5" / "saved_model.pb").stat().st_mtime_ns
    with pytest.raises(FileExistsError, match="never overwritten"):
        export(model, tmp_path, version=5, k=3)
    assert (tmp_path / "5" / "saved_model.pb").stat().st_mtime_ns == before
    assert export(model, tmp_path, k=3).name == "6"
    assert sorted(os.listdir(tmp_path)) == ["1", "5", "6"]


def test_one_export_serves_every_kind_under_one_default_model_name(exported, tmp_path):
    refiner = export(exported["ae_str"][0], tmp_path / "refiner", k=3)
    recommender = export(train_zoo_model("ease", "int"), tmp_path / "recommender", k=3)
    assert set(tf.saved_model.load(str(refiner)).signatures) == {
        "serving_default",
        "similar_items",
        "refine",
    }
    assert set(tf.saved_model.load(str(recommender)).signatures) == {
        "serving_default",
        "recommend",
        "score",
    }
    names = {
        path.parent.name: {
            log.predict_log.request.model_spec.name for log in read_warmup_requests(path)
        }
        for path in (refiner, recommender)
    }
    assert names == {"refiner": {"recommender"}, "recommender": {"recommender"}}
    # The name of the warm-up requests follows `model_name`, as `keras-recae export` sets it.
    named = export(exported["ae_str"][0], tmp_path / "refiner", k=3, model_name="refiner")
    assert {log.predict_log.request.model_spec.name for log in read_warmup_requests(named)} == {
        "refiner"
    }


def test_refuses_a_model_of_another_kind(tmp_path):
    with pytest.raises(TypeError, match="Recommender or an EmbeddingRefiner. Received: Sequential"):
        export(keras.Sequential([keras.layers.Dense(2)]), tmp_path)
    assert os.listdir(tmp_path) == []


def test_a_failed_export_leaves_nothing(exported, tmp_path, monkeypatch):
    import keras_recae.serving.warmup as warmup

    def fail(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(warmup, "write_warmup_requests", fail)
    with pytest.raises(RuntimeError, match="disk full"):
        export(exported["ae_str"][0], tmp_path, k=3)
    assert os.listdir(tmp_path) == []


def test_refuses_an_untrained_model_or_one_without_a_catalogue(tmp_path):
    model = EmbeddingAutoencoder(latent_dim=4)
    model.adapt(clustered_vectors())
    model.set_items(KEYS["str"], clustered_vectors())
    with pytest.raises(ValueError, match="never trained"):
        export(model, tmp_path)
    model.compile(optimizer="adam")
    with pytest.raises(ValueError, match="never trained"):
        export(model, tmp_path)
    without = trained()
    without.item_ids = without.item_vectors = None
    with pytest.raises(ValueError, match="no catalogue"):
        export(without, tmp_path, k=K)
    with pytest.raises(ValueError, match=r"`k` should be an integer in \[1, 30\]"):
        export(trained(), tmp_path, k=31)
    assert os.listdir(tmp_path) == []


def test_refuses_the_padding_value_as_a_key(tmp_path):
    model = trained(keys="int")
    model.set_items(np.arange(-1, N_ITEMS - 1), model.item_vectors)
    with pytest.raises(ValueError, match="padding value"):
        export(model, tmp_path, k=K)


def test_warmup_records_cover_every_signature_and_run(exported):
    from tensorflow_serving.apis import prediction_log_pb2

    for name, (_, path) in exported.items():
        logs = read_warmup_requests(path)
        assert all(isinstance(log, prediction_log_pb2.PredictionLog) for log in logs)
        loaded = tf.saved_model.load(str(path))
        requests = [log.predict_log.request for log in logs]
        assert {r.model_spec.signature_name for r in requests} == set(loaded.signatures)
        for request in requests:
            assert request.model_spec.name == "recommender"
            inputs = {key: tf.make_ndarray(proto) for key, proto in request.inputs.items()}
            outputs = run(loaded.signatures[request.model_spec.signature_name], **inputs)
            for value in outputs.values():
                assert np.isfinite(value).all() if value.dtype.kind == "f" else value.size


def test_the_saved_model_client_reads_similar_items(exported):
    model, path = exported["ae_str"]
    client = SavedModelClient(path.parent)
    outputs = client._predict(
        {"item_ids": np.array([["item-1", "item-2"]], dtype=object)}, "similar_items"
    )
    expected_ids, _ = numpy_similar(model, [["item-1", "item-2"]])
    np.testing.assert_array_equal(decoded(outputs["item_ids"]), expected_ids)


def test_runs_where_keras_recae_cannot_be_imported(exported, tmp_path):
    """The import-blocked runner of the zoo's tests: tf.saved_model.load and a TF1 session."""
    jobs, expected = {}, {}
    for name, (model, path) in exported.items():
        keys = serving_keys(model)
        pad = -1 if keys.dtype.kind == "i" else ""
        dtype = np.int64 if keys.dtype.kind == "i" else object
        queries = np.array([[pad, keys[1], keys[2]], [pad, pad, pad]], dtype=dtype)
        vectors = clustered_vectors(seed=5)[:3]
        jobs[name] = {
            "path": str(path),
            "requests": {"similar_items": {"item_ids": queries}, "refine": {"vectors": vectors}},
        }
        ids, scores = numpy_similar(model, queries.tolist())
        expected[name] = {"ids": ids, "scores": scores, "refined": model.refine(vectors)}
    with open(tmp_path / "requests.pkl", "wb") as file:
        pickle.dump(jobs, file)
    runner = [sys.executable, str(HERE / "standalone_runner.py"), "requests.pkl", "outputs.pkl"]
    process = subprocess.run(
        runner, cwd=tmp_path, env=clean_environment(), capture_output=True, text=True, timeout=300
    )
    assert process.returncode == 0, process.stderr[-3000:]
    with open(tmp_path / "outputs.pkl", "rb") as file:
        outputs = pickle.load(file)
    assert "blocked on purpose" in outputs["blocked"] and outputs["project_modules"] == []
    for name, results in outputs["results"].items():
        for answers in (results, results["session"]):
            similar = answers["similar_items"]
            np.testing.assert_array_equal(decoded(similar["item_ids"]), expected[name]["ids"])
            np.testing.assert_allclose(similar["scores"], expected[name]["scores"], atol=1e-5)
            np.testing.assert_allclose(
                answers["refine"]["refined"], expected[name]["refined"], rtol=1e-5, atol=1e-6
            )


def test_saved_model_cli_runs_similar_items(exported, tmp_path):
    model, path = exported["dae_int"]
    keys = serving_keys(model)
    queries = [[-1, int(keys[4])]]
    result = subprocess.run(
        [saved_model_cli(), "run", "--dir", str(path), "--tag_set", "serve"]
        + ["--signature_def", "similar_items", "--input_exprs", f"item_ids={queries!r}"]
        + ["--outdir", str(tmp_path)],
        env=clean_environment(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    expected_ids, _ = numpy_similar(model, queries)
    np.testing.assert_array_equal(np.load(tmp_path / "item_ids.npy"), expected_ids)
