"""`keras-recae train --distribute multi-worker`: two workers on localhost ports.

Each worker is a process of the command line with its own `TF_CONFIG`; both train, only
the chief (worker 0) writes the run. The model is compared with one trained on one
device for the same epoch.
"""

import json

import keras
import numpy as np
import pytest

from keras_recae import cli

# 800 training users in batches of 60: the last batch has 40 padding rows, so the second
# worker's part of it is padding only.
ARGS = [
    "train",
    "mult-vae",
    "--data",
    "synthetic",
    "--epochs",
    "1",
    "--batch-size",
    "60",
    "--set",
    "hidden_dims=[16,4]",
    "--seed",
    "0",
]


@pytest.fixture(scope="module")
def runs(tmp_path_factory, run_workers):
    root = tmp_path_factory.mktemp("multi_worker")
    scratch = root / "tmp"
    scratch.mkdir()
    args = [*ARGS, "--distribute", "multi-worker", "--out", str(root / "run")]
    outputs = run_workers(args, root, scratch)
    # In this process TensorFlow may have started: no --threads.
    assert cli.main([*ARGS, "--out", str(root / "one")]) == 0
    return root, outputs


def test_the_chief_writes_one_run_and_the_other_worker_nothing(runs):
    root, outputs = runs
    run = root / "run"
    assert sorted(p.name for p in run.iterdir()) == [
        "history.csv",
        "metrics.json",
        "model.keras",
        "run.json",
        "test_users.csv.gz",
        "validation_users.csv.gz",
    ]
    assert json.loads((run / "metrics.json").read_text())["distribute"] == "multi-worker"
    assert list((root / "tmp").iterdir()) == []
    assert sorted(p.relative_to(root).as_posix() for p in root.rglob("*.keras")) == [
        "one/model.keras",
        "run/model.keras",
    ]
    assert "distribute: multi-worker, 2 replicas, 30 users per replica" in outputs[0]


def test_the_model_is_the_one_trained_on_one_device(runs):
    root, _ = runs
    distributed = keras.saving.load_model(root / "run" / "model.keras")
    single = keras.saving.load_model(root / "one" / "model.keras")
    assert int(keras.ops.convert_to_numpy(distributed.optimizer.iterations)) == 14
    pairs = list(zip(distributed.get_weights(), single.get_weights()))
    assert len(pairs) == len(single.get_weights()) > 0
    for a, b in pairs:
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-5)
