"""`--config`: a run described in TOML, or repeated from its run.json."""

import contextlib
import io
import json

import pytest

from keras_recae import cli


def run_cli(argv):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main(argv)
    return code, out.getvalue(), err.getvalue()


TOML = """
model = "mult-dae"
data = "synthetic"
epochs = 2
batch-size = 200
metrics = ["ndcg@20", "mrr@10"]
monitor = "ndcg@20"

[set]
hidden_dims = [16]
dropout = 0.3
"""


def test_a_toml_run_equals_the_same_flags_and_its_run_json_repeats_it(tmp_path):
    config = tmp_path / "run.toml"
    config.write_text(TOML)
    code, _, err = run_cli(["train", "--config", str(config), "--out", str(tmp_path / "toml")])
    assert code == 0, err
    code, _, err = run_cli(
        ["train", "mult-dae", "--data", "synthetic", "--epochs", "2", "--batch-size", "200",
         "--metrics", "ndcg@20,mrr@10", "--monitor", "ndcg@20", "--set", "hidden_dims=[16]",
         "--set", "dropout=0.3", "--out", str(tmp_path / "flags")]
    )  # fmt: skip
    assert code == 0, err
    summaries = [json.loads((tmp_path / d / "metrics.json").read_text()) for d in ("toml", "flags")]
    assert summaries[0]["test"] == summaries[1]["test"]
    # The same model settings (the layer names count up within the process).
    configs = [{k: v for k, v in summary["config"].items() if k != "name"} for summary in summaries]
    assert configs[0] == configs[1]
    # run.json holds everything the run needs: repeating it gives the same figures.
    code, _, err = run_cli(
        ["train", "--config", str(tmp_path / "toml" / "run.json"), "--out", str(tmp_path / "again")]
    )
    assert code == 0, err
    again = json.loads((tmp_path / "again" / "metrics.json").read_text())
    assert again["test"] == summaries[0]["test"]
    assert again["run"]["batch_size"] == 200 and again["best_epoch"] == summaries[0]["best_epoch"]


def test_flags_win_over_the_file(tmp_path):
    config = tmp_path / "run.toml"
    config.write_text(TOML)
    code, _, err = run_cli(
        ["train", "--config", str(config), "--epochs", "1", "--set", "dropout=0.0",
         "--out", str(tmp_path / "run")]
    )  # fmt: skip
    assert code == 0, err
    summary = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert summary["epochs_run"] == 1
    assert summary["config"]["dropout"] == 0.0
    assert summary["config"]["hidden_dims"] == [16]


@pytest.mark.parametrize(
    "text, message",
    [
        ('data = "synthetic"\nepoch = 3\n', "run.toml: unknown key 'epoch'. Keys: "),
        ('data = "synthetic"\nbatch-size = -1\n', "run.toml: batch-size: expected a whole"),
        ('data = "synthetic"\nprecision = "half"\n', "run.toml: precision: expected one of"),
        ('data = "synthetic"\nretrain = "yes"\n', "run.toml: retrain: expected true or false"),
        ('data = "synthetic"\nmetrics = ["ndgc@20"]\n', "run.toml: metrics: Unknown metric"),
        ("data = [\n", "run.toml: not valid TOML"),
    ],
)
def test_errors_name_the_file_and_the_key(tmp_path, text, message):
    config = tmp_path / "run.toml"
    config.write_text(text)
    code, _, err = run_cli(["train", "ease", "--config", str(config), "--out", str(tmp_path / "r")])
    assert code == 2
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "r").exists()


def test_the_model_and_the_data_are_still_needed(tmp_path):
    code, _, err = run_cli(["train", "--data", "synthetic", "--out", str(tmp_path / "r")])
    assert code == 2 and "name the model: keras-recae train MODEL" in err
    code, _, err = run_cli(["train", "ease", "--out", str(tmp_path / "r")])
    assert code == 2 and "--data is needed" in err
