"""The error of a setting that cannot work, shared by the runner, the data spec and the CLI."""

from __future__ import annotations


class ConfigError(ValueError):
    """A run's setting, path or data option that cannot work.

    Raised by the runner (`keras_recae.training`), the data spec (`keras_recae.data.spec`)
    and the run-directory helpers (`keras_recae.runs`) before anything is written; the
    command line prints the message as one line, without a traceback. Messages name the
    setting as the command line spells it (`--out`, `--set`), which is the config field
    with dashes for underscores.
    """
