"""Argument checks shared by the package, with one wording for their errors.

Each check returns the value in its canonical type, or raises a `ValueError` naming the
argument and what was received, e.g. "`hidden_dim` should be a positive integer.
Received: hidden_dim=0".
"""

from __future__ import annotations

import numbers

import keras


def _is_integral(value) -> bool:
    """Integers and integral floats (`2.0`), never booleans."""
    if isinstance(value, bool):
        return False
    if isinstance(value, numbers.Integral):
        return True
    return isinstance(value, numbers.Real) and float(value).is_integer()


def check_positive_int(name: str, value, allow_none: bool = False) -> int | None:
    """An integer >= 1; with `allow_none`, None too."""
    if value is None and allow_none:
        return None
    if not _is_integral(value) or value < 1:
        kind = "a positive integer or None" if allow_none else "a positive integer"
        raise ValueError(f"`{name}` should be {kind}. Received: {name}={value}")
    return int(value)


def check_non_negative_int(name: str, value) -> int:
    """An integer >= 0."""
    if not _is_integral(value) or value < 0:
        raise ValueError(f"`{name}` should be a non-negative integer. Received: {name}={value}")
    return int(value)


def _check_real(name: str, value) -> None:
    """A real number (not a string or a boolean), before any comparison."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"`{name}` should be a number. Received: {name}={value!r}")


def check_rate(name: str, value: float) -> float:
    """A probability in [0, 1)."""
    _check_real(name, value)
    if not 0.0 <= value < 1.0:
        raise ValueError(f"`{name}` should be in [0, 1). Received: {name}={value}")
    return float(value)


def check_unit_interval(name: str, value: float) -> float:
    """A number in [0, 1]."""
    _check_real(name, value)
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"`{name}` should be in [0, 1]. Received: {name}={value}")
    return float(value)


def check_non_negative(name: str, value: float) -> float:
    """A number >= 0."""
    _check_real(name, value)
    if value < 0:
        raise ValueError(f"`{name}` should be >= 0. Received: {name}={value}")
    return float(value)


def check_positive(name: str, value: float) -> float:
    """A number > 0."""
    _check_real(name, value)
    if value <= 0:
        raise ValueError(f"`{name}` should be > 0. Received: {name}={value}")
    return float(value)


def check_choice(name: str, value, choices):
    """One of `choices`."""
    if value not in choices:
        raise ValueError(f"`{name}` should be one of {list(choices)}. Received: {name}={value!r}")
    return value


def check_hidden_dims(hidden_dims, allow_empty: bool = False) -> tuple[int, ...]:
    """Hidden widths; with `allow_empty`, `()` too (a linear encoder and decoder)."""
    try:
        dims = tuple(int(d) for d in hidden_dims)
    except (TypeError, ValueError):
        dims = (0,)
    if (not dims and not allow_empty) or any(d < 1 for d in dims):
        shown = list(hidden_dims) if isinstance(hidden_dims, (list, tuple)) else hidden_dims
        kind = (
            "list of positive integers (possibly empty)"
            if allow_empty
            else "non-empty list of positive integers"
        )
        raise ValueError(f"`hidden_dims` should be a {kind}. Received: hidden_dims={shown}")
    return dims


def check_activation(activation) -> str:
    """The name of a Keras activation."""
    message = (
        "`activation` should be the name of a Keras activation. "
        f"Received: activation={activation!r}"
    )
    if not isinstance(activation, str):
        raise ValueError(message)
    try:
        keras.activations.get(activation)
    except ValueError:
        raise ValueError(message) from None
    return activation


def describe_structure(data) -> str:
    """The types of a batch's parts, for error messages: `(SparseTensor, Tensor)`."""
    if isinstance(data, (tuple, list)):
        return "(" + ", ".join(describe_structure(part) for part in data) + ")"
    return type(data).__name__
