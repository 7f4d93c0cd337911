"""Item vectors on disk: word2vec text and binary, gensim KeyedVectors, `.npy` and `.npz`.

`read_vectors` returns the keys and an `(n, d)` float32 array in file order;
`write_vectors` writes them back in any of the formats, to a temporary file renamed into
place. Keys are kept as the file has them: strings for the word2vec formats and id lists,
whatever `.npz` and gensim files hold (int64 when every key is an integer, else strings).

Formats (by name, detected from the extension, else from the first bytes):

- `word2vec`: text, a header line `n_vectors dimension`, then one line per vector,
  `key v1 ... vd`, separated by spaces (`.txt`, `.vec`, `.w2v`).
- `glove`: the same lines without the header, as GloVe writes them; the first line gives
  the dimension (a `.txt`, `.vec` or `.w2v` file whose first line is not the two integers
  of a word2vec header is read as `glove`).
- `word2vec-binary`: the same header, then per vector the key, a space and d
  little-endian float32 (an optional newline before the next key), as the original C tool
  and gensim write it (`.bin`).
- `gensim`: a file written by `gensim.models.KeyedVectors.save` (or a saved `Word2Vec`
  model, whose `.wv` is read); needs gensim (`pip install "keras-recae[word2vec]"`)
  (`.kv`, `.model`, `.wv`).
- `npy`: an `(n, d)` array, with the keys in an id list beside it, one per line,
  `vectors.npy` -> `vectors.ids.txt` (or `ids=`).
- `npz`: the arrays `keys` and `vectors` in one file.

Malformed files (a ragged row, a header that disagrees with the body, a value that is not a
finite number, a repeated key) raise `VectorFormatError` naming the file, the line (the
record and byte offset in binary files) and what was expected.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from keras_recae.data.ids import as_strings, is_integer_kind, vocabulary
from keras_recae.data.readers import DataFormatError

FORMATS = ("word2vec", "glove", "word2vec-binary", "gensim", "npy", "npz")
_EXTENSIONS = {
    ".txt": "word2vec",
    ".vec": "word2vec",
    ".w2v": "word2vec",
    ".bin": "word2vec-binary",
    ".kv": "gensim",
    ".model": "gensim",
    ".wv": "gensim",
    ".npy": "npy",
    ".npz": "npz",
}
_IDS_SUFFIX = ".ids.txt"
_PICKLE_MAGIC = b"\x80"
_NPY_MAGIC = b"\x93NUMPY"
_ZIP_MAGIC = b"PK\x03\x04"
_SHOWN = 60


class VectorFormatError(DataFormatError):
    """A vector file that is not in the expected format, with where and why."""


def detect_format(path) -> str:
    """The format of a vector file from its extension, else from its first bytes."""
    path = Path(path)
    by_extension = _EXTENSIONS.get(path.suffix.lower())
    if by_extension is not None and by_extension != "word2vec":
        return by_extension
    if not path.is_file():
        if by_extension is not None:
            return by_extension
        raise FileNotFoundError(f"{path}: no such vector file")
    with open(path, "rb") as file:
        # Enough for the first line of a GloVe file of a few thousand dimensions.
        head = file.read(1 << 16)
    if by_extension == "word2vec":
        headless = not _is_header(head.partition(b"\n")[0]) and _looks_like_glove(head)
        return "glove" if headless else "word2vec"
    if head.startswith(_NPY_MAGIC):
        return "npy"
    if head.startswith(_ZIP_MAGIC):
        return "npz"
    if head.startswith(_PICKLE_MAGIC):
        return "gensim"
    first_line, _, rest = head.partition(b"\n")
    if _is_header(first_line):
        try:
            rest.decode("utf-8")
        except UnicodeDecodeError as error:
            # A cut multi-byte character at the end of the sample is still text.
            if error.start < len(rest) - 4:
                return "word2vec-binary"
        return "word2vec"
    if _looks_like_glove(head):
        return "glove"
    raise VectorFormatError(
        f"{path}: cannot tell the vector format from the name or the content; pass format= "
        f"one of {', '.join(FORMATS)}"
    )


def _is_header(line: bytes) -> bool:
    """Whether `line` is a word2vec header: two non-negative integers."""
    parts = line.split()
    return len(parts) == 2 and all(part.isdigit() for part in parts)


def _looks_like_glove(head: bytes) -> bool:
    """Whether the first line of `head` is UTF-8 `key v1 ... vd` with numeric values."""
    first_line, newline, _ = head.partition(b"\n")
    if not newline:
        return False
    try:
        tokens = first_line.decode("utf-8").split()
        [float(token) for token in tokens[1:]]
    except (UnicodeDecodeError, ValueError):
        return False
    return len(tokens) >= 2


def default_ids_path(path) -> Path:
    """The id list that goes with an `.npy` file: `vectors.npy` -> `vectors.ids.txt`."""
    path = Path(path)
    stem = path.name[: -len(path.suffix)] if path.suffix else path.name
    return path.with_name(stem + _IDS_SUFFIX)


def _check_format(format: str | None, path) -> str:
    if format is None:
        return detect_format(path)
    if format not in FORMATS:
        raise ValueError(f"`format` should be one of {list(FORMATS)}. Received: format={format!r}")
    return format


# ---------------------------------------------------------------------------------------
# Reading


def read_vectors(path, format: str | None = None, *, ids=None) -> tuple[np.ndarray, np.ndarray]:
    """Reads item vectors and their keys.

    Args:
        path: path. The vector file.
        format: str | None. One of `FORMATS`; detected when None. Defaults to `None`.
        ids: path | None. The id list of an `.npy` file, one key per line. Defaults to
            `None`, the file `default_ids_path(path)` beside it.

    Returns:
        A pair `(keys, vectors)`: a one-dimensional array of the keys (int64, or str in an
        object array) and a float32 array of shape `(n, d)`, in file order.

    Raises:
        VectorFormatError: for a malformed file, naming the line and the problem.
        FileNotFoundError: when the file (or the id list) does not exist.

    Example:

    ```python
    from keras_recae.data import read_vectors

    keys, vectors = read_vectors("item2vec.txt")
    ```
    """
    path = Path(path)
    format = _check_format(format, path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such vector file")
    if format in ("word2vec", "glove"):
        return _read_text(path, header=format == "word2vec")
    if format == "word2vec-binary":
        return _read_binary(path)
    if format == "gensim":
        return _read_gensim(path)
    if format == "npz":
        return _read_npz(path)
    return _read_npy(path, Path(ids) if ids is not None else default_ids_path(path))


def _shown(text: str) -> str:
    return repr(text if len(text) <= _SHOWN else text[:_SHOWN] + "...")


def _header(path: Path, line: str, where: str) -> tuple[int, int]:
    parts = line.split()
    if len(parts) != 2 or not all(part.isdigit() for part in parts) or int(parts[1]) < 1:
        raise VectorFormatError(
            f"{path}, {where}: expected the header 'n_vectors dimension' (two non-negative "
            f"integers, the dimension at least 1). Received: {_shown(line.strip())}"
        )
    return int(parts[0]), int(parts[1])


def _check_values(path: Path, where: str, key: str, values: np.ndarray) -> None:
    bad = np.flatnonzero(~np.isfinite(values))
    if bad.size:
        raise VectorFormatError(
            f"{path}, {where}: value {bad[0] + 1} of key {_shown(key)} is {values[bad[0]]}; "
            "vectors should hold finite numbers"
        )


def _parse_floats(path: Path, where: str, key: str, tokens: list[str]) -> np.ndarray:
    try:
        return np.array(tokens, dtype=np.float32)
    except ValueError:
        for position, token in enumerate(tokens, start=1):
            try:
                float(token)
            except ValueError:
                raise VectorFormatError(
                    f"{path}, {where}: value {position} of key {_shown(key)} is not a number: "
                    f"{_shown(token)}"
                ) from None
        raise


def _read_text(path: Path, header: bool = True) -> tuple[np.ndarray, np.ndarray]:
    keys: list[str] = []
    first_line: dict[str, int] = {}
    with open(path, "rb") as file:
        raw_lines = file.read().split(b"\n")
    if raw_lines and raw_lines[-1] == b"":
        raw_lines.pop()
    # Blank lines at the end of a file are harmless; anywhere else they are a mistake.
    while raw_lines and not raw_lines[-1].strip():
        raw_lines.pop()
    if not raw_lines:
        kind = "word2vec text" if header else "GloVe"
        raise VectorFormatError(f"{path}: the file is empty; expected a {kind} file")

    def decode(number: int, raw: bytes) -> str:
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as error:
            raise VectorFormatError(
                f"{path}, line {number}: not UTF-8 text ({error.reason} at byte {error.start} "
                "of the line); is this a binary word2vec file? Pass format='word2vec-binary'"
            ) from None

    if header:
        n, d = _header(path, decode(1, raw_lines[0]), "line 1")
        body, first = raw_lines[1:], 2
        if len(body) > n:
            raise VectorFormatError(
                f"{path}, line {n + 2}: the header on line 1 announces {n} vectors, but the "
                f"file has {len(body)} lines after it"
            )
        if len(body) < n:
            raise VectorFormatError(
                f"{path}: the header on line 1 announces {n} vectors, but the file ends after "
                f"{len(body)} (line {len(body) + 1})"
            )
        dimension_from = "the dimension in the header on line 1"
    else:
        # GloVe: no header; the first line sets the dimension.
        body, first = raw_lines, 1
        n, d = len(body), len(decode(1, body[0]).split()) - 1
        if d < 1:
            raise VectorFormatError(
                f"{path}, line 1: expected 'key v1 ... vd' with at least one value. Received: "
                f"{_shown(decode(1, body[0]).strip())}"
            )
        dimension_from = "as on line 1 of this GloVe file, which has no header"
    vectors = np.empty((n, d), dtype=np.float32)
    for row, raw in enumerate(body):
        number = row + first
        where = f"line {number}"
        tokens = decode(number, raw).split()
        if not tokens:
            raise VectorFormatError(f"{path}, {where}: empty line; expected 'key v1 ... v{d}'")
        key = tokens[0]
        if len(tokens) - 1 != d:
            raise VectorFormatError(
                f"{path}, {where}: key {_shown(key)} has {len(tokens) - 1} values, expected {d} "
                f"({dimension_from})"
            )
        if key in first_line:
            raise VectorFormatError(
                f"{path}, {where}: key {_shown(key)} repeats line {first_line[key]}; keys "
                "should be unique"
            )
        first_line[key] = number
        values = _parse_floats(path, where, key, tokens[1:])
        _check_values(path, where, key, values)
        vectors[row] = values
        keys.append(key)
    return np.array(keys, dtype=object), vectors


def _read_binary(path: Path) -> tuple[np.ndarray, np.ndarray]:
    data = path.read_bytes()
    end = data.find(b"\n")
    if end < 0:
        raise VectorFormatError(f"{path}, line 1: no header line 'n_vectors dimension'")
    try:
        header = data[:end].decode("ascii")
    except UnicodeDecodeError:
        header = data[:end].decode("latin-1")
    n, d = _header(path, header, "line 1")
    width = 4 * d
    vectors = np.empty((n, d), dtype=np.float32)
    keys: list[str] = []
    first_record: dict[str, int] = {}
    position = end + 1
    for row in range(n):
        # The C tool ends each vector with a newline, gensim does not.
        while position < len(data) and data[position : position + 1] == b"\n":
            position += 1
        where = f"record {row + 1} (byte {position})"
        if position >= len(data):
            raise VectorFormatError(
                f"{path}: the header on line 1 announces {n} vectors, but the file ends after {row}"
            )
        space = data.find(b" ", position, position + 100_000)
        if space < 0:
            raise VectorFormatError(
                f"{path}, {where}: no space after the key; expected 'key' + ' ' + {d} float32"
            )
        try:
            key = data[position:space].decode("utf-8")
        except UnicodeDecodeError:
            raise VectorFormatError(
                f"{path}, {where}: the key is not UTF-8 text; the file is not in the binary "
                "word2vec format, or its dimension in the header is wrong"
            ) from None
        if not key or any(c.isspace() for c in key):
            raise VectorFormatError(
                f"{path}, {where}: expected a key without spaces. Received: {_shown(key)}"
            )
        if space + 1 + width > len(data):
            raise VectorFormatError(
                f"{path}, {where}: the file ends inside the vector of key {_shown(key)} "
                f"({len(data) - space - 1} of its {width} bytes are there)"
            )
        if key in first_record:
            raise VectorFormatError(
                f"{path}, {where}: key {_shown(key)} repeats record {first_record[key]}; keys "
                "should be unique"
            )
        first_record[key] = row + 1
        values = np.frombuffer(data, dtype="<f4", count=d, offset=space + 1)
        _check_values(path, where, key, values)
        vectors[row] = values
        keys.append(key)
        position = space + 1 + width
    if data[position:].strip():
        raise VectorFormatError(
            f"{path}, byte {position}: the header on line 1 announces {n} vectors of "
            f"dimension {d}, but more data follows them (a wrong header, or a text file: "
            "pass format='word2vec')"
        )
    return np.array(keys, dtype=object), vectors


def _gensim():
    try:
        import gensim.models
    except ImportError as error:
        raise ImportError(
            'gensim KeyedVectors files need gensim: pip install "keras-recae[word2vec]"'
        ) from error
    return gensim.models


def _read_gensim(path: Path) -> tuple[np.ndarray, np.ndarray]:
    models = _gensim()
    try:
        loaded = models.KeyedVectors.load(str(path))
    except Exception as error:  # gensim raises whatever unpickling a wrong file raises.
        raise VectorFormatError(
            f"{path}: not a file written by gensim's KeyedVectors.save "
            f"({type(error).__name__}: {error})"
        ) from None
    kv = getattr(loaded, "wv", loaded)
    if not hasattr(kv, "index_to_key") or not hasattr(kv, "vectors"):
        raise VectorFormatError(f"{path}: holds a {type(loaded).__name__}, not gensim KeyedVectors")
    vectors = np.asarray(kv.vectors)
    return _keys_array(kv.index_to_key, path, "index_to_key"), _float_matrix(vectors, path)


def _keys_array(keys, path, what: str) -> np.ndarray:
    keys = list(keys)
    if keys and all(isinstance(k, (int, np.integer)) and not isinstance(k, bool) for k in keys):
        array = np.array(keys, dtype=np.int64)
    else:
        array = np.array([str(k) for k in keys], dtype=object)
    _check_unique(array, path, what)
    return array


def _check_unique(keys: np.ndarray, path, what: str) -> None:
    first: dict = {}
    for position, key in enumerate(keys.tolist()):
        if key in first:
            raise VectorFormatError(
                f"{path}: {what} {first[key] + 1} and {position + 1} are the same key "
                f"{_shown(str(key))}; keys should be unique"
            )
        first[key] = position


def _float_matrix(vectors: np.ndarray, path, where: str = "") -> np.ndarray:
    if vectors.dtype.kind not in "fiu":
        raise VectorFormatError(
            f"{path}{where}: the vectors should be numbers. Received dtype {vectors.dtype}"
        )
    if vectors.ndim != 2 or vectors.shape[1] < 1:
        raise VectorFormatError(
            f"{path}{where}: the vectors should form an (n, d) array. Received shape "
            f"{vectors.shape}"
        )
    vectors = vectors.astype(np.float32, copy=False)
    finite = np.isfinite(vectors)
    if not finite.all():
        row, column = np.argwhere(~finite)[0]
        raise VectorFormatError(
            f"{path}{where}: row {row + 1}, value {column + 1} is {vectors[row, column]}; "
            "vectors should hold finite numbers"
        )
    return vectors


def _load_array(path: Path, loader):
    try:
        return loader()
    except ValueError as error:
        # np.load refuses object arrays without allow_pickle: strings of Python objects.
        raise VectorFormatError(
            f"{path}: cannot read it as numpy data without pickle ({error})"
        ) from None
    except (OSError, EOFError) as error:
        raise VectorFormatError(f"{path}: not a readable numpy file ({error})") from None


def _read_npz(path: Path) -> tuple[np.ndarray, np.ndarray]:
    with _load_array(path, lambda: np.load(path, allow_pickle=False)) as archive:
        missing = [name for name in ("keys", "vectors") if name not in archive.files]
        if missing:
            raise VectorFormatError(
                f"{path}: expected the arrays 'keys' and 'vectors'; missing "
                f"{', '.join(map(repr, missing))}. It holds: {', '.join(archive.files) or '-'}"
            )
        keys = _load_array(path, lambda: archive["keys"])
        vectors = _load_array(path, lambda: archive["vectors"])
    vectors = _float_matrix(vectors, path, " (array 'vectors')")
    if keys.ndim != 1 or keys.dtype.kind not in "iuU":
        raise VectorFormatError(
            f"{path}: the array 'keys' should be one-dimensional integers or strings. "
            f"Received dtype {keys.dtype}, shape {keys.shape}"
        )
    if len(keys) != len(vectors):
        raise VectorFormatError(
            f"{path}: {len(keys)} keys for {len(vectors)} vectors; expected one key per row"
        )
    keys = vocabulary(keys, "keys")
    _check_unique(keys, path, "keys")
    return keys, vectors


def _read_ids(path: Path) -> np.ndarray:
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: no id list (one key per line) for the vectors; pass ids= or --ids to name it"
        )
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        line = path.read_bytes()[: error.start].count(b"\n") + 1
        raise VectorFormatError(f"{path}, line {line}: not UTF-8 text") from None
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    first_line: dict[str, int] = {}
    for number, raw in enumerate(lines, start=1):
        key = raw.rstrip("\r")
        if not key.strip():
            raise VectorFormatError(f"{path}, line {number}: empty line; expected one key")
        if key in first_line:
            raise VectorFormatError(
                f"{path}, line {number}: key {_shown(key)} repeats line {first_line[key]}; "
                "keys should be unique"
            )
        first_line[key] = number
    return np.array(list(first_line), dtype=object)


def _read_npy(path: Path, ids_path: Path) -> tuple[np.ndarray, np.ndarray]:
    vectors = _float_matrix(_load_array(path, lambda: np.load(path, allow_pickle=False)), path)
    keys = _read_ids(ids_path)
    if len(keys) != len(vectors):
        raise VectorFormatError(
            f"{ids_path}: {len(keys)} keys for the {len(vectors)} rows of {path}; expected one "
            "key per row"
        )
    return keys, vectors


# ---------------------------------------------------------------------------------------
# Writing


def as_keys(keys, n: int | None = None) -> np.ndarray:
    """Keys as an int64 array, or str in an object array; checked one-dimensional and unique."""
    keys = np.asarray(keys)
    if keys.ndim != 1:
        raise ValueError(f"`keys` should be one-dimensional. Received shape {keys.shape}")
    if is_integer_kind(keys):
        keys = keys.astype(np.int64)
    elif keys.dtype.kind in "UO" or keys.size == 0:
        keys = as_strings(keys)
    elif keys.dtype.kind == "S":
        keys = np.array([k.decode("utf-8") for k in keys], dtype=object)
    else:
        raise ValueError(f"`keys` should be integers or strings. Received dtype {keys.dtype}")
    if n is not None and len(keys) != n:
        raise ValueError(f"`keys` should hold one key per vector ({n}). Received: {len(keys)}")
    comparable = keys.astype(str) if keys.dtype == object else keys
    unique, counts = np.unique(comparable, return_counts=True)
    if len(unique) != len(keys):
        raise ValueError(f"`keys` should be unique. Repeated: {list(unique[counts > 1][:5])}")
    return keys


def write_vectors(
    path,
    keys,
    vectors,
    format: str | None = None,
    *,
    ids=None,
    overwrite: bool = False,
) -> Path:
    """Writes item vectors and their keys, to a temporary file renamed into place.

    Args:
        path: path. The file to write.
        keys: array-like of shape `(n,)`. Integer or string keys, unique; the text formats
            need keys without whitespace.
        vectors: array-like of shape `(n, d)`. Written as float32.
        format: str | None. One of `FORMATS`; from the extension of `path` when None.
            Defaults to `None`.
        ids: path | None. Where an `.npy` file's id list goes. Defaults to `None`,
            `default_ids_path(path)`.
        overwrite: bool. Whether existing files may be replaced. Defaults to `False`.

    Returns:
        The path written.

    Raises:
        FileExistsError: when a file to write exists and `overwrite` is False.
        ValueError: for keys or vectors that the format cannot hold.

    Example:

    ```python
    from keras_recae.data import write_vectors

    write_vectors("refined.txt", ["a", "b"], [[0.1, 0.2], [0.3, 0.4]])
    ```
    """
    path = Path(path)
    if format is None:
        format = _EXTENSIONS.get(path.suffix.lower())
        if format is None:
            raise ValueError(
                f"{path}: cannot tell the format from the extension; pass format= one of "
                f"{', '.join(FORMATS)}"
            )
    _check_format(format, path)
    vectors = np.asarray(vectors)
    if vectors.ndim != 2 or vectors.dtype.kind not in "fiu":
        raise ValueError(
            f"`vectors` should be an (n, d) array of numbers. Received dtype {vectors.dtype}, "
            f"shape {vectors.shape}"
        )
    vectors = vectors.astype(np.float32)
    keys = as_keys(keys, len(vectors))
    targets = [path]
    ids_path = None
    if format == "npy":
        ids_path = Path(ids) if ids is not None else default_ids_path(path)
        targets.append(ids_path)
    if format in ("word2vec", "glove", "word2vec-binary") or ids_path is not None:
        for key in keys.tolist():
            text = str(key)
            if not text or any(c.isspace() for c in text):
                raise ValueError(
                    f"The {format} format needs keys without whitespace. Received: {text!r}"
                )
    if not overwrite:
        for target in targets:
            if target.exists():
                raise FileExistsError(f"{target} exists; not overwriting it")
    path.parent.mkdir(parents=True, exist_ok=True)
    if ids_path is not None:
        _atomic(ids_path, lambda file: file.write("".join(f"{k}\n" for k in keys).encode()))
    if format in ("word2vec", "glove"):
        header = format == "word2vec"
        _atomic(path, lambda file: _write_text(file, keys, vectors, header))
    elif format == "word2vec-binary":
        _atomic(path, lambda file: _write_binary(file, keys, vectors))
    elif format == "gensim":
        _write_gensim(path, keys, vectors)
    elif format == "npz":
        stored = keys if keys.dtype.kind == "i" else keys.astype(str)
        _atomic(path, lambda file: np.savez(file, keys=stored, vectors=vectors))
    else:
        _atomic(path, lambda file: np.save(file, vectors))
    return path


def _atomic(path: Path, write) -> None:
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(temporary, "wb") as file:
            write(file)
        os.replace(temporary, path)
    finally:
        if temporary.exists():
            temporary.unlink()


def _write_text(file, keys: np.ndarray, vectors: np.ndarray, header: bool = True) -> None:
    n, d = vectors.shape
    if header:
        file.write(f"{n} {d}\n".encode())
    # Nine significant digits give back every float32 exactly.
    row_format = " ".join(["%.9g"] * d)
    for key, row in zip(keys.tolist(), vectors.tolist()):
        file.write(f"{key} {row_format % tuple(row)}\n".encode())


def _write_binary(file, keys: np.ndarray, vectors: np.ndarray) -> None:
    n, d = vectors.shape
    file.write(f"{n} {d}\n".encode())
    little_endian = vectors.astype("<f4")
    for key, row in zip(keys.tolist(), little_endian):
        file.write(f"{key} ".encode() + row.tobytes() + b"\n")


def _write_gensim(path: Path, keys: np.ndarray, vectors: np.ndarray) -> None:
    models = _gensim()
    kv = models.KeyedVectors(vector_size=vectors.shape[1], dtype=np.float32)
    kv.add_vectors(keys.tolist(), vectors)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        # One file (no separate .npy beside it), so that one rename publishes it.
        kv.save(str(temporary), separately=[])
        os.replace(temporary, path)
    finally:
        if temporary.exists():
            temporary.unlink()
