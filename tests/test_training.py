"""The runner in process: `keras_recae.training.train`, its config, data spec and registry."""

import contextlib
import io
import json

import keras
import numpy as np
import pytest

from keras_recae import cli, models
from keras_recae.data import split_given, synthetic_frame
from keras_recae.data.spec import DataSpec, load_split
from keras_recae.errors import ConfigError
from keras_recae.models import registry
from keras_recae.runs import RUN_FILE, load_run, tensorboard_scalars
from keras_recae.training import RunConfig, evaluate_run, train, with_model_defaults

TINY = {"hidden_dims": [16]}


def quiet_train(config, **kwargs):
    with contextlib.redirect_stdout(io.StringIO()):
        return train(config, **kwargs)


def test_in_process_run_equals_the_command_line_run(tmp_path):
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        code = cli.main(
            ["train", "mult-dae", "--data", "synthetic", "--set", "hidden_dims=[16]",
             "--epochs", "2", "--batch-size", "200", "--out", str(tmp_path / "cli")]
        )  # fmt: skip
    assert code == 0
    result = quiet_train(
        RunConfig(
            "mult-dae",
            DataSpec("synthetic"),
            settings=TINY,
            epochs=2,
            batch_size=200,
            out=str(tmp_path / "api"),
            verbose=0,
        )
    )
    from_cli = json.loads((tmp_path / "cli" / "metrics.json").read_text())
    assert result.test == pytest.approx(from_cli["test"], rel=1e-6)
    assert result.validation == pytest.approx(from_cli["validation"], rel=1e-6)
    run_files = [json.loads((tmp_path / d / RUN_FILE).read_text()) for d in ("cli", "api")]
    assert run_files[0] == run_files[1]
    # The summary and the directory agree, and the run reads back as written.
    run = load_run(tmp_path / "api")
    assert run.summary["test"] == pytest.approx(result.test)
    assert type(run.model) is models.MultDAE
    assert DataSpec.from_dict(run.options) == DataSpec("synthetic", seed=0)


def test_in_memory_split_is_retrained_for_the_chosen_epoch_count(tmp_path):
    frame = synthetic_frame(seed=3)
    users = frame["user"].unique()
    test_frame = frame[frame["user"].isin(users[:200])].groupby("user").head(2)
    train_frame = frame.drop(test_frame.index)
    split = split_given(train_frame, test_frame, validation_fraction=0.1, seed=0)
    full = split_given(train_frame, test_frame, validation_fraction=0.0).train
    config = RunConfig(
        "mult-dae",
        settings=TINY,
        epochs=3,
        batch_size=0,
        retrain=True,
        out=str(tmp_path / "run"),
        verbose=0,
    )
    result = quiet_train(config, split=split, full_train=full)
    best = result.summary["best_epoch"]
    assert 1 <= best <= 3 and result.summary["epochs_run"] == 3
    assert result.summary["reported_model"].startswith("retrained")
    # Full batches: one step an epoch, and the retrained model took `best` of them.
    assert int(result.model.optimizer.iterations) == best
    assert result.summary["n_users"] == full.n_users
    assert set(result.test) == set(config.metrics)


def test_config_errors_name_the_setting_and_write_nothing(tmp_path):
    out = tmp_path / "run"
    with pytest.raises(ConfigError, match="unknown model 'mult-foo'. Models: "):
        train(RunConfig("mult-foo", DataSpec("synthetic"), out=str(out)))
    with pytest.raises(ConfigError, match="--set dropuot: MultVAE has no argument 'dropuot'"):
        train(RunConfig("mult-vae", DataSpec("synthetic"), {"dropuot": 0.1}, out=str(out)))
    with pytest.raises(ConfigError, match="--precision should be one of"):
        train(RunConfig("mult-vae", DataSpec("synthetic"), precision="half", out=str(out)))
    for field, value, flag in [
        ("epochs", 0, "--epochs"),
        ("lr", -1.0, "--lr"),
        ("patience", 0, "--patience"),
        ("threads", 1.5, "--threads"),
    ]:
        with pytest.raises(ConfigError, match=f"{flag} should be"):
            train(RunConfig("mult-vae", DataSpec("synthetic"), out=str(out), **{field: value}))
    with pytest.raises(ConfigError, match="--metrics / --monitor: Unknown metric 'ndgc@20'"):
        train(RunConfig("mult-vae", DataSpec("synthetic"), metrics=("ndgc@20",), out=str(out)))
    with pytest.raises(ConfigError, match="--metrics / --monitor: Unknown metric 'nd@5'"):
        train(RunConfig("mult-vae", DataSpec("synthetic"), monitor="val_nd@5", out=str(out)))
    with pytest.raises(
        ConfigError,
        match="--protocol should be one of given, strong, random, temporal, leave-last-out",
    ):
        DataSpec("synthetic", protocol="leave-one-out")
    assert not out.exists()


def test_evaluate_run_reproduces_the_summary_and_takes_overrides(tmp_path):
    result = quiet_train(
        RunConfig(
            "ease",
            DataSpec("synthetic"),
            {"l2": 10.0},
            out=str(tmp_path / "ease"),
            metrics=("ndcg@20", "recall@20"),
            verbose=0,
        )
    )
    again = evaluate_run(tmp_path / "ease", metrics=["ndcg@20", "recall@20"])
    assert again["protocol"] == "strong"
    assert again["test"] == pytest.approx(result.test)
    # Another split of the same data: other held-out users, other figures.
    other = evaluate_run(tmp_path / "ease", DataSpec(heldout_users=50), metrics=["ndcg@20"])
    split, _ = load_split(DataSpec("synthetic", heldout_users=50))
    assert split.test.n_users == 50 and set(other["test"]) == {"ndcg@20"}


def test_data_spec_round_trips_through_run_json_keys():
    spec = DataSpec("data.csv", format="csv", threshold=4.0, seed=3, user_col="u")
    stored = {"model": "ease", "settings": {}, **spec.to_dict()}
    assert DataSpec.from_dict(stored) == spec
    assert spec.updated(seed=None, format="tsv") == DataSpec(
        "data.csv", format="tsv", threshold=4.0, seed=3, user_col="u"
    )


def test_given_without_a_test_file_is_refused():
    with pytest.raises(ConfigError, match="--protocol given needs a test file"):
        load_split(DataSpec("synthetic", protocol="given"))


BASES = {
    "Recommender",
    "ReconstructionAutoencoder",
    "RatingAutoencoder",
    "EmbeddingRefiner",
    "LinearAutoencoder",
}


def test_the_registry_lists_every_model_of_the_zoo():
    public = {
        name: getattr(models, name)
        for name in models.__all__
        if isinstance(getattr(models, name), type)
        and issubclass(getattr(models, name), keras.Model)
    }
    concrete = {cls for name, cls in public.items() if name not in BASES}
    assert set(registry.MODELS) | set(registry.REFINERS) == concrete
    for cls in registry.MODELS:
        assert issubclass(cls, models.Recommender)
        assert registry.model_class(registry.model_name(cls)) is cls
    for cls in registry.REFINERS:
        assert registry.refiner_class(registry.model_name(cls)) is cls
    assert registry.model_class("autorec") is models.AutoRec
    assert [registry.kebab_case(n) for n in ("MultVAE", "EASE", "CDAE", "AutoRec")] == [
        "mult-vae",
        "ease",
        "cdae",
        "auto-rec",
    ]


def test_check_settings_reports_the_constructor_message():
    with pytest.raises(ConfigError, match=r"`dropout` should be in \[0, 1\)"):
        registry.check_settings(models.MultVAE, {"dropout": 1.5})
    assert registry.check_settings(models.EASE, {"l2": 5.0}) == {"l2": 5.0}
    assert registry.takes_seed(models.MultVAE) and not registry.takes_seed(models.EASE)


def test_the_run_seed_fills_the_model_seed(tmp_path):
    result = quiet_train(
        RunConfig(
            "mult-dae",
            DataSpec("synthetic"),
            TINY,
            epochs=1,
            seed=11,
            out=str(tmp_path / "run"),
            verbose=0,
        )
    )
    assert result.model.seed == 11 and result.summary["config"]["seed"] == 11
    stored = json.loads((tmp_path / "run" / RUN_FILE).read_text())
    assert stored["seed"] == 11 and "seed" not in stored["settings"]
    assert np.isfinite(result.test["ndcg@100"])


@pytest.mark.parametrize("lr", [None, 0.02])
def test_the_learning_rate_is_the_models_unless_the_run_gives_one(tmp_path, lr):
    result = quiet_train(
        RunConfig(
            "cdae",
            DataSpec("synthetic"),
            {"hidden_dim": 8},
            epochs=1,
            lr=lr,
            out=str(tmp_path / "run"),
            verbose=0,
        )
    )
    expected = models.CDAE.default_lr if lr is None else lr
    assert float(result.model.optimizer.learning_rate) == pytest.approx(expected)
    assert result.summary["run"]["lr"] == pytest.approx(expected)
    # CDAE declares fifty updates a pass too: its batch is sized to the training users.
    users = result.summary["n_users"]
    assert result.summary["run"]["batch_size"] == -(-users // models.CDAE.min_updates_per_epoch)


@pytest.mark.parametrize("batch_size", [None, 7])
def test_a_model_that_needs_updates_gets_batches_for_them(tmp_path, batch_size):
    # Mult-VAE declares fifty updates a pass: its 500-user batches shrink on small data.
    result = quiet_train(
        RunConfig(
            "mult-vae",
            DataSpec("synthetic"),
            {"hidden_dims": [8]},
            epochs=1,
            batch_size=batch_size,
            out=str(tmp_path / "run"),
            verbose=0,
        )
    )
    users = result.summary["n_users"]
    assert users < 10 * models.MultVAE.default_batch_size
    expected = -(-users // models.MultVAE.min_updates_per_epoch) if batch_size is None else 7
    assert result.summary["run"]["batch_size"] == expected
    assert int(result.model.optimizer.iterations) == -(-users // expected)


@pytest.mark.parametrize(
    "n_rows, replicas, expected", [(95, 1, 2), (4840, 1, 97), (4840, 4, 96), (95, 4, 4)]
)
def test_the_data_sized_batch_is_a_multiple_of_the_replicas(n_rows, replicas, expected):
    resolved = with_model_defaults(RunConfig("mult-vae"), n_rows=n_rows, replicas=replicas)
    assert resolved.batch_size == expected and resolved.batch_size % replicas == 0
    assert with_model_defaults(RunConfig("mult-vae")).batch_size is None
    # A model with no rule keeps its own batch whatever the data.
    assert with_model_defaults(RunConfig("rec-vae"), n_rows=n_rows).batch_size == 500


def test_tensorboard_logs_the_loss_parts_the_learning_rate_and_the_validation_metrics(tmp_path):
    import pandas as pd

    result = quiet_train(
        RunConfig(
            "mult-vae",
            DataSpec("synthetic"),
            settings=TINY,
            epochs=3,
            lr_decay=0.5,
            metrics=("ndcg@20", "mrr@10"),
            monitor="ndcg@20",
            out=str(tmp_path / "run"),
            tensorboard=str(tmp_path / "logs"),
            verbose=0,
        )
    )
    history = pd.read_csv(result.out / "history.csv")
    train_scalars = tensorboard_scalars(tmp_path / "logs" / "train")
    validation_scalars = tensorboard_scalars(tmp_path / "logs" / "validation")
    for part in ("loss", "nll", "kl", "beta", "learning_rate"):
        logged = train_scalars[f"epoch_{part}"]
        assert [logged[epoch] for epoch in range(3)] == pytest.approx(list(history[part]))
    assert train_scalars["epoch_learning_rate"][2] == pytest.approx(
        train_scalars["epoch_learning_rate"][0] / 4
    )
    for metric in ("ndcg@20", "mrr@10"):
        logged = validation_scalars[f"epoch_{metric}"]
        assert [logged[epoch] for epoch in range(3)] == pytest.approx(
            list(history[f"val_{metric}"])
        )
