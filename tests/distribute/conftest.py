"""Local multi-worker clusters for the tests: worker processes of the command line."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import types

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


def start_workers(args: list, root, scratch, count: int = 2, extra=None) -> list:
    """Starts `keras-recae ARGS` as `count` workers of one cluster on localhost ports.

    Each worker has its own `TF_CONFIG` and one thread; `scratch` is their TMPDIR; worker
    `i` also gets the arguments `extra[i]`, when given. Its output goes to
    `root/worker<i>.log`. Returns the processes (each the leader of its own group).
    """
    cluster = {"worker": [f"localhost:{port}" for port in free_ports(count)]}
    processes = []
    for index in range(count):
        config = {"cluster": cluster, "task": {"type": "worker", "index": index}}
        env = {
            **os.environ,
            "TF_CONFIG": json.dumps(config),
            "TMPDIR": str(scratch),
            "TF_CPP_MIN_LOG_LEVEL": "2",
        }
        command = [sys.executable, "-m", "keras_recae.cli", *args, "--threads", "1"]
        command += list(extra[index]) if extra else []
        with open(root / f"worker{index}.log", "w") as log:
            processes.append(
                subprocess.Popen(
                    command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
                )
            )
    return processes


def kill_workers(processes) -> None:
    """SIGKILLs every process group still running, and reaps them."""
    for process in processes:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def finish_workers(processes, root) -> tuple[list, list[str]]:
    """Waits for the workers (killing all after `TIMEOUT_SECONDS`): their exit codes (None
    after the timeout) and outputs."""
    deadline = time.monotonic() + TIMEOUT_SECONDS
    try:
        codes = [p.wait(timeout=max(1.0, deadline - time.monotonic())) for p in processes]
    except subprocess.TimeoutExpired:
        codes = [None] * len(processes)
    finally:
        # The workers wait for each other: one that failed leaves the other hanging.
        kill_workers(processes)
    outputs = [(root / f"worker{i}.log").read_text() for i in range(len(processes))]
    return codes, outputs


def _run_workers(args: list, root, scratch, count: int = 2) -> list[str]:
    """Runs `keras-recae ARGS` as `count` workers (`start_workers`); fails the test unless
    every worker ends with 0. Returns each worker's output."""
    codes, outputs = finish_workers(start_workers(args, root, scratch, count), root)
    if codes != [0] * count:
        pytest.fail(f"workers ended with {codes}:\n" + "\n\n".join(o[-3000:] for o in outputs))
    return outputs


@pytest.fixture(scope="session")
def run_workers():
    """`run_workers(args, root, scratch, count=2)`: see `_run_workers`."""
    return _run_workers


@pytest.fixture(scope="session")
def workers():
    """Worker processes to start, kill and wait for: `start_workers`, `kill_workers`,
    `finish_workers`."""
    return types.SimpleNamespace(start=start_workers, kill=kill_workers, finish=finish_workers)
