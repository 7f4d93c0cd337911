"""`keras-recae report`: the Markdown table of runs and its figures."""

import contextlib
import io
import json

import pytest

from keras_recae import cli
from keras_recae.data.spec import DataSpec
from keras_recae.errors import ConfigError
from keras_recae.reporting import report
from keras_recae.training import RunConfig, evaluate_run, train

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    base = tmp_path_factory.mktemp("runs")
    common = {"data": DataSpec("synthetic"), "metrics": ("ndcg@20", "recall@20"), "verbose": 0}
    with contextlib.redirect_stdout(io.StringIO()):
        train(RunConfig("ease", settings={"l2": 10.0}, out=str(base / "ease"), **common))
        train(
            RunConfig(
                "mult-dae",
                settings={"hidden_dims": [16]},
                epochs=3,
                monitor="ndcg@20",
                out=str(base / "mult-dae"),
                **common,
            )
        )
    return base / "ease", base / "mult-dae"


def test_the_table_holds_each_runs_figures(two_runs, tmp_path):
    result = report(two_runs, out=tmp_path / "report" / "runs.md", max_k=5)
    text = (tmp_path / "report" / "runs.md").read_text()
    assert text == result.markdown
    header = next(line for line in text.splitlines() if line.startswith("| run"))
    assert header.split(" | ")[-2:] == ["test ndcg@20", "test recall@20 |"]
    for run in two_runs:
        summary = json.loads((run / "metrics.json").read_text())
        row = next(line for line in text.splitlines() if line.startswith(f"| `{run}`"))
        assert f"{summary['test']['ndcg@20']:.4f}" in row
    # The EASE run has no epochs and no validation part: dashes.
    ease_row = next(line for line in text.splitlines() if line.startswith(f"| `{two_runs[0]}`"))
    assert " - |" in ease_row
    assert [figure.name for figure in result.figures] == ["validation_curves.png", "test_at_k.png"]
    for figure in result.figures:
        assert figure.read_bytes().startswith(PNG_SIGNATURE)
        assert f"]({figure.name})" in text


def test_the_test_figure_is_the_metric_at_each_cutoff(two_runs, monkeypatch, tmp_path):
    """The curve's points are `evaluate_run`'s figures at k = 1..K."""
    import matplotlib.axes

    drawn = {}
    original = matplotlib.axes.Axes.plot

    def record(self, x, y, *args, label=None, **kwargs):
        drawn[label] = (list(x), list(y))
        return original(self, x, y, *args, label=label, **kwargs)

    monkeypatch.setattr(matplotlib.axes.Axes, "plot", record)
    report([two_runs[0]], out=tmp_path / "runs.md", metric="recall@20", max_k=4)
    expected = evaluate_run(two_runs[0], metrics=[f"recall@{k}" for k in range(1, 5)])["test"]
    ks, values = drawn["ease"]
    assert ks == [1, 2, 3, 4]
    assert values == pytest.approx([expected[f"recall@{k}"] for k in ks])
    assert values == sorted(values)  # recall grows with k


def test_report_errors_and_the_printed_table(two_runs, tmp_path, capsys):
    with pytest.raises(ConfigError, match="not a finished run directory"):
        report([tmp_path])
    with pytest.raises(ConfigError, match="--metric: Unknown metric 'ndgc@20'"):
        report(two_runs, metric="ndgc@20")
    with pytest.raises(ConfigError, match="the figures need a per-user metric"):
        report(two_runs, metric="coverage@20")
    assert cli.main(["report", *map(str, two_runs)]) == 0
    assert capsys.readouterr().out.startswith("# Runs\n")
