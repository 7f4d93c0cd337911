"""Runs described in files: `--config run.toml`, or a run directory's `run.json`.

A TOML file holds the same keys as the command line's flags, with dashes or underscores
(`data = "ml-1m/ratings.dat"`, `heldout-users = 600`, `metrics = ["ndcg@100", "recall@20"]`,
`retrain = true`) and the model's settings in a `[set]` table (or `set = ["l2=80"]`). A
`run.json` written by `train` holds the model, its settings, the data fields and, under
`run`, the fit flags, so that `keras-recae train --config RUN_DIR/run.json --out OTHER`
repeats the run. Every value goes through the flag's own parsing, so a wrong value is
reported with the file and the key.
"""

from __future__ import annotations

import argparse
import json
import tomllib
from pathlib import Path

from keras_recae.errors import ConfigError

# Keys of run.json that are the run's record, not flags.
_RECORD_ONLY = {"out", "verbose", "user_metrics", "select"}


def read_run_config(path, parser: argparse.ArgumentParser) -> dict:
    """The flag values of a TOML file or a `run.json`, checked against `parser`'s flags.

    Args:
        path: path. A `.toml` file, a `.json` file (a run directory's `run.json`), or a run
            directory (its `run.json`).
        parser: argparse.ArgumentParser. The command's parser: its flags name the keys a
            file may hold, and convert and check their values.

    Returns:
        A dict from argparse destination (`heldout_users`, `set`, ...) to the parsed value.
        Keys whose value is null (JSON) are left out: the flag keeps its default.

    Raises:
        ConfigError: for an unreadable file, an unknown key, or a value the flag refuses,
            naming the file and the key.
    """
    path = Path(path)
    if path.is_dir():
        path = path / "run.json"
    content = _read(path)
    if "run" in content and isinstance(content["run"], dict):
        # run.json: the fit flags are under `run`, the settings under `settings`.
        content = {**{k: v for k, v in content.items() if k != "run"}, **content["run"]}
    if "settings" in content:
        content["set"] = content.pop("settings")
    actions = {}
    for action in parser._actions:
        if action.dest != "help":
            actions[action.dest] = action
    values = {}
    for key, value in content.items():
        dest = key.replace("-", "_")
        if dest in _RECORD_ONLY or value is None:
            continue
        if dest not in actions or dest == "config":
            known = ", ".join(sorted(dest for dest in actions if dest != "config"))
            raise ConfigError(f"{path}: unknown key '{key}'. Keys: {known}")
        values[dest] = _parse_value(path, key, value, actions[dest], parser)
    return values


def _read(path: Path) -> dict:
    if not path.is_file():
        raise ConfigError(f"--config: no such file: {path}")
    try:
        if path.suffix == ".json":
            with open(path, encoding="utf-8") as file:
                content = json.load(file)
        else:
            with open(path, "rb") as file:
                content = tomllib.load(file)
    except (json.JSONDecodeError, tomllib.TOMLDecodeError) as error:
        kind = "JSON" if path.suffix == ".json" else "TOML"
        raise ConfigError(f"{path}: not valid {kind} ({error})") from None
    if not isinstance(content, dict):
        raise ConfigError(f"{path}: expected a table of keys and values")
    return content


def _parse_value(path: Path, key: str, value, action: argparse.Action, parser):
    where = f"{path}: {key}"
    if isinstance(action, argparse._StoreTrueAction):
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true or false. Received: {value!r}")
        return value
    if isinstance(action, argparse._AppendAction):
        # --set: a table of name = value, or a list of "name=value" strings.
        if isinstance(value, dict):
            return [f"{name}={json.dumps(setting)}" for name, setting in value.items()]
        if isinstance(value, list) and all(isinstance(item, str) for item in value):
            return list(value)
        raise ConfigError(f"{where}: expected a table of name = value. Received: {value!r}")
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, list):
        text = ",".join(str(item) for item in value)
    elif isinstance(value, dict):
        raise ConfigError(f"{where}: expected a single value. Received a table: {value!r}")
    else:
        text = str(value)
    try:
        parsed = action.type(text) if action.type else text
    except (argparse.ArgumentTypeError, ValueError, TypeError) as error:
        raise ConfigError(f"{where}: {error or 'invalid value'}. Received: {value!r}") from None
    if action.choices is not None and parsed not in action.choices:
        choices = ", ".join(str(choice) for choice in action.choices)
        raise ConfigError(f"{where}: expected one of {choices}. Received: {value!r}")
    return parsed
