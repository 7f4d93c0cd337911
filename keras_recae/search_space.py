"""Search spaces: the settings a tuning study varies, and their command-line spelling.

A model declares its default space in its class attribute `search_space`, a dict from a
setting's name to a `Dimension`. A name is a constructor argument of the model, or one of
the run's training settings (`RUN_PARAMETERS`: the learning rate, its decay, the batch
size). On the command line a dimension is written `name=low:high`, `name=low:high:log` or
`name=a,b,c` (a choice; `name=[[600,200],[200]]` for values that hold commas).

This module has no dependency beyond the standard library: the models import it.
"""

from __future__ import annotations

import dataclasses
import json
import math

from keras_recae.errors import ConfigError

# Settings of the run (`keras_recae.training.RunConfig` fields) rather than of the model.
RUN_PARAMETERS = {"lr": float, "lr_decay": float, "batch_size": int}


@dataclasses.dataclass(frozen=True)
class Dimension:
    """One searched setting: a range of floats or integers (uniform or log), or a choice.

    Args:
        kind: str. `"float"`, `"int"` or `"choice"`.
        low: float | int | None. The range's lower end (included).
        high: float | int | None. The range's upper end (included).
        log: bool. Sample the range uniformly in log space (positive ends only).
        values: tuple. The choices: JSON values (numbers, strings, lists, None).
    """

    kind: str
    low: float | None = None
    high: float | None = None
    log: bool = False
    values: tuple = ()

    def __post_init__(self):
        if self.kind == "choice":
            if not self.values:
                raise ValueError("a choice needs at least one value")
            return
        if self.kind not in ("float", "int"):
            raise ValueError(f"`kind` should be float, int or choice. Received: {self.kind!r}")
        if not self.low <= self.high:
            raise ValueError(f"the range {self.low}:{self.high} is empty (low > high)")
        if self.log and self.low <= 0:
            raise ValueError(f"a log range needs positive ends. Received: {self.low}:{self.high}")

    def describe(self) -> str:
        """The command-line spelling: `0.0001:0.01:log`, `50,100,200`."""
        if self.kind == "choice":
            if any(isinstance(value, (list, dict)) for value in self.values):
                return json.dumps(list(self.values), separators=(",", ":"))
            return ",".join(_text(value) for value in self.values)
        return f"{_text(self.low)}:{_text(self.high)}" + (":log" if self.log else "")


def float_range(low: float, high: float, log: bool = False) -> Dimension:
    return Dimension("float", float(low), float(high), log)


def int_range(low: int, high: int, log: bool = False) -> Dimension:
    return Dimension("int", int(low), int(high), log)


def choice(*values) -> Dimension:
    return Dimension("choice", values=tuple(values))


def _text(value) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return repr(value)
    return json.dumps(value)


def parse_dimension(text: str, kinds: dict | None = None) -> tuple[str, Dimension]:
    """One `--space` item: `name=low:high[:log]` or `name=a,b,c` (or a JSON list).

    Args:
        text: str. The item as written.
        kinds: dict | None. The Python type (`int` or `float`) of each setting's default,
            which tells an integer range (`hidden_dim=50:400`) from a float one
            (`beta_cap=0:1`); without it, ends written with a decimal point or exponent
            make a float range. Defaults to None.

    Raises:
        ConfigError: naming the item and the expected forms.
    """
    forms = "expected name=low:high, name=low:high:log or name=a,b,c"
    if "=" not in text:
        raise ConfigError(f"--space {text!r}: {forms}")
    name, raw = (part.strip() for part in text.split("=", 1))
    name = name.replace("-", "_")
    if not name.isidentifier() or not raw:
        raise ConfigError(f"--space {text!r}: {forms}")
    if raw.startswith("["):
        try:
            values = json.loads(raw)
        except json.JSONDecodeError as error:
            raise ConfigError(f"--space {text!r}: not a JSON list ({error})") from None
        return name, choice(*values)
    if ":" in raw:
        parts = raw.split(":")
        log = len(parts) == 3 and parts[2] == "log"
        if len(parts) not in (2, 3) or (len(parts) == 3 and not log):
            raise ConfigError(f"--space {text!r}: {forms}")
        try:
            low, high = float(parts[0]), float(parts[1])
        except ValueError:
            raise ConfigError(f"--space {text!r}: the ends should be numbers") from None
        if not (math.isfinite(low) and math.isfinite(high)):
            raise ConfigError(f"--space {text!r}: the ends should be finite")
        kind = (kinds or {}).get(name)
        if kind is None:
            written = "".join(parts[:2]).lower()
            kind = float if any(mark in written for mark in ".e") else int
        try:
            if kind is int:
                if low != int(low) or high != int(high):
                    raise ConfigError(f"--space {text!r}: {name} takes integers")
                return name, int_range(int(low), int(high), log)
            return name, float_range(low, high, log)
        except ValueError as error:
            raise ConfigError(f"--space {text!r}: {error}") from None
    return name, choice(*(_value(part.strip()) for part in raw.split(",")))


def _value(text: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def parse_space(texts, kinds: dict | None = None) -> dict:
    """`--space` items as a dict of dimensions (a later item for a name wins)."""
    return dict(parse_dimension(text, kinds) for text in texts or [])
