"""Exports under faults: a process killed mid-write, two exports of one base at once."""

from __future__ import annotations

import contextlib
import io
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import tensorflow as tf

from keras_recae.data.spec import DataSpec
from keras_recae.serving.versions import SAVED_MODEL_FILE, version_numbers
from keras_recae.training import RunConfig, train

REPOSITORY = Path(__file__).resolve().parents[2]


def tiny_run(directory: Path) -> Path:
    with contextlib.redirect_stdout(io.StringIO()):
        train(
            RunConfig(
                "mult-dae",
                DataSpec("synthetic"),
                {"hidden_dims": [8]},
                epochs=1,
                out=str(directory),
                verbose=0,
            )
        )
    return directory


def export_process(run_dir: Path, base: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "keras_recae.cli", "export", str(run_dir), "--to", str(base)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPOSITORY)},
    )


def served_versions(base: Path) -> dict:
    """What TF Serving would load: integer-named directories, each a loadable SavedModel."""
    loaded = {}
    for version in version_numbers(base):
        directory = base / str(version)
        assert (directory / SAVED_MODEL_FILE).is_file(), f"{directory} is a partial version"
        loaded[version] = tf.saved_model.load(str(directory)).signatures["serving_default"]
    return loaded


def test_an_export_killed_mid_write_leaves_no_version_and_the_earlier_ones_intact(tmp_path):
    run_dir = tiny_run(tmp_path / "run")
    base = tmp_path / "models" / "recommender"
    first = export_process(run_dir, base)
    assert first.wait(timeout=300) == 0, first.stderr.read()
    before = (base / "1" / SAVED_MODEL_FILE).read_bytes()
    killed = export_process(run_dir, base)
    deadline = time.monotonic() + 300
    # Kill it once it has started writing its (hidden, temporary) directory.
    while not any(path.name.startswith(".tmp-") for path in base.iterdir()):
        assert killed.poll() is None, "the export finished before it could be killed"
        assert time.monotonic() < deadline
        time.sleep(0.05)
    killed.send_signal(signal.SIGKILL)
    killed.wait(timeout=60)
    assert version_numbers(base) == [1]
    assert (base / "1" / SAVED_MODEL_FILE).read_bytes() == before
    assert set(served_versions(base)) == {1}
    assert [path.name for path in base.iterdir() if path.name.startswith(".tmp-")]
    # The next export takes version 2, whole, and clears the killed one's temporary files.
    again = export_process(run_dir, base)
    assert again.wait(timeout=300) == 0, again.stderr.read()
    assert set(served_versions(base)) == {1, 2}
    assert not [path.name for path in base.iterdir() if path.name.startswith(".tmp-")]


def test_two_exports_of_one_base_at_once_give_two_whole_versions(tmp_path):
    run_dir = tiny_run(tmp_path / "run")
    base = tmp_path / "models" / "recommender"
    processes = [export_process(run_dir, base) for _ in range(2)]
    outputs = [process.communicate(timeout=300) for process in processes]
    assert [process.returncode for process in processes] == [0, 0], outputs
    printed = sorted(Path(out.strip().splitlines()[-1]).name for out, _ in outputs)
    assert printed == ["1", "2"]
    assert set(served_versions(base)) == {1, 2}
    assert not [path.name for path in base.iterdir() if path.name.startswith(".tmp-")]


def test_requests_past_the_stated_limits_are_invalid_arguments(tmp_path):
    import re

    import numpy as np
    import pytest

    from keras_recae.runs import load_run_model
    from keras_recae.serving import export
    from keras_recae.serving.signature_module import MAX_IDS, MAX_ROWS

    model = load_run_model(tiny_run(tmp_path / "run"))
    path = export(model, tmp_path / "models" / "recommender", k=5)
    serve = tf.saved_model.load(str(path)).signatures["serving_default"]
    known = int(model.item_ids[0])
    fine = serve(item_ids=tf.constant(np.full((MAX_ROWS, 3), known, np.int64)))
    assert fine["item_ids"].shape == (MAX_ROWS, 5)
    with pytest.raises(tf.errors.InvalidArgumentError, match=f"at most {MAX_ROWS} rows"):
        serve(item_ids=tf.constant(np.full((MAX_ROWS + 1, 1), known, np.int64)))
    with pytest.raises(tf.errors.InvalidArgumentError, match=f"at most {MAX_IDS} ids a row"):
        serve(item_ids=tf.constant(np.full((1, MAX_IDS + 1), -1, np.int64)))
    # The deployment kit states them, and its batches stay under them.
    kit = REPOSITORY / "export"
    readme = (kit / "README.md").read_text()
    assert f"{MAX_ROWS:,}" in readme and f"{MAX_IDS:,}" in readme
    batching = (kit / "batching_parameters.txt").read_text()
    max_batch = int(re.search(r"max_batch_size \{ value: (\d+) \}", batching).group(1))
    assert max_batch <= MAX_ROWS


def test_a_version_swapped_in_under_load_fails_no_request(tmp_path):
    import threading

    import grpc
    import numpy as np
    from standin_server import StandInModelServer
    from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

    from keras_recae.runs import load_run_model
    from keras_recae.serving import export

    model = load_run_model(tiny_run(tmp_path / "run"))
    base = tmp_path / "models" / "rec"
    export(model, base, k=5)
    answers, failures, stop = [], [], threading.Event()

    def client(target):
        with grpc.insecure_channel(target) as channel:
            stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
            while not stop.is_set():
                request = predict_pb2.PredictRequest()
                request.model_spec.name = "rec"
                request.inputs["item_ids"].CopyFrom(
                    tf.make_tensor_proto(np.array([[-1, int(model.item_ids[0])]], np.int64))
                )
                try:
                    answers.append(stub.Predict(request, timeout=30).model_spec.version.value)
                except grpc.RpcError as error:
                    failures.append(error)

    with StandInModelServer(base, "rec", poll_seconds=0.1) as server:
        threads = [threading.Thread(target=client, args=(server.grpc_target,)) for _ in range(2)]
        for thread in threads:
            thread.start()
        export(model, base, k=5)  # version 2, written while requests run
        deadline = time.monotonic() + 60
        while 2 not in answers and time.monotonic() < deadline:
            time.sleep(0.05)
        stop.set()
        for thread in threads:
            thread.join()
    assert not failures
    assert answers[0] == 1 and answers[-1] == 2
