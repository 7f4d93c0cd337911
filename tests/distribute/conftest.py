"""Local multi-worker clusters for the tests: worker processes of the command line."""

import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

TIMEOUT_SECONDS = 600


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("localhost", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _run_workers(args: list, root, scratch, count: int = 2) -> list[str]:
    """Runs `keras-recae ARGS` as `count` workers of one cluster on localhost ports.

    Each worker has its own `TF_CONFIG` and one thread; `scratch` is their TMPDIR. Fails
    the test unless every worker ends with 0. Returns each worker's output.
    """
    cluster = {"worker": [f"localhost:{port}" for port in free_ports(count)]}
    processes, logs = [], []
    try:
        for index in range(count):
            config = {"cluster": cluster, "task": {"type": "worker", "index": index}}
            env = {
                **os.environ,
                "TF_CONFIG": json.dumps(config),
                "TMPDIR": str(scratch),
                "TF_CPP_MIN_LOG_LEVEL": "2",
            }
            log = open(root / f"worker{index}.log", "w")
            logs.append(log)
            command = [sys.executable, "-m", "keras_recae.cli", *args, "--threads", "1"]
            processes.append(
                subprocess.Popen(
                    command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
                )
            )
        deadline = time.monotonic() + TIMEOUT_SECONDS
        codes = [p.wait(timeout=max(1.0, deadline - time.monotonic())) for p in processes]
    except subprocess.TimeoutExpired:
        codes = None
    finally:
        # The workers wait for each other: one that failed leaves the other hanging.
        for process in processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        for log in logs:
            log.close()
    outputs = [(root / f"worker{i}.log").read_text() for i in range(count)]
    if codes != [0] * count:
        pytest.fail(f"workers ended with {codes}:\n" + "\n\n".join(o[-3000:] for o in outputs))
    return outputs


@pytest.fixture(scope="session")
def run_workers():
    """`run_workers(args, root, scratch, count=2)`: see `_run_workers`."""
    return _run_workers
