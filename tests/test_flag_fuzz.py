"""Property-based test of the command line: any value of any flag of `train` is taken, or is
refused with a usage error (exit 2) that names the flag, before anything trains; never a
traceback."""

import contextlib
import io
import os
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from keras_recae import cli, training

# A bounded run in the test suite; `bash benchmarks/fuzz.sh flags` (KERAS_RECAE_FUZZ=long)
# tries 2,000 command lines and counts them (the `fuzz_counts` fixture).
settings.register_profile("flags-suite", max_examples=60, deadline=None)
settings.register_profile("flags-long", max_examples=2000, deadline=None)
SETTINGS = settings(
    settings.get_profile(f"flags-{os.environ.get('KERAS_RECAE_FUZZ', 'suite')}"),
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


# Values a user may type, sensible or not.
VALUES = st.one_of(
    st.sampled_from(
        [
            "0",
            "1",
            "-1",
            "2",
            "0.5",
            "1e-3",
            "nan",
            "inf",
            "-inf",
            "1e400",
            "",
            " ",
            "none",
            "null",
            "true",
            "[]",
            "[8]",
            "[0]",
            "[-4,2]",
            "{}",
            '"x"',
            "ndcg@20",
            "recall@0",
            "ndcg@-5",
            "ndcg@",
            "@20",
            "ndcg@20,",
            "float32",
            "mixed_float16",
            "strong",
            "given",
            "random",
            "x=1",
            "3.5",
            "99999999999999999999",
            "0x10",
            "١",
        ]
    ),  # fmt: skip
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.text(max_size=8),
)
FLAGS = [
    "--epochs", "--lr", "--batch-size", "--eval-every", "--patience", "--seed", "--monitor",
    "--metrics", "--precision", "--protocol", "--validation-fraction", "--heldout-users",
    "--lr-decay", "--jit-compile", "--threshold", "--time-cut", "--last-n", "--format",
    "--distribute", "--devices",
]  # fmt: skip
# --set names of Mult-VAE, and names it does not have.
SETTING_NAMES = [
    "hidden_dims", "dropout", "beta_cap", "total_anneal_steps", "beta", "l2",
    "sampled_softmax", "sampled_proposal", "widht",
]  # fmt: skip
BASE = [
    "train", "mult-vae", "--data", "synthetic", "--synthetic-users", "60",
    "--synthetic-items", "40", "--synthetic-interactions", "600", "--epochs", "1",
]  # fmt: skip


class Reached(Exception):
    """Training was about to begin: every flag was taken."""


def _reached(*args, **kwargs):
    raise Reached


@pytest.fixture(scope="module")
def train_flags():
    """The flags `train` has (a flag fuzzed here that it lacks would test nothing)."""
    parser = cli._subparser(cli.build_parser(), "train")
    return {option for action in parser._actions for option in action.option_strings}


@SETTINGS
@given(
    flags=st.lists(
        st.tuples(st.sampled_from(FLAGS + ["--set"]), VALUES, st.sampled_from(SETTING_NAMES)),
        min_size=1,
        max_size=3,
    )
)
def test_any_flag_value_is_taken_or_refused_naming_the_flag(
    tmp_path, train_flags, fuzz_counts, flags
):
    argv = list(BASE)
    named = []
    for flag, value, setting in flags:
        if flag == "--set":
            argv += [flag, f"{setting}={value}"]
            named.append(setting)
        else:
            argv += [f"{flag}={value}"]  # `=`: a value starting with '-' stays a value
            named.append(flag)
    argv += ["--out", str(tmp_path / f"run{abs(hash(tuple(argv)))}")]
    err = io.StringIO()
    with (
        mock.patch.object(training, "fit", _reached),
        mock.patch.object(training, "configure_threads", lambda threads: None),
        contextlib.redirect_stderr(err),
        contextlib.redirect_stdout(io.StringIO()),
    ):
        try:
            code = cli.main(argv)
        except Reached:
            fuzz_counts["command lines"]["taken"] += 1
            for flag in named:
                fuzz_counts[flag]["taken"] += 1
            return
        except SystemExit as exit_info:  # argparse's usage error
            code = exit_info.code
    message = err.getvalue()
    assert code == 2, (argv, message)
    assert "Traceback" not in message
    assert any(name in message for name in named), (argv, message)
    fuzz_counts["command lines"]["refused"] += 1
    for flag in named:
        fuzz_counts[flag]["in a refused command line"] += 1


def test_the_fuzzed_flags_exist(train_flags):
    assert set(FLAGS) <= train_flags
