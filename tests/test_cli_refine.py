"""`keras-recae refine`, and `export` of its run directory."""

import contextlib
import io
import json

import numpy as np
import pytest
import tensorflow as tf

from keras_recae import cli, runs
from keras_recae.data import read_vectors, write_vectors
from keras_recae.models import registry
from keras_recae.serving.warmup import read_warmup_requests

N, DIM = 40, 6


def run(*args) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = cli.main([str(arg) for arg in args])
        except SystemExit as exit_info:  # argparse's usage errors
            code = exit_info.code
    return code, out.getvalue(), err.getvalue()


def example(keys="str"):
    rng = np.random.default_rng(0)
    vectors = (rng.normal(size=(N, 2)) @ rng.normal(size=(2, DIM)) + 1.0).astype(np.float32)
    if keys == "str":
        return np.array([f"item_{i}" for i in range(N)][::-1], dtype=object), vectors
    return np.arange(N, dtype=np.int64)[::-1] * 11, vectors


QUICK = ["--dim", 3, "--epochs", 2, "--batch-size", 8]


@pytest.mark.parametrize(
    "model, extension", [("ae", "txt"), ("dae", "bin"), ("vae", "npz"), ("ae", "npy")]
)
def test_refine_writes_the_same_keys_in_the_same_format(tmp_path, model, extension):
    keys, vectors = example("int" if extension == "npz" else "str")
    source = write_vectors(tmp_path / f"in.{extension}", keys, vectors)
    out = tmp_path / f"out.{extension}"
    code, stdout, stderr = run("refine", source, "--model", model, "--out", out, *QUICK)
    assert code == 0, stderr
    refined_keys, refined = read_vectors(out)
    assert refined_keys.tolist() == read_vectors(source)[0].tolist()
    assert refined.shape == (N, 3) and np.isfinite(refined).all()
    assert f"wrote {out}" in stdout


def test_run_dir_keeps_the_model_and_export_serves_similar_items(tmp_path):
    keys, vectors = example()
    source = write_vectors(tmp_path / "in.txt", keys, vectors)
    run_dir = tmp_path / "run"
    code, _, stderr = run(
        "refine",
        source,
        "--model",
        "vae",
        "--out",
        tmp_path / "out.txt",
        "--run-dir",
        run_dir,
        "--set",
        "beta=0.1",
        *QUICK,
    )
    assert code == 0, stderr
    stored = json.loads((run_dir / "run.json").read_text())
    assert stored["settings"]["beta"] == 0.1 and stored["format"] == "word2vec"
    assert len((run_dir / "history.csv").read_text().splitlines()) == 3
    model = runs.load_run_model(run_dir)
    _, refined = read_vectors(tmp_path / "out.txt")
    np.testing.assert_allclose(model.refine(vectors), refined, rtol=1e-5, atol=1e-6)

    code, stdout, stderr = run("export", run_dir, "--to", tmp_path / "refiner", "--k", 4)
    assert code == 0, stderr
    # The warm-up requests name the model after its base directory, as TF Serving does.
    warmup = read_warmup_requests(stdout.strip())
    assert warmup and {log.predict_log.request.model_spec.name for log in warmup} == {"refiner"}
    loaded = tf.saved_model.load(stdout.strip())
    top = loaded.signatures["similar_items"](item_ids=tf.constant([["item_3", ""]]))
    assert top["item_ids"].shape == (1, 4)
    assert b"item_3" not in top["item_ids"].numpy().ravel().tolist()


def test_a_malformed_file_is_reported_with_its_line(tmp_path):
    path = tmp_path / "bad.txt"
    path.write_text("3 2\na 1 2\nb 1\nc 1 2\n")
    code, _, stderr = run("refine", path, "--out", tmp_path / "out.txt")
    assert code == 2
    assert "keras-recae refine: error:" in stderr and "bad.txt, line 3" in stderr
    assert not (tmp_path / "out.txt").exists()


def test_refuses_to_overwrite_the_output(tmp_path):
    keys, vectors = example()
    source = write_vectors(tmp_path / "in.npy", keys, vectors)
    (tmp_path / "out.ids.txt").write_text("mine\n")
    code, _, stderr = run("refine", source, "--out", tmp_path / "out.npy", *QUICK)
    assert code == 2 and "out.ids.txt exists" in stderr
    assert (tmp_path / "out.ids.txt").read_text() == "mine\n"
    assert not (tmp_path / "out.npy").exists()


@pytest.mark.parametrize(
    "args, message",
    [
        (["--model", "pca"], "unknown refiner 'pca'. Refiners: ae, dae, vae"),
        (["--set", "beta=2"], "EmbeddingAutoencoder has no argument 'beta'"),
        (["--dim", 0], "argument --dim: expected a whole number >= 1, got '0'"),
    ],
)
def test_bad_options(tmp_path, args, message):
    keys, vectors = example()
    source = write_vectors(tmp_path / "in.txt", keys, vectors)
    code, _, stderr = run("refine", source, "--out", tmp_path / "out.txt", *args)
    assert code == 2 and message in stderr


def test_train_does_not_offer_the_refiners(tmp_path):
    names = set(registry.model_classes())
    assert not {name for name in names if "embedding" in name}
    assert registry.refiner_classes()["embedding-vae"] is registry.refiner_classes()["vae"]
    code, _, stderr = run("train", "embedding-autoencoder", "--data", "synthetic")
    assert code == 2 and "unknown model 'embedding-autoencoder'" in stderr
