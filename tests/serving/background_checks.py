"""The checks that run in other processes: the import-blocked runner, `saved_model_cli`.

They start as soon as the exports exist (see `conftest.exports`), so that they run
while the in-process tests do, and `test_standalone.py` collects their results.
"""

from __future__ import annotations

import os
import pickle
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from fixture_models import example_requests

HERE = Path(__file__).parent
CLI_MODELS = ["mult_vae_int", "mult_dae_str", "ease_int"]


@dataclass
class Launched:
    work: Path
    jobs: dict
    processes: dict

    def finished(self, key) -> tuple:
        """Waits for a process: its return code, stdout and stderr."""
        process = self.processes[key]
        process.wait(timeout=300)
        name = _file_name(key)
        stdout = (self.work / f"{name}.stdout").read_text()
        stderr = (self.work / f"{name}.stderr").read_text()
        return process.returncode, stdout, stderr

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.kill()
                process.wait()


def expected_signatures(model) -> set:
    names = {"serving_default", "recommend", "score"}
    if model.has_encoder:
        names.add("encode")
    if model.user_conditioned:
        names.add("recommend_for_user")
    return names


def clean_environment() -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONSTARTUP")}
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    return env


def saved_model_cli() -> str:
    beside = Path(sys.executable).with_name("saved_model_cli")
    found = str(beside) if beside.exists() else shutil.which("saved_model_cli")
    assert found, "saved_model_cli (installed with tensorflow) is not on PATH"
    return found


def saved_model_cli_commands(exported, outdir: Path) -> dict:
    """`saved_model_cli show --all` and `run` of serving_default on the example histories."""
    histories = example_requests(exported.model, ["serving_default"])["serving_default"]
    directory = ["--dir", str(exported.path)]
    return {
        (exported.name, "show"): [saved_model_cli(), "show", "--all"] + directory,
        (exported.name, "run"): [saved_model_cli(), "run"]
        + directory
        + ["--tag_set", "serve", "--signature_def", "serving_default"]
        + ["--input_exprs", "item_ids=" + repr(histories["item_ids"].tolist())]
        + ["--outdir", str(outdir)],
    }


def _file_name(key) -> str:
    return key if isinstance(key, str) else "-".join(key)


def launch(exports: dict, work: Path) -> Launched:
    """Starts the runner (every export, every signature) and the `saved_model_cli` runs."""
    jobs = {
        name: {
            "path": str(exported.path),
            "requests": example_requests(exported.model, expected_signatures(exported.model)),
        }
        for name, exported in exports.items()
    }
    with open(work / "requests.pkl", "wb") as file:
        pickle.dump(jobs, file)
    runner = [sys.executable, str(HERE / "standalone_runner.py"), "requests.pkl", "outputs.pkl"]
    commands = {"runner": runner}
    for name in CLI_MODELS:
        commands.update(saved_model_cli_commands(exports[name], work / name))
    processes = {}
    for key, argv in commands.items():
        name = _file_name(key)
        with open(work / f"{name}.stdout", "w") as out, open(work / f"{name}.stderr", "w") as err:
            processes[key] = subprocess.Popen(
                argv, cwd=work, env=clean_environment(), stdout=out, stderr=err
            )
    return Launched(work, jobs, processes)
