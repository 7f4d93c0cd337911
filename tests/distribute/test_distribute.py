"""`keras_recae.distribute` on one device, and what `--distribute` refuses.

The training under strategies runs in subprocesses (test_mirrored.py,
test_multi_worker.py); on one device the helpers must leave the computation unchanged.
"""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_recae import cli, distribute


def test_device_names_are_normalised():
    assert distribute.normalize_devices("GPU:0, gpu:1") == ["/gpu:0", "/gpu:1"]
    assert distribute.normalize_devices(["/device:CPU:0", "cpu:1"]) == ["/cpu:0", "/cpu:1"]
    assert distribute.normalize_devices(None) is None


@pytest.mark.parametrize(
    "devices, message",
    [
        ("tpu:0", r"names like 'gpu:0' or 'cpu:1', comma-separated. Received: 'tpu:0'"),
        ("gpu", r"Received: 'gpu'"),
        ("gpu:0,gpu:0", r"should not repeat a device"),
        (",", r"at least one device"),
    ],
)
def test_bad_device_names_are_refused(devices, message):
    with pytest.raises(ValueError, match=message):
        distribute.normalize_devices(devices)


def test_no_strategy_for_none():
    assert distribute.make_strategy("none") is None
    with pytest.raises(ValueError, match=r"`distribute` should be one of"):
        distribute.make_strategy("horovod")
    with pytest.raises(ValueError, match=r"`devices` applies to the mirrored strategy only"):
        distribute.make_strategy("none", "gpu:0")


@pytest.mark.parametrize(
    "text, message",
    [
        (None, r"TF_CONFIG environment variable, which is not set"),
        ("{cluster", r"TF_CONFIG is not JSON"),
        ('{"cluster": {}}', r"TF_CONFIG should hold 'cluster' and 'task'"),
        (
            '{"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": 2}}',
            r"task 'worker' 2 is not in the cluster",
        ),
    ],
)
def test_tf_config_errors_say_what_is_expected(text, message):
    with pytest.raises(ValueError, match=message):
        distribute.check_tf_config(text)


def test_a_valid_tf_config_parses():
    config = {"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": 1}}
    text = json.dumps(config)
    assert distribute.check_tf_config(text)["task"]["index"] == 1


def test_on_one_device_the_replica_terms_are_the_batch_terms():
    values = keras.ops.convert_to_tensor([1.0, 2.0, 3.0, 10.0])
    mask = keras.ops.convert_to_tensor([True, True, True, False])
    assert float(distribute.replica_mean(values, mask)) == pytest.approx(2.0)
    assert float(distribute.replica_mean(values, keras.ops.zeros(4, "bool"))) == 0.0
    assert float(distribute.replica_share(keras.ops.convert_to_tensor(5.0))) == 5.0
    assert distribute.num_replicas() == 1
    pair = (values, mask)
    assert distribute.global_sum(pair) is pair
    doubled = distribute.as_global_batch(lambda v: 2.0 * v, values)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(doubled), [2.0, 4.0, 6.0, 20.0])


def test_switch_runs_one_branch_in_a_function():
    counter = tf.Variable(0)

    @tf.function
    def step(flag):
        distribute.switch(
            flag, lambda n: counter.assign_add(n), lambda n: counter.assign_add(100 * n), 2
        )

    step(tf.constant(True))
    step(tf.constant(False))
    assert int(counter.numpy()) == 202


def test_one_process_is_the_chief_without_a_strategy():
    assert distribute.is_chief(None)
    assert not distribute.is_multi_worker(None)


def cli_error(capsys, *args) -> str:
    capsys.readouterr()
    code = cli.main(["train", *args, "--data", "synthetic", "--epochs", "1"])
    assert code == 2
    return capsys.readouterr().err


def test_ease_refuses_to_be_distributed(capsys, tmp_path):
    error = cli_error(capsys, "ease", "--distribute", "mirrored", "--out", str(tmp_path))
    assert "ease is solved in closed form on one host" in error
    assert "leave out --distribute" in error


def test_devices_need_the_mirrored_strategy(capsys, tmp_path):
    error = cli_error(capsys, "mult-vae", "--devices", "gpu:0,gpu:1", "--out", str(tmp_path))
    assert "--devices needs --distribute mirrored" in error


def test_xla_is_refused_under_a_strategy(capsys, tmp_path):
    args = ("mult-vae", "--distribute", "mirrored", "--jit-compile", "true")
    error = cli_error(capsys, *args, "--out", str(tmp_path))
    assert "--jit-compile true does not work with --distribute" in error


def test_full_batches_are_refused_under_a_strategy(capsys, tmp_path):
    args = ("mult-vae", "--distribute", "mirrored", "--batch-size", "0")
    error = cli_error(capsys, *args, "--out", str(tmp_path))
    assert "--batch-size 0 (full batches) does not work with --distribute" in error


def test_multi_worker_needs_tf_config(capsys, tmp_path, monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    args = ("mult-vae", "--distribute", "multi-worker", "--out", str(tmp_path))
    error = cli_error(capsys, *args)
    assert "--distribute multi-worker: The multi-worker strategy reads the cluster" in error
    assert "TF_CONFIG" in error
