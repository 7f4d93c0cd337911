"""`keras-recae tune`: search spaces, studies, pruning, resuming, workers, `train --params`."""

import contextlib
import csv
import dataclasses
import io
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import keras
import numpy as np
import optuna
import pytest

from keras_recae import cli, models, tuning
from keras_recae.data.spec import DataSpec
from keras_recae.errors import ConfigError
from keras_recae.models import CDAE, MultDAE, MultVAE
from keras_recae.search_space import choice, float_range, int_range, parse_dimension, parse_space
from keras_recae.training import RunConfig

TINY = {"hidden_dims": [16]}
SPACE = {"dropout": float_range(0.0, 0.8), "lr": choice(1e-3, 3e-3, 1e-2)}


def run_cli(*args) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main([str(arg) for arg in args])
    return code, out.getvalue(), err.getvalue()


def read_trials(study_dir: Path) -> list[dict]:
    with open(study_dir / tuning.TRIALS_FILE, newline="") as file:
        return list(csv.DictReader(file))


def epochs_without_seconds(run_dir: Path) -> list[dict]:
    with open(run_dir / "history.csv", newline="") as file:
        return [{k: v for k, v in row.items() if k != "seconds"} for row in csv.DictReader(file)]


def tiny_study(study_dir, data=None, trials=3, epochs=2, **changes) -> tuning.TuneConfig:
    run = RunConfig(
        "mult-dae", data or DataSpec("synthetic"), settings=dict(TINY), epochs=epochs,
        batch_size=200, verbose=0,
    )  # fmt: skip
    options = {"space": dict(SPACE), "trials": trials, "figures": False, "verbose": 0}
    return tuning.TuneConfig(run, str(study_dir), **{**options, **changes})


def quiet_tune(config):
    with contextlib.redirect_stdout(io.StringIO()):
        return tuning.tune(config)


@pytest.fixture
def given_dir(tmp_path):
    """A LightGCN directory: train.txt, and test.txt with other items than a second test."""
    rng = np.random.default_rng(0)
    folder = tmp_path / "given"
    folder.mkdir()
    train, test, other = [], [], []
    for user in range(150):
        items = rng.choice(60, size=12, replace=False)
        train.append(" ".join(map(str, [user, *items[:9]])))
        test.append(" ".join(map(str, [user, *items[9:]])))
        other.append(" ".join(map(str, [user, *rng.choice(60, size=2, replace=False)])))
    (folder / "train.txt").write_text("\n".join(train) + "\n")
    (folder / "test.txt").write_text("\n".join(test) + "\n")
    (tmp_path / "other_test.txt").write_text("\n".join(other) + "\n")
    return folder


# ---------------------------------------------------------------------------------------
# Spaces


@pytest.mark.parametrize(
    "text, expected",
    [
        ("lr=1e-4:1e-2:log", ("lr", float_range(1e-4, 1e-2, log=True))),
        ("hidden_dim=50:400", ("hidden_dim", int_range(50, 400))),
        ("beta_cap=0:1", ("beta_cap", float_range(0.0, 1.0))),
        ("loss=logistic,squared", ("loss", choice("logistic", "squared"))),
        ("hidden_dim=50,100", ("hidden_dim", choice(50, 100))),
        ("hidden_dims=[[600,200],[200]]", ("hidden_dims", choice([600, 200], [200]))),
    ],
)
def test_parse_dimension(text, expected):
    kinds = tuning.setting_kinds(MultVAE) | tuning.setting_kinds(CDAE)
    assert parse_dimension(text, kinds) == expected
    name, dimension = expected
    assert parse_dimension(f"{name}={dimension.describe()}", kinds) == expected


@pytest.mark.parametrize(
    "text, message",
    [
        ("dropout", "--space 'dropout': expected name=low:high, name=low:high:log or name=a,b,c"),
        ("dropout=0:1:lin", "expected name=low:high, name=low:high:log"),
        ("dropout=a:b", "--space 'dropout=a:b': the ends should be numbers"),
        ("dropout=0.9:0.1", "the range 0.9:0.1 is empty (low > high)"),
        ("lr=0:1:log", "a log range needs positive ends"),
        ("hidden_dim=0.5:4", "hidden_dim takes integers"),
        ("hidden_dims=[[600,", "--space 'hidden_dims=[[600,': not a JSON list"),
    ],
)
def test_parse_dimension_errors_say_what_is_expected(text, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        parse_dimension(text, tuning.setting_kinds(CDAE))


def test_every_model_of_the_zoo_declares_a_space_of_its_own_settings():
    from keras_recae.models import registry

    for cls in registry.MODELS:
        space = tuning.search_space(cls)
        assert space, cls.__name__
        accepted = set(registry.constructor_arguments(cls)) | {"lr", "lr_decay", "batch_size"}
        assert set(space) <= accepted, cls.__name__


def test_space_names_are_checked_against_the_model():
    with pytest.raises(ConfigError, match="--space dropuot: MultDAE has no setting 'dropuot'"):
        tuning.search_space(MultDAE, parse_space(["dropuot=0:1"]))
    code, _, stderr = run_cli("tune", "mult-dae", "--data", "synthetic", "--space", "dropout")
    assert code == 2 and "keras-recae tune: error: --space 'dropout': expected" in stderr


# ---------------------------------------------------------------------------------------
# Studies


def test_a_study_writes_its_best_its_trials_and_grows_to_a_larger_total(tmp_path):
    study_dir = tmp_path / "study"
    result = quiet_tune(tiny_study(study_dir, trials=3, figures=True))
    rows = read_trials(study_dir)
    assert len(rows) == 3 and {row["state"] for row in rows} <= {"complete", "pruned"}
    complete = [row for row in rows if row["state"] == "complete"]
    best = json.loads((study_dir / tuning.BEST_FILE).read_text())
    assert best == result.best
    assert best["value"] == pytest.approx(max(float(row["value"]) for row in complete))
    winner = next(row for row in rows if int(row["number"]) == best["trial"])
    assert best["settings"]["dropout"] == pytest.approx(float(winner["dropout"]))
    assert best["run"]["lr"] == pytest.approx(float(winner["lr"]))
    assert best["settings"]["hidden_dims"] == TINY["hidden_dims"]
    # The winner's value is its run's best validation figure; no trial keeps weights.
    summary = json.loads((study_dir / "trials" / f"{best['trial']:05d}/metrics.json").read_text())
    assert summary["validation"]["ndcg@100"] == pytest.approx(best["value"])
    assert summary["best_epoch"] == best["best_epoch"] and summary["test"] == {}
    assert not list(study_dir.glob("trials/*/model.keras"))
    assert not list(study_dir.glob("trials/*/backup"))
    assert {"history.png", "curves.png"} <= {path.name for path in study_dir.glob("*.png")}
    # The same study with a larger total adds trials to it.
    quiet_tune(tiny_study(study_dir, trials=4))
    assert [int(row["number"]) for row in read_trials(study_dir)] == [0, 1, 2, 3]


def test_the_same_seed_gives_the_same_trials(tmp_path):
    first = quiet_tune(tiny_study(tmp_path / "a", pruner="none"))
    second = quiet_tune(tiny_study(tmp_path / "b", pruner="none"))
    for a, b in zip(first.study.trials, second.study.trials, strict=True):
        assert a.params == b.params
        assert a.value == pytest.approx(b.value, rel=1e-6)


def test_pruned_trials_stop_at_the_evaluation_the_pruner_refuses(tmp_path):
    # No NDCG of these tiny runs reaches 0.99: every trial stops at its first evaluation.
    pruner = optuna.pruners.ThresholdPruner(lower=0.99, n_warmup_steps=0)
    result = quiet_tune(tiny_study(tmp_path / "study", trials=2, epochs=4, pruner=pruner))
    assert [t.state.name for t in result.study.trials] == ["PRUNED", "PRUNED"]
    for trial in result.study.trials:
        assert list(trial.intermediate_values) == [1]
        history = tmp_path / "study" / "trials" / f"{trial.number:05d}" / "history.csv"
        assert len(history.read_text().splitlines()) == 2  # the header and epoch 1
    assert result.best == {}


def test_the_test_lines_are_never_read(tmp_path, given_dir):
    def values(test):
        study_dir = tmp_path / f"study-{Path(test).name}"
        result = quiet_tune(tiny_study(study_dir, DataSpec(str(given_dir / "train.txt"), test)))
        return [(t.params, t.value) for t in result.study.trials]

    # Another test file, or none at all where the test file should be: the same trials.
    reference = values(str(given_dir / "test.txt"))
    assert values(str(tmp_path / "other_test.txt")) == reference
    assert values(str(tmp_path / "missing.txt")) == reference


def test_two_workers_share_a_study_without_losing_or_repeating_a_trial(tmp_path):
    study_dir = tmp_path / "study"
    result = quiet_tune(tiny_study(study_dir, trials=4, workers=2, pruner="none"))
    trials = result.study.trials
    assert [t.state.name for t in trials] == ["COMPLETE"] * 4
    workers = {t.user_attrs["worker"]["pid"] for t in trials}
    assert len(workers) == 2 and os.getpid() not in workers
    runs = [t.user_attrs["run_number"] for t in trials]
    assert sorted(runs) == [0, 1, 2, 3]
    assert sorted(path.name for path in (study_dir / "trials").iterdir()) == [
        f"{number:05d}" for number in range(4)
    ]


def test_a_killed_study_resumes_to_the_trials_of_an_uninterrupted_one(tmp_path):
    args = [
        "tune", "mult-dae", "--data", "synthetic", "--set", "hidden_dims=[16]",
        "--batch-size", "200", "--epochs", "6", "--trials", "3", "--pruner", "none",
        "--space", "dropout=0:0.8", "--space", "lr=0.001,0.003,0.01", "--no-figures",
    ]  # fmt: skip
    killed = tmp_path / "killed"
    process = subprocess.Popen(
        [sys.executable, "-m", "keras_recae.cli", *args, "--study", str(killed)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    # Killed in its second trial, after an epoch of it was backed up and logged.
    history = killed / "trials" / "00001" / "history.csv"
    deadline = time.monotonic() + 240
    while not (history.is_file() and len(history.read_text().splitlines()) >= 3):
        assert process.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    history_before_kill = [line for line in history.read_text().splitlines() if line]
    code, _, stderr = run_cli(*args, "--study", killed)
    assert code == 0, stderr
    code, _, stderr = run_cli(*args, "--study", tmp_path / "whole")
    assert code == 0, stderr

    def finished(study_dir):
        config = tuning.TuneConfig(RunConfig("mult-dae"), str(study_dir))
        trials = tuning.load_study(config).trials
        return [t for t in trials if t.state.name == "COMPLETE"], [t.state.name for t in trials]

    resumed, states = finished(killed)
    whole, _ = finished(tmp_path / "whole")
    # The killed trial failed and ran again in its own directory, from its backup.
    assert states == ["COMPLETE", "FAIL", "COMPLETE", "COMPLETE"]
    assert [t.user_attrs["run_number"] for t in resumed] == [0, 1, 3]
    assert [t.params for t in resumed] == [t.params for t in whole]
    for index in (0, 2):
        assert resumed[index].value == pytest.approx(whole[index].value, rel=1e-6)
    # The resumed run kept the epochs logged before the kill and went on to the last one.
    again = epochs_without_seconds(killed / "trials" / "00001")
    once = epochs_without_seconds(tmp_path / "whole" / "trials" / "00001")
    logged = len(history_before_kill) - 1
    assert len(again) == len(once) == 6 and again[:logged] == once[:logged]
    # Its later epochs shuffle with a seed of their own (the runner's resume, #21): close to
    # the uninterrupted trial's figure, not equal to it.
    assert resumed[1].value == pytest.approx(whole[1].value, rel=0.05)


# ---------------------------------------------------------------------------------------
# train --params


def test_best_json_round_trips_into_train_params(tmp_path, given_dir):
    study_dir = tmp_path / "study"
    result = quiet_tune(tiny_study(study_dir, DataSpec(str(given_dir)), trials=2, pruner="none"))
    best = result.best
    out = tmp_path / "winner"
    code, _, stderr = run_cli(
        "train", "mult-dae", "--data", given_dir, "--params", study_dir / "best.json",
        "--retrain", "--batch-size", 200, "--out", out,
    )  # fmt: skip
    assert code == 0, stderr
    summary = json.loads((out / "metrics.json").read_text())
    assert summary["config"]["dropout"] == pytest.approx(best["settings"]["dropout"])
    assert summary["config"]["hidden_dims"] == best["settings"]["hidden_dims"]
    # No second selection: the study's epoch count, on the full train lines.
    assert summary["epochs_run"] == 0 and summary["best_epoch"] == best["best_epoch"]
    assert summary["reported_model"].startswith("retrained")
    model = keras.saving.load_model(out / "model.keras")
    assert float(model.optimizer.learning_rate) == pytest.approx(best["run"]["lr"])
    # 150 users in batches of 200: one step an epoch.
    assert int(model.optimizer.iterations) == best["best_epoch"]
    # A flag given on the command line wins over the study's value.
    code, _, stderr = run_cli(
        "train", "mult-dae", "--data", given_dir, "--params", study_dir, "--set",
        "dropout=0.05", "--epochs", 1, "--out", tmp_path / "mine",
    )  # fmt: skip
    assert code == 0, stderr
    assert json.loads((tmp_path / "mine" / "metrics.json").read_text())["config"]["dropout"] == 0.05
    code, _, stderr = run_cli(
        "train", "cdae", "--data", given_dir, "--params", study_dir, "--out", tmp_path / "x"
    )
    assert code == 2 and "a study of mult-dae, not cdae" in stderr


def test_best_json_names_the_batch_size_the_model_chose_for_its_data(tmp_path):
    # Mult-DAE sizes its batches to the data when the run does not: the winner's size is
    # recorded, so that `train --params` repeats the trial whatever the rule becomes.
    run = RunConfig("mult-dae", DataSpec("synthetic"), settings=dict(TINY), epochs=1, verbose=0)
    config = tuning.TuneConfig(run, str(tmp_path), space=dict(SPACE), trials=1, figures=False)
    best = quiet_tune(config).best
    trial = json.loads((tmp_path / "trials" / "00000" / "metrics.json").read_text())
    users = trial["n_users"]
    assert best["run"]["batch_size"] == trial["run"]["batch_size"]
    assert best["run"]["batch_size"] == -(-users // models.MultDAE.min_updates_per_epoch)


def test_a_study_in_a_database_storage(tmp_path):
    # The RDB storage machines share (PostgreSQL, MySQL); SQLite stands in for them here.
    url = f"sqlite:///{tmp_path / 'studies.db'}"
    config = tiny_study(tmp_path / "study", trials=2, storage=url, study_name="shared")
    result = quiet_tune(config)
    assert not (tmp_path / "study" / tuning.STUDY_FILE).exists()
    stored = optuna.load_study(study_name="shared", storage=url)
    assert [t.state.name for t in stored.trials] == [t.state.name for t in result.study.trials]
    assert len(stored.trials) == 2 and result.best["study"] == "shared"
    with pytest.raises(ConfigError, match="--storage nosuch://x"):
        tuning.load_study(tiny_study(tmp_path / "other", storage="nosuch://x"))


def test_an_interrupted_trial_is_queued_again_with_its_settings(tmp_path, monkeypatch):
    values = []

    def interrupted_once(run, callbacks=(), read_test=True):
        values.append(run.settings["dropout"])
        if len(values) == 2:
            raise KeyboardInterrupt
        summary = {"validation": {"ndcg@100": values[-1]}, "best_epoch": 1, "epochs_run": 1}
        return SimpleNamespace(summary={**summary, "train_seconds": 0.0})

    monkeypatch.setattr(tuning, "train", interrupted_once)
    config = tiny_study(tmp_path / "study", trials=3, pruner="none")
    with pytest.raises(KeyboardInterrupt):
        quiet_tune(config)
    trials = quiet_tune(config).study.trials
    assert [t.state.name for t in trials] == ["COMPLETE", "FAIL", "COMPLETE", "COMPLETE"]
    assert trials[2].params == trials[1].params and trials[2].user_attrs["run_number"] == 1
    assert values[2] == values[1] and trials[2].value == values[1]


def test_the_epoch_count_of_a_study_applies_to_its_own_data_only(tmp_path):
    best = {
        "model": "mult-dae",
        "settings": {"dropout": 0.3},
        "run": {"lr": 0.005, "lr_decay": None, "batch_size": 200},
        "best_epoch": 7,
        "data": dataclasses.asdict(DataSpec("train.txt", "test.txt", seed=0)),
    }
    path = tmp_path / "best.json"
    path.write_text(json.dumps(best))
    same = RunConfig("mult-dae", DataSpec("train.txt", "test.txt"), retrain=True)
    winner = tuning.with_best(same, path)
    assert (winner.epochs, winner.select, winner.lr, winner.batch_size) == (7, False, 0.005, 200)
    assert winner.settings == {"dropout": 0.3}
    other = RunConfig("mult-dae", DataSpec("other.txt", "test.txt"), retrain=True, lr=0.1)
    winner = tuning.with_best(other, path, given={"lr"})
    assert (winner.epochs, winner.select, winner.lr) == (200, True, 0.1)


@pytest.mark.parametrize(
    "change, message",
    [
        ({"foo": 1}, "unknown key 'foo'; a study's best.json holds"),
        ({"run": {"lr": "fast"}}, "run.lr should be a number (float) or null. Received: 'fast'"),
        ({"run": {"lrr": 0.1}}, "run.lrr is not a run parameter"),
        ({"run": {"batch_size": 2.5}}, "run.batch_size should be a number (int)"),
        ({"settings": [1]}, "'settings' should be an object"),
    ],
)
def test_a_best_json_with_unexpected_keys_or_types_is_refused(tmp_path, change, message):
    best = {"model": "mult-dae", "settings": {"dropout": 0.3}, "run": {"lr": 0.005}, **change}
    path = tmp_path / "best.json"
    path.write_text(json.dumps(best))
    with pytest.raises(ConfigError, match=re.escape(f"{path}: {message}")):
        tuning.with_best(RunConfig("mult-dae", DataSpec("synthetic")), path)


def test_closed_form_trials_fit_in_processes_of_their_own(tmp_path, monkeypatch):
    # TensorFlow's CPU allocator keeps freed memory for its process: EASE's
    # n_items x n_items weights fitted in the study's process would stay taken there.
    def not_here(*args, **kwargs):
        raise AssertionError("a closed-form trial trained in the study's process")

    monkeypatch.setattr(tuning, "train", not_here)
    code, _, stderr = run_cli(
        "tune", "ease", "--data", "synthetic", "--trials", "2", "--no-figures",
        "--study", tmp_path / "study",
    )  # fmt: skip
    assert code == 0, stderr
    rows = list(csv.DictReader(open(tmp_path / "study" / "trials.csv", encoding="utf-8")))
    assert [row["state"] for row in rows] == ["complete", "complete"]
    for number in range(2):
        summary = json.loads(
            (tmp_path / "study" / "trials" / f"{number:05d}" / "metrics.json").read_text()
        )
        assert summary["model"] == "ease" and summary["validation"]


def test_each_trial_logs_to_tensorboard_in_a_directory_of_its_own(tmp_path):
    code, _, stderr = run_cli(
        "tune", "mult-dae", "--data", "synthetic", "--trials", "2", "--epochs", "2",
        "--set", "hidden_dims=[8]", "--no-figures", "--pruner", "none",
        "--study", tmp_path / "study", "--tensorboard", tmp_path / "logs",
    )  # fmt: skip
    assert code == 0, stderr
    for trial in ("00000", "00001"):
        for part in ("train", "validation"):
            events = list((tmp_path / "logs" / trial / part).glob("events.out.tfevents.*"))
            assert events and events[0].stat().st_size > 0
    # The trials' per-user files are left out (a study compares averages).
    assert not list((tmp_path / "study").rglob("*_users.csv.gz"))


def test_a_closed_form_trial_process_dies_with_its_study(tmp_path):
    """Killing the study's process (SIGKILL: no clean-up of its own) kills its trial's."""
    import psutil

    study = subprocess.Popen(
        # A catalogue large enough that a trial's fit takes tens of seconds.
        [sys.executable, "-m", "keras_recae.cli", "tune", "ease", "--data", "synthetic",
         "--synthetic-users", "3000", "--synthetic-items", "12000", "--synthetic-interactions",
         "60000", "--threads", "1", "--trials", "3", "--no-figures",
         "--study", str(tmp_path / "study")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])},
    )  # fmt: skip
    parent = psutil.Process(study.pid)
    deadline = time.monotonic() + 120

    def is_trial(process) -> bool:
        # A short-lived child (multiprocessing's helpers) may be gone, or a zombie, by now.
        try:
            return "spawn_main" in " ".join(process.cmdline())
        except psutil.Error:
            return False

    children = []
    while not children and time.monotonic() < deadline:
        children = [c for c in parent.children() if is_trial(c)]
        time.sleep(0.05)
    assert children, "no trial process started"
    # Once the trial trains (it writes its run.json first): past its start-up.
    while not (tmp_path / "study" / "trials" / "00000" / "run.json").exists():
        assert time.monotonic() < deadline and children[0].is_running()
        time.sleep(0.05)
    study.send_signal(signal.SIGKILL)
    study.wait(timeout=30)
    _, alive = psutil.wait_procs(children, timeout=5)
    assert not alive, f"trial processes outlived their study: {alive}"


def test_each_fit_scores_a_grid_of_variants_as_runs_with_their_settings_would(tmp_path):
    study = tmp_path / "study"
    code, _, stderr = run_cli(
        "tune", "rdlae", "--data", "synthetic", "--trials", "5", "--variants", "2",
        "--monitor", "ndcg@20", "--space", "alpha=0:0.4", "--space", "xi=0:0.3",
        "--no-figures", "--study", study,
    )  # fmt: skip
    assert code == 0, stderr
    rows = read_trials(study)
    # One fit: its own sampled settings and the 2 x 2 grid of alpha and xi.
    assert [row["state"] for row in rows] == ["complete"] * 5
    assert {row["run"] for row in rows} == {"0"}
    assert {(float(r["alpha"]), float(r["xi"])) for r in rows[1:]} == {
        (0.0, 0.0), (0.0, 0.3), (0.4, 0.0), (0.4, 0.3)
    }  # fmt: skip
    shared = {name: rows[0][name] for name in ("l2", "dropout", "beta")}
    assert all({name: row[name] for name in shared} == shared for row in rows)
    # A variant's value is the validation figure of a run fitted with its settings.
    variant = rows[4]
    out = tmp_path / "run"
    code, _, stderr = run_cli(
        "train", "rdlae", "--config", study / "trials" / "00000" / "run.json",
        "--set", f"alpha={variant['alpha']}", "--set", f"xi={variant['xi']}", "--out", out,
    )  # fmt: skip
    assert code == 0, stderr
    summary = json.loads((out / "metrics.json").read_text())
    assert summary["config"]["xi"] == float(variant["xi"])
    assert summary["validation"]["ndcg@20"] == pytest.approx(float(variant["value"]), abs=1e-6)
    # The fit's own figure too, and the best of them in best.json.
    best = json.loads((study / "best.json").read_text())
    assert best["value"] == max(float(row["value"]) for row in rows)


def test_variants_of_a_fit_are_recorded_once():
    study = optuna.create_study(direction="maximize")
    distributions = {
        "l2": optuna.distributions.FloatDistribution(1.0, 100.0, log=True),
        "alpha": optuna.distributions.FloatDistribution(0.0, 0.5),
    }
    trial = study.ask(distributions)
    summary = {
        "variants": [
            {"settings": {}, "validation": {"ndcg@20": 0.3}},
            {"settings": {"alpha": 0.0}, "validation": {"ndcg@20": 0.2}},
            {"settings": {"alpha": 0.5}, "validation": {"ndcg@20": 0.4}},
        ]
    }
    for _ in range(2):  # a rerun of the trial after its process died
        tuning._record_variants(trial, summary, "ndcg@20", 7)
    added = [t for t in study.trials if t.number != trial.number]
    assert sorted((t.params["alpha"], t.value) for t in added) == [(0.0, 0.2), (0.5, 0.4)]
    assert all(t.params["l2"] == trial.params["l2"] for t in added)
    assert all(t.user_attrs[tuning.RUN_NUMBER] == 7 for t in added)


@pytest.mark.parametrize(
    "args, message",
    [
        (["mult-dae", "--variants", "3"], "mult-dae's are none. Received: 3"),
        (["ease", "--variants", "3"], "ease's are alpha. Received: 3"),
        (["rdlae", "--variants", "1"], "rdlae's are alpha, xi. Received: 1"),
    ],
)
def test_variants_need_a_closed_form_model_and_a_searched_variant_setting(tmp_path, args, message):
    code, _, stderr = run_cli(
        "tune", *args, "--data", "synthetic", "--no-figures", "--study", tmp_path / "s"
    )
    assert code != 0
    assert "--variants should be 2 or more" in stderr and message in stderr
    assert not (tmp_path / "s" / "trials").exists()


def test_variants_ask_for_the_memory_of_one_item_item_matrix(tmp_path, monkeypatch):
    from keras_recae.models import linear_autoencoder
    from keras_recae.training import fit_variants

    monkeypatch.setattr(linear_autoencoder, "available_memory_bytes", lambda: 2**10)
    run = RunConfig(
        "edlae", DataSpec("synthetic", validation_fraction=0.1), out=str(tmp_path / "run")
    )
    with pytest.raises(MemoryError, match=r"\(one float32 500 x 500 matrix\) but only"):
        fit_variants(run, [{}, {"alpha": 0.2}])
    assert not (tmp_path / "run" / "metrics.json").exists()


def test_variants_of_a_queued_trial_outside_its_dimensions_are_recorded():
    # Optuna runs a queued trial's fixed value outside its dimension (with a warning); the
    # variant trials carry that value too.
    study = optuna.create_study(direction="maximize")
    study.enqueue_trial({"l2": 500.0, "alpha": 0.1})
    distributions = {
        "l2": optuna.distributions.FloatDistribution(1.0, 100.0, log=True),
        "alpha": optuna.distributions.FloatDistribution(0.0, 0.5),
    }
    with pytest.warns(UserWarning, match="out of range"):
        trial = study.ask(distributions)
    summary = {"variants": [{"settings": {"alpha": 0.5}, "validation": {"ndcg@20": 0.4}}]}
    tuning._record_variants(trial, summary, "ndcg@20", 0)
    (added,) = [t for t in study.trials if t.number != trial.number]
    assert added.params == {"l2": 500.0, "alpha": 0.5} and added.value == 0.4


def test_settings_queued_with_the_benchmark_script_run_first_and_once(tmp_path):
    study_dir = tmp_path / "study"
    script = Path(__file__).resolve().parents[1] / "benchmarks" / "enqueue_trial.py"
    queued = subprocess.run(
        [sys.executable, str(script), str(study_dir), "dropout=0.125", "lr=0.003"]
        + ["--create", "mult-dae"],
        capture_output=True,
        text=True,
    )
    assert queued.returncode == 0, queued.stderr
    # A total of one: the queued trial, then nothing drawn.
    quiet_tune(tiny_study(study_dir, trials=1))
    rows = read_trials(study_dir)
    assert len(rows) == 1
    assert float(rows[0]["dropout"]) == 0.125 and float(rows[0]["lr"]) == 0.003
    run = json.loads((study_dir / "trials" / "00000" / "run.json").read_text())
    assert run["settings"]["dropout"] == 0.125 and run["run"]["lr"] == 0.003
