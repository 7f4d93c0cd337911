"""Two epochs under MirroredStrategy over two logical CPUs equal them on one device.

The CPU can only be split before TensorFlow starts, so the training runs in a subprocess
(`mirrored_runner.py`), one for all models, and these tests read what it wrote.
"""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

RUNNER = Path(__file__).with_name("mirrored_runner.py")
MODELS = [
    "mult_vae",
    "mult_vae_sparse",
    "rec_vae",
    "rec_vae_sparse",
    "cdae",
    "auto_rec",
    "mult_dae",
    "autoencoder",
    "denoising_autoencoder",
    "deep_rec",
    "mult_vae_keras_adam",
    "embedding_autoencoder",
    "denoising_embedding_autoencoder",
    "embedding_vae",
]
TIMEOUT_SECONDS = 900
# float32 sums in another order; training moves the weights by 1e-2 or more.
TOLERANCE = 1e-5


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    out = tmp_path_factory.mktemp("mirrored") / "results.json"
    completed = subprocess.run(
        [sys.executable, str(RUNNER), str(out), *MODELS],
        capture_output=True,
        text=True,
        timeout=TIMEOUT_SECONDS,
    )
    if completed.returncode != 0 or not out.exists():
        pytest.fail(f"the runner failed ({completed.returncode}):\n{completed.stderr[-5000:]}")
    return json.loads(out.read_text())


def test_each_replica_gets_its_rows_of_the_global_batch(results):
    parts = results["parts"]
    assert parts["steps"] == 3
    assert parts["parts_equal"] == [True, True, True]


def test_an_unbuilt_model_builds_itself_with_mirrored_weights(results):
    assert results["unbuilt"] == {"n_items": 30, "steps": 3, "mirrored": 2}


def test_a_batch_size_the_replicas_do_not_divide_is_refused(results):
    assert results["errors"]["odd_batch"] == (
        "The batch size (41) should be a multiple of the number of replicas (2), so that "
        "each replica gets as many users."
    )


def test_ease_refuses_to_fit_under_a_strategy(results):
    assert results["errors"]["ease"].startswith("EASE is solved in closed form on one host")
    assert "outside `strategy.scope()`" in results["errors"]["ease"]


@pytest.mark.parametrize("name", MODELS)
def test_same_weights_as_on_one_device(results, name):
    result = results[name]
    assert "error" not in result, result.get("error")
    assert result["replicas"] == 2
    assert result["steps"] == result["mirrored_steps"] > 0
    assert result["moved"] > 100 * TOLERANCE
    assert result["difference"] <= TOLERANCE


@pytest.mark.parametrize("name", MODELS)
def test_replicas_keep_equal_copies_of_every_weight(results, name):
    assert results[name]["replica_spread"] == 0.0


@pytest.mark.parametrize("name", MODELS)
def test_logged_losses_are_those_of_the_global_batch(results, name):
    one, mirrored = results[name]["one_logs"], results[name]["mirrored_logs"]
    assert sorted(one) == sorted(mirrored)
    for key in one:
        np.testing.assert_allclose(mirrored[key], one[key], rtol=1e-4, atol=1e-6, err_msg=key)


@pytest.mark.parametrize("name", [name for name in MODELS if "keras_adam" not in name])
def test_fused_adam_keeps_its_kernel_under_the_strategy(results, name):
    assert results[name]["fused_adam_fallbacks"] == 0
