"""The errors of a run, shared by the runner, the data spec, the tuner and the CLI."""

from __future__ import annotations


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite: no model was written, and a rerun starts afresh."""


class ConfigError(ValueError):
    """A run's setting, path or data option that cannot work.

    Raised by the runner (`keras_recae.training`), the data spec (`keras_recae.data.spec`),
    the tuner and the run-directory helpers (`keras_recae.runs`) before training starts;
    the command line prints the message as one line, without a traceback. Messages name the
    setting as the command line spells it (`--out`, `--set`), which is the config field
    with dashes for underscores.
    """
