"""Raw user and item ids: the int64-or-string rule, padding values and the id assets.

Every raw id array of the package follows one rule: int64 when every id is an integer,
else Python strings (a numpy object array). Models keep their vocabularies in that form,
save them beside their weights as JSON assets, and the serving signatures take ids of the
same type, padded with `INT_PADDING` or `STRING_PADDING`.
"""

from __future__ import annotations

import json
import os

import numpy as np

INT_PADDING = -1
STRING_PADDING = ""
ITEM_IDS_FILE = "item_ids.json"
USER_IDS_FILE = "user_ids.json"


def is_integer_kind(ids) -> bool:
    """Whether an id array holds integers (its numpy kind is signed or unsigned int)."""
    return np.asarray(ids).dtype.kind in "iu"


def id_dtype_name(ids) -> str:
    """`"int64"` for integer ids, else `"string"`: the dtype of the serving signatures."""
    return "int64" if is_integer_kind(ids) else "string"


def padding_of(ids):
    """The padding value of ids of this kind: -1 for integers, "" for strings."""
    return INT_PADDING if is_integer_kind(ids) else STRING_PADDING


def as_strings(ids) -> np.ndarray:
    """Ids as a numpy object array of Python strings."""
    return np.asarray(ids).astype(str).astype(object)


def vocabulary(ids, name: str = "ids") -> np.ndarray:
    """A one-dimensional vocabulary kept as given: int64 for integer arrays, else strings.

    Unlike `parse_ids`, strings that look like integers stay strings: a vocabulary keeps
    the type its data had.
    """
    array = np.asarray(ids)
    if array.ndim != 1:
        raise ValueError(f"`{name}` should be one-dimensional. Received shape {array.shape}")
    return array.astype(np.int64) if is_integer_kind(array) else as_strings(array)


def parse_ids(values) -> np.ndarray:
    """Raw ids read from data: int64 when every id is an integer, else strings.

    Integer-valued floats (a column with gaps read by pandas) and strings that spell an
    integer in its canonical form (`"12"`, not `"012"` or `"+12"`) count as integers.
    """
    array = np.asarray(values)
    if array.dtype.kind in "iu":
        return array.astype(np.int64)
    if array.dtype.kind == "f":
        if np.all(np.isfinite(array)) and np.all(array == np.round(array)):
            return array.astype(np.int64)
    texts = array.astype(str)
    integers = integer_ids(texts)
    return integers if integers is not None else texts.astype(object)


def integer_ids(values) -> np.ndarray | None:
    """The ids as int64 when each is an integer in canonical form, else None."""
    array = np.asarray(values)
    if array.dtype.kind in "iu":
        return array.astype(np.int64)
    texts = array.astype(str)
    try:
        numbers = texts.astype(np.int64)
    except (ValueError, OverflowError):
        return None
    if not np.array_equal(numbers.astype(str), texts):
        return None
    return numbers


def write_id_asset(dir_path, filename: str, ids) -> None:
    """Writes `{"dtype": "int64" | "string", "ids": [...]}` to `dir_path/filename`.

    Written to a temporary file and renamed, so a reader never sees half a vocabulary.
    """
    ids = np.asarray(ids)
    kind = id_dtype_name(ids)
    values = [int(i) for i in ids] if kind == "int64" else [str(i) for i in ids]
    path = os.path.join(dir_path, filename)
    temporary = path + ".tmp"
    with open(temporary, "w", encoding="utf-8") as file:
        json.dump({"dtype": kind, "ids": values}, file)
    os.replace(temporary, path)


def read_id_asset(dir_path, filename: str) -> np.ndarray | None:
    """The ids of a `write_id_asset` file; None when the file does not exist."""
    path = os.path.join(dir_path, filename)
    if not os.path.exists(path):
        return None
    with open(path, encoding="utf-8") as file:
        content = json.load(file)
    if not isinstance(content, dict) or content.get("dtype") not in ("int64", "string"):
        raise ValueError(
            f"{path}: expected an object with `dtype` 'int64' or 'string' and a list `ids`"
        )
    dtype = np.int64 if content["dtype"] == "int64" else object
    return np.asarray(content["ids"], dtype=dtype)
