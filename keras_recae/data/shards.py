"""A worker's shard of the users: each worker of a multi-worker run keeps its own users.

With `--shard-users` (`RunConfig.shard_users`), worker `w` of `W` keeps the users whose id
hashes to `w` (`user_shards`: CRC-32 of the id's text, modulo `W`), so no worker holds the
whole interaction matrix. `read_given_shard` streams the files of a `given` split chunk by
chunk (`keras_recae.data.readers.iter_ratings`) and keeps the shard's lines; what every
worker must agree on is collected from all the lines on the way, a value per distinct user
or item, never per line: the items (the columns of every worker's matrix), which users
each shard has (so that every worker makes as many steps), and whether the train file has
ratings other than 1 (the implicit models' default threshold).

`load_shard` then splits the shard as `load_split` splits the whole data under `given`,
over the items of all workers.
"""

from __future__ import annotations

import dataclasses
import zlib
from pathlib import Path

import numpy as np
import pandas as pd

from keras_recae.data import ids
from keras_recae.data.readers import (
    DEFAULT_CHUNK_ROWS,
    DataFormatError,
    file_format,
    iter_ratings,
)
from keras_recae.errors import ConfigError


def user_shards(user_ids, n_shards: int) -> np.ndarray:
    """The shard of each user id: CRC-32 of its text (UTF-8), modulo `n_shards`.

    The text of an int64 id is its decimal form, so an id read as an integer and the same
    id read as text land on the same shard.

    Args:
        user_ids: array of int64 or str. Raw user ids.
        n_shards: int. The number of shards (workers).

    Returns:
        An int64 array, one shard index in `[0, n_shards)` per id.
    """
    if not isinstance(n_shards, int) or n_shards < 1:
        raise ValueError(f"`n_shards` should be a positive integer. Received: {n_shards!r}")
    texts = ids.as_strings(np.asarray(user_ids))
    if len(texts) == 0:
        return np.zeros(0, np.int64)
    distinct, inverse = np.unique(texts, return_inverse=True)
    codes = np.fromiter(
        (zlib.crc32(text.encode("utf-8")) for text in distinct), np.int64, len(distinct)
    )
    return (codes % n_shards)[inverse.reshape(-1)]


@dataclasses.dataclass(frozen=True)
class ShardedGiven:
    """A worker's part of a `given` split, as `read_given_shard` reads it.

    Attributes:
        train: DataFrame. The shard's lines of the train file (`read_ratings` columns).
        test: DataFrame. The shard's lines of the test file (empty without it).
        items: DataFrame. Every item of either file (`item`), with its largest rating in
            it (`rating`): the columns of every worker, once the threshold is known.
        users: DataFrame. Every user of either file (`user`), with its largest rating
            (`rating`) and its shard (`shard`).
        has_ratings: bool. Whether the train file has a rating other than 1.
        max_rating: float. The largest rating of the train file.
    """

    train: pd.DataFrame
    test: pd.DataFrame
    items: pd.DataFrame
    users: pd.DataFrame
    has_ratings: bool
    max_rating: float

    def item_ids(self, threshold: float | None) -> np.ndarray:
        """The sorted items of all lines, of those rated above `threshold` when given."""
        kept = self.items if threshold is None else self.items[self.items["rating"] > threshold]
        # As `split_given` reads the frames' items: integers if those kept all are.
        return np.unique(ids.parse_ids(kept["item"].to_numpy()))

    def users_per_shard(self, n_shards: int, threshold: float | None) -> list[int]:
        """How many users each shard has, of those rated above `threshold` when given."""
        kept = self.users if threshold is None else self.users[self.users["rating"] > threshold]
        return np.bincount(kept["shard"].to_numpy(), minlength=n_shards).tolist()


def read_given_shard(
    path,
    test,
    shard: int,
    n_shards: int,
    format: str | None = None,
    *,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    user_col: str = "user",
    item_col: str = "item",
    rating_col: str | None = None,
) -> ShardedGiven:
    """Reads shard `shard` of `n_shards` of a given split, streaming the files by chunks.

    Args:
        path: str or path. The train file, or a directory holding `train.txt` and
            `test.txt` (`lightgcn`).
        test: str or path | None. The test file; None for a directory (its `test.txt`),
            or for the train file alone when `path` is a file (tuning reads no test).
        shard: int. This worker's shard, in `[0, n_shards)`.
        n_shards: int. The number of workers.
        format: str | None. As in `read_ratings`; both files are read in it.
        chunk_rows: int. Lines per chunk (`iter_ratings`). Defaults to 1,000,000.
        user_col, item_col, rating_col: as in `read_ratings`.

    Returns:
        A `ShardedGiven`.
    """
    if not 0 <= shard < n_shards:
        raise ValueError(f"`shard` should be in [0, {n_shards}). Received: {shard}")
    path = Path(path)
    if test is None and path.is_dir():
        if not (path / "test.txt").is_file():
            raise DataFormatError(f"{path}: expected a directory holding train.txt and test.txt")
        path, test, format = path / "train.txt", path / "test.txt", format or "lightgcn"
    options = {
        "chunk_rows": chunk_rows,
        "user_col": user_col,
        "item_col": item_col,
        "rating_col": rating_col,
    }
    if test is not None and format is None:
        format = file_format(path)
        if file_format(test) != format:
            raise DataFormatError(
                f"{path} reads as {format} but {test} reads as {file_format(test)}: pass "
                "--format to read both the same way."
            )
    train = _read_file(path, format, shard, n_shards, options)
    tested = _FileShard()
    if test is not None:
        tested = _read_file(Path(test), format, shard, n_shards, options)
    items = _distinct(train.items + tested.items, "item")
    users = _distinct(train.users + tested.users, "user")
    users["shard"] = user_shards(users["user"].to_numpy(), n_shards)
    train_frame, test_frame = _frames(train.kept, tested.kept)
    return ShardedGiven(train_frame, test_frame, items, users, train.has_ratings, train.max_rating)


@dataclasses.dataclass
class _FileShard:
    """One file read for a shard: its kept lines, per chunk its distinct ids, its ratings."""

    kept: list = dataclasses.field(default_factory=list)
    items: list = dataclasses.field(default_factory=list)
    users: list = dataclasses.field(default_factory=list)
    has_ratings: bool = False
    max_rating: float = -np.inf


def _read_file(path: Path, format, shard: int, n_shards: int, options: dict) -> _FileShard:
    part = _FileShard()
    for chunk in iter_ratings(path, format, **options):
        if chunk.empty:
            continue
        part.has_ratings = part.has_ratings or bool((chunk["rating"] != 1.0).any())
        part.max_rating = max(part.max_rating, float(chunk["rating"].max()))
        # The largest rating of each id of the chunk: an id is kept under a threshold when
        # one of its lines is above it.
        for field, seen in (("item", part.items), ("user", part.users)):
            seen.append(chunk.groupby(field, sort=False)["rating"].max().reset_index())
        part.kept.append(chunk[user_shards(chunk["user"].to_numpy(), n_shards) == shard])
    return part


def _one_kind(columns: list) -> list:
    """Id arrays in one kind: strings if any is (`str` of an int64 id is its text)."""
    if any(not ids.is_integer_kind(column) for column in columns):
        return [ids.as_strings(column) for column in columns]
    return [np.asarray(column, dtype=np.int64) for column in columns]


def _distinct(parts: list, field: str) -> pd.DataFrame:
    """The distinct ids of per-chunk frames (`field`, `rating`), each with its largest rating."""
    if not parts:
        return pd.DataFrame({field: np.zeros(0, np.int64), "rating": np.zeros(0, np.float32)})
    values = _one_kind([part[field].to_numpy() for part in parts])
    frame = pd.DataFrame(
        {field: np.concatenate(values), "rating": np.concatenate([p["rating"] for p in parts])}
    )
    return frame.groupby(field, sort=True)["rating"].max().reset_index()


def _frames(train: list, test: list) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The kept chunks of each file as one frame, each id column of one kind."""
    chunks = train + test
    if not chunks:
        raise DataFormatError("no line of the data belongs to this shard")
    columns = {
        field: _one_kind([chunk[field].to_numpy() for chunk in chunks])
        for field in ("user", "item")
    }
    pieces = [
        chunk.assign(**{field: columns[field][i] for field in columns})
        for i, chunk in enumerate(chunks)
    ]
    train_frame = pd.concat(pieces[: len(train)], ignore_index=True) if train else None
    test_frame = pd.concat(pieces[len(train) :], ignore_index=True) if test else None
    if train_frame is None:
        train_frame = test_frame.iloc[:0]
    if test_frame is None:
        test_frame = train_frame.iloc[:0]
    return train_frame, test_frame


@dataclasses.dataclass(frozen=True)
class ShardInfo:
    """Which shard of the users a worker holds.

    Attributes:
        shard: int. This worker's shard.
        users: tuple of int. The users (rows of the train matrix) of every shard.
    """

    shard: int
    users: tuple

    @property
    def n_shards(self) -> int:
        return len(self.users)

    @property
    def n_users(self) -> int:
        return int(sum(self.users))


def load_shard(spec, shard: int, n_shards: int, default_validation: float, read_test=True):
    """`load_split` of a worker's shard of the users, for implicit models under `given`.

    The shard's lines are split as `load_split` splits all of them (the same items, the
    same threshold); its validation part is drawn with the spec's seed from the shard's
    rows, so it is not the validation part of an unsharded run.

    Returns:
        `(split, full_train, info)`: as `load_split`, and a `ShardInfo`.
    """
    from keras_recae.data.fetch import fetch, is_public_dataset
    from keras_recae.data.protocols import given_full_train, split_given
    from keras_recae.data.spec import as_config_error, implicit_threshold, is_given_data

    if spec.data is None:
        raise ConfigError("--data is needed: a ratings file or directory")
    if is_public_dataset(spec.data):
        spec = spec.updated(data=str(fetch(spec.data)))
    if spec.protocol not in (None, "given") or not is_given_data(spec):
        raise ConfigError(
            "--shard-users splits the users of a given split among the workers: pass --test "
            "(or a directory holding train.txt and test.txt); the other protocols hold out "
            "users or lines across all of them"
        )
    test = spec.test if read_test else None
    path = Path(spec.data)
    if not read_test and path.is_dir():
        path = path / "train.txt"
    columns = {
        "user_col": spec.user_col or "user",
        "item_col": spec.item_col or "item",
        "rating_col": spec.rating_col,
    }
    format = spec.format or ("lightgcn" if path.suffix == ".txt" else None)
    read = read_given_shard(path, test, shard, n_shards, format, **columns)
    threshold = implicit_threshold(spec, False, read.has_ratings, read.max_rating)
    fraction = spec.validation_fraction
    if fraction is None:
        fraction = default_validation
    item_ids = read.item_ids(threshold)
    with as_config_error(spec):
        split = split_given(
            read.train,
            read.test,
            binarize_threshold=threshold,
            validation_fraction=fraction,
            seed=spec.seed or 0,
            item_ids=item_ids,
        )
        full = None
        if fraction:
            full = given_full_train(
                read.train, read.test, binarize_threshold=threshold, item_ids=item_ids
            )
    if not read_test:
        split = dataclasses.replace(split, test=None)
    info = ShardInfo(shard, tuple(read.users_per_shard(n_shards, threshold)))
    if split.train.n_users != info.users[shard]:
        raise AssertionError(
            f"shard {shard}: {split.train.n_users} users in its matrix, {info.users[shard]} "
            "counted while reading"
        )
    return split, full, info
