"""The exports load the way TF Serving loads them: TensorFlow only, no project code.

One subprocess, in which importing `keras_recae` fails on purpose, loads
every export with `tf.saved_model.load`, and again in a TF1 session as
`tensorflow_model_server` does, and runs every signature; the answers must equal the
Keras models' own predictions in this process. `saved_model_cli`, which
loads with TF1 sessions as `tensorflow_model_server` does, shows and runs
`serving_default` of each zoo model.
"""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from background_checks import CLI_MODELS, expected_signatures
from fixture_models import assert_outputs_match, example_requests, reference_outputs


@pytest.fixture(scope="module")
def standalone(launched):
    """Outputs of every signature of every export, computed in the separate process."""
    code, _, stderr = launched.finished("runner")
    assert code == 0, stderr[-3000:]
    with open(launched.work / "outputs.pkl", "rb") as file:
        outputs = pickle.load(file)
    return launched.jobs, outputs


def test_the_subprocess_cannot_import_the_project(standalone):
    _, outputs = standalone
    assert "blocked on purpose" in outputs["blocked"]
    assert outputs["project_modules"] == []


@pytest.mark.parametrize(
    "name",
    [
        "mult_vae_int",
        "mult_vae_str",
        "mult_dae_int",
        "mult_dae_str",
        "ease_int",
        "ease_str",
        "rec_vae_int",
        "cdae_str",
        "autoencoder_int",
        "denoising_autoencoder_str",
        "auto_rec_item_int",
        "auto_rec_item_str",
        "auto_rec_user_str",
        "deep_rec_int",
        "deep_rec_item_str",
        "explicit_fixture",
        "user_fixture",
    ],
)
def test_every_signature_matches_the_keras_model(standalone, exports, name):
    jobs, outputs = standalone
    exported = exports[name]
    results = outputs["results"][name]
    assert set(results["signatures"]) == expected_signatures(exported.model)
    for signature, inputs in jobs[name]["requests"].items():
        reference = "recommend" if signature == "serving_default" else signature
        expected = reference_outputs(exported.model, exported.k, reference, inputs)
        assert_outputs_match(results[signature], expected, f"{name} {signature}")
        session = results["session"][signature]
        assert_outputs_match(session, expected, f"{name} {signature} in a TF1 session")


def test_empty_and_unknown_histories_get_k_valid_items(standalone, exports):
    _, outputs = standalone
    for name, exported in exports.items():
        top = outputs["results"][name]["serving_default"]
        vocabulary = {v.decode() if isinstance(v, bytes) else v for v in top["item_ids"].ravel()}
        known = set(np.asarray(exported.model.item_ids).tolist())
        assert vocabulary <= known, name
        # Rows 2 and 3 of the example requests: empty, and only unknown ids.
        assert np.isfinite(top["scores"][2:]).all(), name
        assert (top["scores"][2:] > np.finfo(np.float32).min).all(), name
        np.testing.assert_array_equal(top["item_ids"][2], top["item_ids"][3])


@pytest.mark.parametrize("name", CLI_MODELS)
def test_saved_model_cli_show_all(launched, exports, name):
    code, stdout, stderr = launched.finished((name, "show"))
    assert code == 0, stderr[-2000:]
    dtype = "DT_INT64" if name.endswith("_int") else "DT_STRING"
    for signature in expected_signatures(exports[name].model):
        assert f"signature_def['{signature}']" in stdout
    serving_default = stdout.split("signature_def['serving_default']")[1].split("signature_def")[0]
    assert "inputs['item_ids'] tensor_info:" in serving_default
    assert f"dtype: {dtype}" in serving_default
    assert "shape: (-1, -1)" in serving_default
    assert "outputs['scores'] tensor_info:" in serving_default
    assert f"shape: (-1, {exports[name].k})" in serving_default
    assert "Method name is: tensorflow/serving/predict" in serving_default


@pytest.mark.parametrize("name", CLI_MODELS)
def test_saved_model_cli_run_serving_default(launched, exports, name):
    code, stdout, stderr = launched.finished((name, "run"))
    assert code == 0, stderr[-2000:]
    assert "Restoring parameters from" in stderr + stdout
    outdir = launched.work / name
    exported = exports[name]
    inputs = example_requests(exported.model, ["serving_default"])["serving_default"]
    expected = reference_outputs(exported.model, exported.k, "recommend", inputs)
    actual = {key: np.load(outdir / f"{key}.npy", allow_pickle=True) for key in expected}
    assert_outputs_match(actual, expected, f"saved_model_cli run {name}")
