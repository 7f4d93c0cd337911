"""Readers for rating files: MovieLens, LightGCN train/test splits and generic tables.

Every reader returns a `pandas.DataFrame` in file order with the columns `user`, `item`,
`rating` (float32; 1.0 where the format has no ratings) and, where the format has one,
`timestamp` (int64). Raw ids are kept as the file has them: int64 when every id is an
integer, else strings.

Parsing is vectorised (pandas' C parser, or one `str.split` per line for LightGCN files).
Only when that fails is the file scanned line by line, to name the first bad line.
"""

from __future__ import annotations

import csv
import dataclasses
import os
import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from keras_recae.data.ids import parse_ids

FORMATS = ("ml-100k", "ml-1m", "ml-20m", "lightgcn", "csv", "tsv", "parquet")
FORMAT_ALIASES = {
    "ml-10m": "ml-1m",
    "ml-25m": "ml-20m",
    "ml-latest": "ml-20m",
    "ml-latest-small": "ml-20m",
}
# The file a MovieLens directory holds its ratings in, by format.
_DIRECTORY_FILES = {"ml-100k": "u.data", "ml-1m": "ratings.dat", "ml-20m": "ratings.csv"}
_ML100K_FILE = re.compile(r"^u(\.data|[0-9a-z]*\.(base|test))$")

_USER_NAMES = ("user", "user_id", "userid")
_ITEM_NAMES = ("item", "item_id", "itemid", "movie_id", "movieid")
_RATING_NAMES = ("rating",)
_TIMESTAMP_NAMES = ("timestamp",)


class DataFormatError(ValueError):
    """A data file is missing, empty or not in the expected format."""


@dataclasses.dataclass(frozen=True)
class _Delimited:
    """A headerless `user item rating timestamp` layout with integer ids."""

    sep: str
    description: str
    encoding: str


_LAYOUTS = {
    "ml-100k": _Delimited("\t", "tab-separated fields (user item rating timestamp)", "latin-1"),
    "ml-1m": _Delimited(
        "::", "'::'-separated fields (UserID::MovieID::Rating::Timestamp)", "latin-1"
    ),
}


def read_ratings(
    path: str | os.PathLike,
    format: str | None = None,
    *,
    user_col: str = "user",
    item_col: str = "item",
    rating_col: str | None = None,
    timestamp_col: str | None = None,
    sep: str | None = None,
) -> pd.DataFrame:
    """Reads a ratings file into a frame in file order.

    The format is taken from the file name (or, for a directory, from the ratings file it
    holds) unless `format` names it:

    - `ml-100k`: tab-separated `user item rating timestamp` without a header (`u.data`,
      `u1.base`, `ua.test`, ...). A directory holding `u.data` reads it.
    - `ml-1m` (also `ml-10m`): `UserID::MovieID::Rating::Timestamp` (`ratings*.dat`). A
      directory holding `ratings.dat` reads it.
    - `ml-20m` (also `ml-25m`, `ml-latest`): `ratings.csv` with the header
      `userId,movieId,rating,timestamp`.
    - `lightgcn`: `train.txt` / `test.txt`, one line per user, `user item item ...`. One row
      per (user, item) pair, rating 1.0. A directory holding both is a given split: read it
      with `read_given`.
    - `csv`, `tsv`, `parquet`: tables with a header.

    Args:
        path: str or path. The file, or a MovieLens directory.
        format: str | None. One of `FORMATS` (or an alias such as `ml-10m`). Defaults to
            detection from the path.
        user_col: str. Table formats: the user column. Left at `"user"`, a column named
            `user`, `user_id` or `userid` (any case) is taken.
        item_col: str. Table formats: the item column. Left at `"item"`, a column named
            `item`, `item_id`, `itemid`, `movie_id` or `movieid` (any case) is taken.
        rating_col: str | None. Table formats: the rating column. Defaults to a column named
            `rating` (any case) if there is one, else every rating is 1.0.
        timestamp_col: str | None. Table formats: the timestamp column. Defaults to a column
            named `timestamp` (any case) if there is one.
        sep: str | None. `csv` and `tsv`: the field separator. Defaults to `,` and a tab.

    Returns:
        A `pandas.DataFrame` with columns `user`, `item`, `rating` and, if the file has
        timestamps, `timestamp`.

    Raises:
        DataFormatError: the file is missing, empty or malformed; the message names the file,
            the line and what was expected.

    Example:

    ```python
    from keras_recae.data.readers import read_ratings

    frame = read_ratings("ml-100k/u1.base")
    pairs = read_ratings("ml-1m/positives_ge4.tsv", user_col="UserID", item_col="MovieID")
    ```
    """
    columns = {
        "user_col": user_col,
        "item_col": item_col,
        "rating_col": rating_col,
        "timestamp_col": timestamp_col,
    }
    (frame,) = _frames(path, format, None, sep, columns)
    return frame


def _frames(path, format, chunk_rows: int | None, sep, columns: dict):
    """The frames of a file: by chunks of about `chunk_rows` lines, or one (None)."""
    file, format = _resolve(path, format)
    if format == "parquet":
        if chunk_rows is None:
            yield _read_parquet(file, **columns)
        else:
            yield from _iter_parquet(file, chunk_rows, **columns)
        return
    try:
        if format == "lightgcn":
            yield from _iter_lightgcn(file, chunk_rows)
        elif format in _LAYOUTS:
            yield _read_delimited(file, _LAYOUTS[format])
        else:
            if sep is None:
                sep = "\t" if format == "tsv" else ","
            if chunk_rows is None:
                yield _read_text_table(file, sep, columns)
            else:
                yield from _iter_text_table(file, sep, chunk_rows, columns)
    except UnicodeDecodeError as error:
        raise DataFormatError(_undecodable(file, error)) from None


def _undecodable(path: Path, error: UnicodeDecodeError) -> str:
    """Names the first line of `path` that is not text in the error's encoding."""
    with open(path, "rb") as file:
        for number, line in enumerate(file, start=1):
            try:
                line.decode(error.encoding)
            except UnicodeDecodeError as line_error:
                return (
                    f"{path}, line {number}: expected {error.encoding} text, found the byte "
                    f"{line[line_error.start : line_error.start + 1]!r} at column "
                    f"{line_error.start + 1} (save the file as UTF-8, or use a format of "
                    "another encoding)"
                )
    return f"{path}: expected {error.encoding} text ({error.reason})"


# Rows per chunk of `iter_ratings`: a chunk's frame takes a few tens of MB.
DEFAULT_CHUNK_ROWS = 1_000_000


def iter_ratings(
    path: str | os.PathLike,
    format: str | None = None,
    *,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    user_col: str = "user",
    item_col: str = "item",
    rating_col: str | None = None,
    timestamp_col: str | None = None,
    sep: str | None = None,
):
    """Reads a ratings file in chunks: frames as `read_ratings` returns them, in file order.

    `lightgcn` files are read by lines, Parquet files by record batches (`pyarrow`'s
    `iter_batches`) and `csv`, `tsv` and `ml-20m` tables by pandas' chunked reader, so
    no frame of the whole file is ever made: memory follows `chunk_rows`. The headerless
    MovieLens layouts (`ml-100k`, `ml-1m`) are read whole and given as one chunk.

    The ids of each chunk follow the int64-or-string rule on their own: a chunk of
    integer ids gives int64, one holding any other id strings. `str` of an int64 id is
    the text it was read from, so putting the chunks' ids in one kind gives the ids
    `read_ratings` gives.

    Args:
        path: str or path. As in `read_ratings`.
        format: str | None. As in `read_ratings`.
        chunk_rows: int. Rows (pairs, for `lightgcn`) per chunk, about. Defaults to
            1,000,000.
        user_col, item_col, rating_col, timestamp_col, sep: as in `read_ratings`.

    Yields:
        `pandas.DataFrame` chunks with the columns of `read_ratings`.

    Raises:
        DataFormatError: as `read_ratings`, naming the line (text formats) or the row
            (Parquet) of the first bad value.
    """
    if not isinstance(chunk_rows, int) or isinstance(chunk_rows, bool) or chunk_rows < 1:
        raise ValueError(f"`chunk_rows` should be a positive integer. Received: {chunk_rows!r}")
    columns = {
        "user_col": user_col,
        "item_col": item_col,
        "rating_col": rating_col,
        "timestamp_col": timestamp_col,
    }
    yield from _frames(path, format, chunk_rows, sep, columns)


def read_given(
    path: str | os.PathLike,
    test: str | os.PathLike | None = None,
    format: str | None = None,
    *,
    user_col: str = "user",
    item_col: str = "item",
    rating_col: str | None = None,
    timestamp_col: str | None = None,
    sep: str | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Reads a given train/test split: a LightGCN directory, or a train file and a test file.

    Args:
        path: str or path. A directory holding `train.txt` and `test.txt`, or the train file
            (`u1.base`, `train.txt`, ...).
        test: str or path | None. The test file (`u1.test`, ...). Required unless `path` is
            a directory.
        format: str | None. As in `read_ratings`; it applies to both files. Defaults to
            detection from the file names, which should agree.
        user_col, item_col, rating_col, timestamp_col, sep: as in `read_ratings`.

    Returns:
        The train frame and the test frame, as `read_ratings` returns them.

    Example:

    ```python
    from keras_recae.data.readers import read_given

    train, test = read_given("gowalla")
    train, test = read_given("ml-100k/u1.base", "ml-100k/u1.test")
    ```
    """
    options = {
        "user_col": user_col,
        "item_col": item_col,
        "rating_col": rating_col,
        "timestamp_col": timestamp_col,
        "sep": sep,
    }
    path = Path(path)
    if test is None:
        if path.is_dir():
            train_file, test_file = path / "train.txt", path / "test.txt"
            if not (train_file.is_file() and test_file.is_file()):
                raise DataFormatError(
                    f"{path}: expected a directory holding train.txt and test.txt, found "
                    f"{_listing(path)}. Pass the train file and the test file instead."
                )
            train = read_ratings(train_file, format or "lightgcn", **options)
            return train, read_ratings(test_file, format or "lightgcn", **options)
        if not path.exists():
            raise DataFormatError(f"{path}: no such file or directory.")
        example = ""
        if path.suffix == ".base":
            example = f", e.g. read_given({str(path)!r}, {str(path.with_suffix('.test'))!r})"
        raise DataFormatError(
            f"{path}: a given split needs its test file too: pass it as `test`{example}."
        )
    if format is None:
        _, train_format = _resolve(path, None)
        _, test_format = _resolve(test, None)
        if train_format != test_format:
            raise DataFormatError(
                f"{path} reads as {train_format} but {test} reads as {test_format}: "
                f"pass `format=` to read both the same way."
            )
        format = train_format
    return read_ratings(path, format, **options), read_ratings(test, format, **options)


def file_format(path: str | os.PathLike, format: str | None = None) -> str:
    """The format `read_ratings` reads `path` in: `format` checked, or detected."""
    return _resolve(path, format)[1]


def _resolve(path, format: str | None) -> tuple[Path, str]:
    """The file to read and its format."""
    path = Path(path)
    if format is not None:
        if format.lower() not in FORMATS and format.lower() not in FORMAT_ALIASES:
            raise DataFormatError(
                f"Unknown format {format!r}. Known formats: {', '.join(FORMATS)} "
                f"(also {', '.join(FORMAT_ALIASES)})."
            )
        format = FORMAT_ALIASES.get(format.lower(), format.lower())
    if not path.exists():
        raise DataFormatError(f"{path}: no such file or directory.")
    if path.is_dir():
        return _resolve_directory(path, format)
    return path, format or _detect(path)


def _resolve_directory(path: Path, format: str | None) -> tuple[Path, str]:
    candidates = _DIRECTORY_FILES if format is None else {}
    if format in _DIRECTORY_FILES:
        candidates = {format: _DIRECTORY_FILES[format]}
    for name, file_name in candidates.items():
        if (path / file_name).is_file():
            return path / file_name, name
    if (path / "train.txt").is_file() and format in (None, "lightgcn"):
        raise DataFormatError(
            f"{path}: holds a given split (train.txt, test.txt): read it with read_given, "
            f"or pass one of its files."
        )
    if format is not None:
        expected = _DIRECTORY_FILES.get(format)
        wanted = f"a {expected}" if expected else f"a {format} file path, not a directory"
        raise DataFormatError(f"{path}: expected {wanted}, found {_listing(path)}.")
    raise DataFormatError(
        f"{path}: cannot tell the format of this directory (found {_listing(path)}). "
        f"Known formats: {', '.join(FORMATS)}; a directory should hold u.data, ratings.dat, "
        f"ratings.csv, or train.txt and test.txt."
    )


def _detect(path: Path) -> str:
    name = path.name.lower()
    suffix = path.suffix.lower()
    if _ML100K_FILE.match(name):
        return "ml-100k"
    if name.startswith("ratings") and suffix == ".dat":
        return "ml-1m"
    if name == "ratings.csv":
        return "ml-20m"
    by_suffix = {".txt": "lightgcn", ".csv": "csv", ".tsv": "tsv", ".parquet": "parquet"}
    if suffix in by_suffix:
        return by_suffix[suffix]
    raise DataFormatError(
        f"{path}: cannot tell the format from the file name. Pass `format=`, one of: "
        f"{', '.join(FORMATS)}."
    )


def _listing(path: Path) -> str:
    names = sorted(child.name for child in path.iterdir())
    if not names:
        return "nothing"
    shown = ", ".join(names[:10])
    return shown + (f" and {len(names) - 10} more" if len(names) > 10 else "")


def _read_delimited(path: Path, layout: _Delimited) -> pd.DataFrame:
    """Reads a headerless `user item rating timestamp` file with integer ids."""
    # A one-character separator keeps pandas on its C parser: `::` splits into 7 fields with
    # empty ones between. One spare column catches lines with a field too many.
    single = layout.sep[0]
    stride = len(layout.sep)
    n_columns = 3 * stride + 1
    names = [f"c{i}" for i in range(n_columns + 1)]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", pd.errors.ParserWarning)
            table = pd.read_csv(
                path,
                sep=single,
                header=None,
                names=names,
                index_col=False,
                engine="c",
                quoting=csv.QUOTE_NONE,
                encoding=layout.encoding,
                # Only empty fields are missing: "nan" or "NA" in a field is text, so a
                # line's spare field or a rating spelled "nan" is caught, not taken for a gap.
                keep_default_na=False,
                na_values=[""],
            )
    except pd.errors.EmptyDataError:
        raise DataFormatError(f"{path}: the file is empty.") from None
    except (pd.errors.ParserError, pd.errors.ParserWarning, ValueError) as error:
        _scan_delimited(path, layout)
        raise DataFormatError(
            f"{path}: could not parse as {layout.description}: {error}"
        ) from error
    fields = [table[names[i * stride]] for i in range(4)]
    gaps = [table[name] for i, name in enumerate(names) if i % stride or i == n_columns]
    if fields[2].dtype.kind == "O":
        # Integers past uint64's range are read as text; as ratings they are numbers.
        fields[2] = pd.to_numeric(fields[2], errors="coerce")
    valid = (
        len(table) > 0
        and all(gap.isna().all() for gap in gaps)
        # "u": pandas reads integers past int64's range as uint64; they do not fit.
        and all(fields[i].dtype.kind == "i" for i in (0, 1, 3))
        and fields[2].dtype.kind in "iuf"
        and bool(np.isfinite(_as_float32(fields[2].to_numpy(np.float64))).all())
    )
    if not valid:
        _scan_delimited(path, layout)
        raise DataFormatError(f"{path}: could not parse as {layout.description}.")
    return pd.DataFrame(
        {
            "user": fields[0].to_numpy(np.int64),
            "item": fields[1].to_numpy(np.int64),
            "rating": _as_float32(fields[2].to_numpy(np.float64)),
            "timestamp": fields[3].to_numpy(np.int64),
        }
    )


def _scan_delimited(path: Path, layout: _Delimited) -> None:
    """Raises a `DataFormatError` naming the first malformed line, if there is one."""
    checks = (_is_int, _is_int, _is_number, _is_int)
    expected = (
        "an integer user id",
        "an integer item id",
        "a finite numeric rating",
        "an integer timestamp",
    )
    seen_data = False
    with open(path, encoding=layout.encoding, newline="") as file:
        for number, line in enumerate(file, start=1):
            text = line.rstrip("\r\n")
            if not text.strip():
                continue
            seen_data = True
            fields = text.split(layout.sep)
            if len(fields) != 4:
                raise DataFormatError(
                    f"{path}, line {number}: expected 4 {layout.description}, "
                    f"found {len(fields)}: {text!r}"
                )
            for field, check, what in zip(fields, checks, expected):
                if not check(field):
                    raise DataFormatError(
                        f"{path}, line {number}: expected {what}, found {field!r}: {text!r}"
                    )
    if not seen_data:
        raise DataFormatError(f"{path}: the file is empty.")


def _iter_lightgcn(path: Path, chunk_rows: int | None):
    """`user item item ...` lines, one row per (user, item) pair, by chunks of lines holding
    about `chunk_rows` pairs (None: one)."""
    users, counts, items = [], [], []
    any_line = any_item = False
    with open(path, encoding="utf-8") as file:
        for line in file:
            fields = line.split()
            if not fields:
                continue
            users.append(fields[0])
            counts.append(len(fields) - 1)
            items.extend(fields[1:])
            if chunk_rows is not None and len(items) >= chunk_rows:
                yield _lightgcn_frame(path, users, counts, items)
                any_line, any_item = True, True
                users, counts, items = [], [], []
    any_line = any_line or bool(users)
    any_item = any_item or bool(items)
    if not any_line:
        raise DataFormatError(f"{path}: the file is empty.")
    if not any_item:
        raise DataFormatError(
            f"{path}: no (user, item) pair: every line holds a user id and no item "
            "(expected `user item item ...`)."
        )
    if users:
        yield _lightgcn_frame(path, users, counts, items)


def _lightgcn_frame(path: Path, users: list, counts: list, items: list) -> pd.DataFrame:
    try:
        user_ids = np.array(users).astype(np.int64)
        item_ids = np.array(items, dtype=str).astype(np.int64)
    except (ValueError, OverflowError) as error:
        _scan_lightgcn(path)
        raise DataFormatError(f"{path}: could not parse as lightgcn: {error}") from None
    return pd.DataFrame(
        {
            "user": np.repeat(user_ids, counts),
            "item": item_ids,
            "rating": np.ones(len(item_ids), dtype=np.float32),
        }
    )


def _scan_lightgcn(path: Path) -> None:
    with open(path, encoding="utf-8") as file:
        for number, line in enumerate(file, start=1):
            fields = line.split()
            for position, field in enumerate(fields):
                if not _is_int(field):
                    what = "an integer user id" if position == 0 else "integer item ids"
                    raise DataFormatError(
                        f"{path}, line {number}: expected space-separated integers "
                        f"(user item item ...), {what}, found {field!r}: {line.strip()!r}"
                    )


# Every column is read, and one spare: a line with a field too many fills it (pandas would
# otherwise drop the extra field of some lines without a word).
_SPARE = "\x00spare"


def _text_layout(path: Path, sep: str, columns: dict) -> tuple[dict, list, dict]:
    """The `pd.read_csv` options of a table with a header, its header and chosen columns."""
    options = {"sep": sep, "engine": "c" if len(sep) == 1 else "python"}
    try:
        header = list(pd.read_csv(path, nrows=0, **options).columns)
    except pd.errors.EmptyDataError:
        raise DataFormatError(f"{path}: the file is empty.") from None
    except UnicodeDecodeError:
        raise  # read_ratings names the line
    except (pd.errors.ParserError, ValueError) as error:
        raise DataFormatError(f"{path}, line 1: could not read the header line: {error}") from None
    names = _pick_columns(path, header, **columns)
    options.update(
        {
            "header": None,
            "skiprows": 1,
            "names": [*header, _SPARE],
            "index_col": False,
            # Only empty fields are missing ("nan" and "NA" are text: an id, or a bad rating).
            "keep_default_na": False,
            "na_values": [""],
        }
    )
    return options, header, names


def _read_text_table(path: Path, sep: str, columns: dict) -> pd.DataFrame:
    """A table with a header line; `columns` are `read_ratings`' column arguments."""
    options, header, names = _text_layout(path, sep, columns)
    table = _parsed_table(path, sep, header, names, lambda: pd.read_csv(path, **options))
    for field in ("user", "item"):
        if table[names[field]].dtype.kind == "f":
            # Ids the parser took for floats: read them again as text to keep them verbatim.
            again = pd.read_csv(path, dtype=str, **options)
            table[names[field]] = again[names[field]]
    return _checked_table(path, sep, header, names, table)


def _iter_text_table(path: Path, sep: str, chunk_rows: int, columns: dict):
    """`_read_text_table` by chunks of `chunk_rows` lines; the ids are read as text."""
    options, header, names = _text_layout(path, sep, columns)
    as_text = {names["user"]: str, names["item"]: str}
    chunks = pd.read_csv(path, chunksize=chunk_rows, dtype=as_text, **options)
    any_rows = False
    while True:
        table = _parsed_table(path, sep, header, names, lambda: next(chunks, None))
        if table is None:
            break
        any_rows = any_rows or not table.empty
        yield _checked_table(path, sep, header, names, table, allow_empty=True)
    if not any_rows:
        raise DataFormatError(f"{path}: no rows after the header line.")


def _parsed_table(path, sep, header, names, read):
    """`read()` (a table, or a chunk of one), with parser errors naming the bad line."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", pd.errors.ParserWarning)
            return read()
    except UnicodeDecodeError:
        raise  # read_ratings names the line
    except (pd.errors.ParserError, pd.errors.ParserWarning, ValueError) as error:
        _scan_text_table(path, sep, header, names)
        raise DataFormatError(f"{path}: could not parse as a table: {error}") from None


def _checked_table(path, sep, header, names, table, allow_empty=False) -> pd.DataFrame:
    """The standard columns of a parsed table, a bad field named by its line."""
    if table[_SPARE].notna().any():
        _scan_text_table(path, sep, header, names)
        raise DataFormatError(f"{path}: a line has more fields than the header line.")
    table = table.drop(columns=_SPARE)
    if table.empty and not allow_empty:
        raise DataFormatError(f"{path}: no rows after the header line.")
    try:
        return _finish_table(table, names)
    except _BadColumn as error:
        _scan_text_table(path, sep, header, names)
        raise DataFormatError(f"{path}: {error}") from None


def _scan_text_table(path: Path, sep: str, header: list, names: dict) -> None:
    """Raises a `DataFormatError` naming the first line with a bad field, if there is one."""
    positions = {field: header.index(column) for field, column in names.items()}
    described = sep.join(header)
    kind = {",": "comma", "\t": "tab", ";": "semicolon"}.get(sep, repr(sep))
    with open(path, encoding="utf-8", newline="") as file:
        if len(sep) == 1:
            reader = csv.reader(file, delimiter=sep)
            rows = ((reader.line_num, row) for row in reader)
        else:
            rows = ((number, line.rstrip("\r\n").split(sep)) for number, line in enumerate(file, 1))
        next(rows, None)
        for number, row in rows:
            if not row or row == [""]:
                continue
            shown = sep.join(row)
            if len(row) != len(header):
                raise DataFormatError(
                    f"{path}, line {number}: expected {len(header)} {kind}-separated fields "
                    f"({described}), found {len(row)}: {shown!r}"
                )
            for field, position in positions.items():
                value = row[position]
                if field in ("user", "item") and value == "":
                    raise DataFormatError(
                        f"{path}, line {number}: expected a {field} id in column "
                        f"{header[position]!r}, found an empty field: {shown!r}"
                    )
                if field == "rating" and not _is_number(value):
                    raise DataFormatError(
                        f"{path}, line {number}: expected a finite numeric rating in column "
                        f"{header[position]!r}, found {value!r}: {shown!r}"
                    )
                if field == "timestamp" and not _is_int(value):
                    raise DataFormatError(
                        f"{path}, line {number}: expected an integer timestamp in column "
                        f"{header[position]!r}, found {value!r}: {shown!r}"
                    )


def _read_parquet(path: Path, *, user_col, item_col, rating_col, timestamp_col) -> pd.DataFrame:
    names = _parquet_columns(path, user_col, item_col, rating_col, timestamp_col)
    table = pd.read_parquet(path, columns=list(dict.fromkeys(names.values())))
    if table.empty:
        raise DataFormatError(f"{path}: the file has no rows.")
    return _finished_rows(path, table, names, 0)


def _iter_parquet(path: Path, chunk_rows: int, *, user_col, item_col, rating_col, timestamp_col):
    """`_read_parquet` by record batches of `chunk_rows` rows."""
    import pyarrow.parquet as pq

    names = _parquet_columns(path, user_col, item_col, rating_col, timestamp_col)
    parquet = pq.ParquetFile(path)
    if parquet.metadata.num_rows == 0:
        raise DataFormatError(f"{path}: the file has no rows.")
    offset = 0
    wanted = list(dict.fromkeys(names.values()))
    for batch in parquet.iter_batches(batch_size=chunk_rows, columns=wanted):
        table = batch.to_pandas()
        yield _finished_rows(path, table, names, offset)
        offset += len(table)


def _parquet_columns(path: Path, user_col, item_col, rating_col, timestamp_col) -> dict:
    import pyarrow.parquet as pq

    try:
        header = list(pq.read_schema(path).names)
    except Exception as error:
        raise DataFormatError(f"{path}: not a readable Parquet file ({error}).") from None
    return _pick_columns(path, header, user_col, item_col, rating_col, timestamp_col)


def _finished_rows(path: Path, table: pd.DataFrame, names: dict, offset: int) -> pd.DataFrame:
    """`_finish_table` of rows `offset`... of a Parquet file, a bad row named in the file."""
    try:
        return _finish_table(table, names)
    except _BadColumn as error:
        row = f", row {offset + error.row + 1}" if error.row is not None else ""
        raise DataFormatError(f"{path}{row}: {error}") from None


class _BadColumn(ValueError):
    def __init__(self, message: str, row: int | None = None):
        super().__init__(message)
        self.row = row


def _finish_table(table: pd.DataFrame, names: dict) -> pd.DataFrame:
    """The standard columns from a table's chosen columns, checked."""
    frame = {}
    for field in ("user", "item"):
        column = table[names[field]]
        missing = column.isna().to_numpy()
        if missing.any():
            raise _BadColumn(
                f"expected a {field} id in every row of column {names[field]!r}, found a "
                f"missing value",
                int(np.argmax(missing)),
            )
        frame[field] = parse_ids(column.to_numpy())
    if "rating" in names:
        column = table[names["rating"]]
        ratings = _as_float32(pd.to_numeric(column, errors="coerce").to_numpy(np.float64))
        bad = ~np.isfinite(ratings)
        if bad.any():
            row = int(np.argmax(bad))
            raise _BadColumn(
                f"expected finite numeric ratings in column {names['rating']!r}, found "
                f"{column.iloc[row]!r}",
                row,
            )
        frame["rating"] = ratings.astype(np.float32)
    else:
        frame["rating"] = np.ones(len(table), dtype=np.float32)
    if "timestamp" in names:
        column = table[names["timestamp"]]
        if column.dtype.kind not in "iu":
            values = pd.to_numeric(column, errors="coerce").to_numpy(np.float64)
            bad = ~np.isfinite(values) | (values != np.round(values))
            if bad.any():
                row = int(np.argmax(bad))
                raise _BadColumn(
                    f"expected integer timestamps in column {names['timestamp']!r}, found "
                    f"{column.iloc[row]!r}",
                    row,
                )
            column = values
        frame["timestamp"] = np.asarray(column, dtype=np.int64)
    return pd.DataFrame(frame)


def _pick_columns(path, header, user_col, item_col, rating_col, timestamp_col) -> dict:
    """Maps `user`, `item` and optionally `rating`, `timestamp` to columns of `header`."""
    names = {
        "user": _pick(path, header, "user", user_col, user_col == "user", _USER_NAMES),
        "item": _pick(path, header, "item", item_col, item_col == "item", _ITEM_NAMES),
    }
    for field, given, aliases in (
        ("rating", rating_col, _RATING_NAMES),
        ("timestamp", timestamp_col, _TIMESTAMP_NAMES),
    ):
        column = _pick(path, header, field, given, given is None, aliases, required=False)
        if column is not None:
            names[field] = column
    return names


def _pick(path, header, field, given, guess, aliases, required=True) -> str | None:
    if given is not None and given in header:
        return given
    if guess:
        lowered = [name.lower() for name in header]
        for alias in aliases:
            if alias in lowered:
                return header[lowered.index(alias)]
        if not required:
            return None
        raise DataFormatError(
            f"{path}: no {field} column: expected one named {', '.join(aliases)} (any case), "
            f"or pass `{field}_col=`. Columns present: {', '.join(map(repr, header))}."
        )
    raise DataFormatError(
        f"{path}: no column {given!r} (`{field}_col`). Columns present: "
        f"{', '.join(map(repr, header))}."
    )


_INT64 = np.iinfo(np.int64)


def _is_int(text: str) -> bool:
    """An integer that fits int64 (ids and timestamps are kept as int64)."""
    try:
        value = int(text)
    except ValueError:
        return False
    return _INT64.min <= value <= _INT64.max


def _is_number(text: str) -> bool:
    """A finite number in float32 (ratings are kept as float32): NaN, infinite and
    out-of-range ratings are refused."""
    try:
        value = float(text)
    except ValueError:
        return False
    return bool(np.isfinite(_as_float32(np.array([value]))).all())


def _as_float32(values: np.ndarray) -> np.ndarray:
    """float32 values; past float32's range they become infinite (and are then refused)."""
    with np.errstate(over="ignore"):
        return np.asarray(values, dtype=np.float64).astype(np.float32)
