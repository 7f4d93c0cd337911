"""Reading ratings files by chunks straight into CSR, for one worker or a shard of the users.

`StreamedFile.read` takes a ratings file chunk by chunk (`readers.iter_ratings`) and keeps
each chunk compactly: its distinct user and item ids, and per kept line the two positions
among them (int32) and the rating (float32), 12 bytes a line. Lines a `keep` rule drops (the
other workers' users) leave only their distinct ids, with the largest rating of each. No
frame of the whole file is made; `given_interactions` maps the chunks' ids into the
vocabularies of both files and builds the CSR matrices (a given split), and
`line_positions` gives the lines of one file as positions in its vocabularies (what the
`strong` protocol splits; `timed_lines` adds the timestamps the time-based protocols order
by).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import scipy.sparse as sp

from keras_recae.data import ids
from keras_recae.data.interactions import Interactions, lookup
from keras_recae.data.readers import iter_ratings


@dataclasses.dataclass
class _Chunk:
    """The kept lines of a chunk: distinct ids, each line's positions among them, ratings."""

    users: np.ndarray
    user_index: np.ndarray
    items: np.ndarray
    item_index: np.ndarray
    ratings: np.ndarray
    times: np.ndarray | None = None


@dataclasses.dataclass
class StreamedFile:
    """A ratings file read by chunks (see the module).

    Attributes:
        chunks: list of the kept lines' chunks.
        seen: dict. `"user"` and `"item"`: per chunk, a frame of the distinct ids of all its
            lines (kept or not) and the largest rating of each.
        has_ratings: bool. Whether a line has a rating other than 1.
        max_rating: float. The largest rating (-inf for an empty file).
    """

    chunks: list = dataclasses.field(default_factory=list)
    seen: dict = dataclasses.field(default_factory=lambda: {"user": [], "item": []})
    has_ratings: bool = False
    max_rating: float = -np.inf

    @classmethod
    def read(cls, path, format=None, keep=None, timestamps=False, **options) -> StreamedFile:
        """Reads `path` by chunks (`iter_ratings(path, format, **options)`).

        Args:
            keep: callable | None. Given a chunk's user ids, a boolean mask of the lines to
                keep; None keeps every line.
            timestamps: bool. Keep each line's timestamp too (int64, 8 more bytes a line),
                where the file has them.
        """
        streamed = cls()
        for frame in iter_ratings(path, format, **options):
            if frame.empty:
                continue
            ratings = frame["rating"].to_numpy(np.float32)
            streamed.has_ratings = streamed.has_ratings or bool((ratings != 1.0).any())
            streamed.max_rating = max(streamed.max_rating, float(ratings.max()))
            if keep is not None:
                # The largest rating of each id of every line: an id is kept under a
                # threshold when one of its lines is above it.
                for field in ("user", "item"):
                    seen = frame.groupby(field, sort=False)["rating"].max().reset_index()
                    streamed.seen[field].append(seen)
                kept = keep(frame["user"].to_numpy())
                frame, ratings = frame[kept], ratings[kept]
            users, user_index = np.unique(frame["user"].to_numpy(), return_inverse=True)
            items, item_index = np.unique(frame["item"].to_numpy(), return_inverse=True)
            times = None
            if timestamps and "timestamp" in frame:
                times = frame["timestamp"].to_numpy(np.int64)
            streamed.chunks.append(
                _Chunk(
                    users,
                    user_index.reshape(-1).astype(np.int32),
                    items,
                    item_index.reshape(-1).astype(np.int32),
                    ratings,
                    times,
                )
            )
        return streamed

    def kept_ids(self, field: str, threshold: float | None) -> list:
        """Per chunk, the distinct ids of its kept lines rated above `threshold` (if given)."""
        parts = []
        for chunk in self.chunks:
            distinct = chunk.users if field == "user" else chunk.items
            index = chunk.user_index if field == "user" else chunk.item_index
            if threshold is not None:
                distinct = distinct[np.unique(index[chunk.ratings > threshold])]
            parts.append(distinct)
        return parts


def vocabulary(parts: list) -> np.ndarray:
    """The sorted union of id arrays, int64 if every id is an integer (`parse_ids`).

    The arrays may be of both kinds (each chunk follows the rule on its own): `str` of an
    int64 id is the text it was read from, so the union is the vocabulary the whole files
    would give.
    """
    parts = [part for part in parts if len(part)]
    if not parts:
        return np.zeros(0, np.int64)
    if len({ids.is_integer_kind(part) for part in parts}) > 1:
        parts = [ids.as_strings(part) for part in parts]
    return np.unique(ids.parse_ids(np.unique(np.concatenate(parts))))


def line_positions(file: StreamedFile) -> tuple:
    """Every kept line of a file, in file order, as positions in sorted vocabularies.

    Returns:
        `(users, items, ratings, user_ids, item_ids)`: per line its user's and item's
        positions (int32) in `user_ids` and `item_ids` (the sorted ids of the kept lines,
        `vocabulary`) and its rating (float32). 12 bytes a line; the file's chunks are
        released as they are converted.
    """
    return _lines(file)[:5]


@dataclasses.dataclass
class TimedLines:
    """A log's lines in file order as positions in its sorted vocabularies: what the
    time-based protocols split (`protocols.split_temporal_lines`), 20 bytes a line.
    Positions sort as their ids do, so a split of them is the split of the ids.

    Args:
        users: np.ndarray. Each line's user, a position in `user_ids` (int32).
        items: np.ndarray. Each line's item, a position in `item_ids` (int32).
        ratings: np.ndarray | None. Each line's rating (float32); None: each is 1.0.
        times: np.ndarray | None. Each line's timestamp, seconds (int64); None: the log
            has none.
        user_ids: np.ndarray. The sorted user ids.
        item_ids: np.ndarray. The sorted item ids.
    """

    users: np.ndarray
    items: np.ndarray
    ratings: np.ndarray | None
    times: np.ndarray | None
    user_ids: np.ndarray
    item_ids: np.ndarray


def timed_lines(file: StreamedFile) -> TimedLines:
    """`line_positions` with the lines' timestamps, if the file was read with them."""
    users, items, ratings, user_ids, item_ids, times = _lines(file)
    return TimedLines(users, items, ratings, times, user_ids, item_ids)


def _lines(file: StreamedFile) -> tuple:
    """`line_positions`, and the lines' timestamps (None unless every chunk has them)."""
    user_ids = vocabulary(file.kept_ids("user", None))
    item_ids = vocabulary(file.kept_ids("item", None))
    size = sum(len(chunk.ratings) for chunk in file.chunks)
    timed = bool(file.chunks) and all(chunk.times is not None for chunk in file.chunks)
    users = np.empty(size, np.int32)
    items = np.empty(size, np.int32)
    ratings = np.empty(size, np.float32)
    times = np.empty(size, np.int64) if timed else None
    start = 0
    file.chunks.reverse()
    while file.chunks:
        chunk = file.chunks.pop()
        stop = start + len(chunk.ratings)
        users[start:stop], items[start:stop] = _positions(chunk, user_ids, item_ids)
        ratings[start:stop] = chunk.ratings
        if timed:
            times[start:stop] = chunk.times
        start = stop
    return users, items, ratings, user_ids, item_ids, times


def _positions(chunk: _Chunk, user_ids, item_ids) -> tuple[np.ndarray, np.ndarray]:
    """Each kept line's user and item positions in the vocabularies (-1 where absent)."""
    users = lookup(user_ids, ids.parse_ids(chunk.users))[chunk.user_index]
    items = lookup(item_ids, ids.parse_ids(chunk.items))[chunk.item_index]
    return users, items


def seen_ids(files: list, field: str, threshold: float | None) -> np.ndarray:
    """The distinct ids of all lines of files read with a `keep` rule (kept or not), of
    those with a line rated above `threshold` when given."""
    parts = [part for file in files for part in file.seen[field]]
    if not parts:
        return np.zeros(0, np.int64)
    values = [part[field].to_numpy() for part in parts]
    if len({ids.is_integer_kind(value) for value in values}) > 1:
        values = [ids.as_strings(value) for value in values]
    frame = pd.DataFrame(
        {field: np.concatenate(values), "rating": np.concatenate([p["rating"] for p in parts])}
    )
    largest = frame.groupby(field, sort=False)["rating"].max()
    if threshold is not None:
        largest = largest[largest > threshold]
    return vocabulary([largest.index.to_numpy()])


def given_interactions(
    train: StreamedFile,
    test: StreamedFile | None,
    threshold: float | None,
    item_ids: np.ndarray | None = None,
) -> tuple[Interactions, sp.csr_matrix]:
    """The full train `Interactions` and the test matrix of streamed files, as `split_given`.

    Users are those of the kept lines of either file, items those of either file unless
    `item_ids` gives them; with `threshold`, only lines rated above it are kept, as 1.0. A
    (user, item) pair given twice keeps its later line. The files' kept lines are released
    once they are in the matrices (`chunks` is emptied); their `seen` ids stay.
    """
    files = [train] if test is None else [train, test]
    user_ids = vocabulary([part for file in files for part in file.kept_ids("user", threshold)])
    if item_ids is None:
        item_ids = vocabulary([part for file in files for part in file.kept_ids("item", threshold)])
    matrices = [_matrix(file, user_ids, item_ids, threshold) for file in files]
    for file in files:
        file.chunks.clear()
    test_matrix = matrices[1] if test is not None else sp.csr_matrix(matrices[0].shape)
    return Interactions(matrices[0], user_ids, item_ids), test_matrix


def _matrix(file: StreamedFile, user_ids, item_ids, threshold) -> sp.csr_matrix:
    """The kept lines of a file over the vocabularies, the later line of a pair kept."""
    rows, columns, values = [], [], []
    for chunk in file.chunks:
        row, column = _positions(chunk, user_ids, item_ids)
        ratings = chunk.ratings
        kept = (row >= 0) & (column >= 0)
        if threshold is not None:
            kept &= ratings > threshold
            ratings = np.ones_like(ratings)
        rows.append(row[kept].astype(np.int32))
        columns.append(column[kept].astype(np.int32))
        values.append(ratings[kept])
    shape = (len(user_ids), len(item_ids))
    if not rows:
        return sp.csr_matrix(shape, dtype=np.float32)
    rows, columns, values = np.concatenate(rows), np.concatenate(columns), np.concatenate(values)
    # Stable: the lines of one pair stay in file order, and the last of them is kept.
    order = np.lexsort((columns, rows))
    rows, columns, values = rows[order], columns[order], values[order]
    del order
    last = np.ones(len(rows), dtype=bool)
    last[:-1] = (rows[1:] != rows[:-1]) | (columns[1:] != columns[:-1])
    rows, columns, values = rows[last], columns[last], values[last]
    indptr = np.zeros(shape[0] + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=shape[0]), out=indptr[1:])
    return sp.csr_matrix((values, columns, indptr), shape=shape)
