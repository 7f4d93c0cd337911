"""What data a run reads and how it is split: a typed spec and `load_split`.

The spec's fields are the command line's data flags (`--data`, `--test`, `--protocol`, ...)
and the keys of a run directory's `run.json`; `load_split` applies the protocol defaults
described in DESIGN.md ("Protocols").
"""

from __future__ import annotations

import contextlib
import dataclasses
from pathlib import Path

from keras_recae.data.interactions import Interactions
from keras_recae.data.split import Split
from keras_recae.errors import ConfigError

PROTOCOLS = ("given", "strong", "random", "temporal", "leave-last-out")
# Implicit models keep the ratings above it when the data has ratings (Liang et al. 2018).
DEFAULT_THRESHOLD = 3.5
# The share of interactions held out for model selection under `given` and `random`.
DEFAULT_VALIDATION_FRACTION = 0.1
# `random` holds out this share of the ratings for the test figures.
RANDOM_TEST_FRACTION = 0.1


@dataclasses.dataclass(frozen=True)
class DataSpec:
    """The data of a run and its split.

    Args:
        data: str. A ratings file or directory (a `train.txt`/`test.txt` directory is a
            given split), a public data set's name (`ml-1m`, `gowalla`, ...: see
            `keras_recae.data.fetch.DATASETS`; downloaded once), or `"synthetic"` for the
            built-in data.
        test: str | None. The test file of a given split (e.g. `u1.test`). Defaults to None.
        format: str | None. `ml-100k`, `ml-1m`, `ml-20m`, `lightgcn`, `csv`, `tsv` or
            `parquet`; detected when None. Defaults to None.
        protocol: str | None. `given`, `strong`, `random`, `temporal` or `leave-last-out`;
            None picks `given` when a test file is given, else `random` for explicit-rating
            models and `strong` for the others. Defaults to None.
        heldout_users: int | None. `strong`: validation users, and as many test users;
            None holds out a tenth of the users for each. Defaults to None.
        threshold: float | None. Implicit models keep ratings above it; None means 3.5
            where the data has ratings other than 1. Defaults to None.
        validation_fraction: float | None. `given`, `random` and `temporal`: the share of
            the train interactions held out for model selection (under `temporal` the
            latest); `leave-last-out` holds out the `last_n` before the test targets unless
            it is 0. None means the model's default (0.1, or 0 for closed-form models).
            Defaults to None.
        time_cut: str | None. `temporal`: the share of the interactions before the cut
            (`"0.8"`) or a date (`"2000-12-01"`, UTC). None means 0.8. Defaults to None.
        last_n: int | None. `leave-last-out`: each user's last interactions held out for
            test (and as many before them for validation). None means 1. Defaults to None.
        synthetic_users, synthetic_items, synthetic_interactions: int | None. `synthetic`
            data of this size (`keras_recae.data.synthetic.synthetic_matrix`, generated in
            chunks); None for all three gives the small built-in set. Defaults to None.
        user_col: str | None. Table formats: the user column. Defaults to None (`user`).
        item_col: str | None. Table formats: the item column. Defaults to None (`item`).
        rating_col: str | None. Table formats: the rating column. Defaults to None.
        seed: int | None. Seed of the random hold-outs and of the synthetic data; None
            means 0. Defaults to None.

    Example:

    ```python
    from keras_recae.data.spec import DataSpec, load_split

    split, full_train = load_split(DataSpec("synthetic"))
    ```
    """

    data: str | None = None
    test: str | None = None
    format: str | None = None
    protocol: str | None = None
    heldout_users: int | None = None
    threshold: float | None = None
    validation_fraction: float | None = None
    user_col: str | None = None
    item_col: str | None = None
    rating_col: str | None = None
    seed: int | None = None
    time_cut: str | None = None
    last_n: int | None = None
    synthetic_users: int | None = None
    synthetic_items: int | None = None
    synthetic_interactions: int | None = None

    def __post_init__(self):
        if self.protocol is not None and self.protocol not in PROTOCOLS:
            raise ConfigError(
                f"--protocol should be one of {', '.join(PROTOCOLS)}. Received: {self.protocol}"
            )
        if self.time_cut is not None and self.protocol not in (None, "temporal"):
            raise ConfigError("--time-cut is for --protocol temporal")
        if self.last_n is not None and self.protocol not in (None, "leave-last-out"):
            raise ConfigError("--last-n is for --protocol leave-last-out")

    def to_dict(self) -> dict:
        """The fields as stored in `run.json`."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, content: dict) -> DataSpec:
        """The spec of a `run.json` (other keys, such as the model's, are ignored)."""
        names = {field.name for field in dataclasses.fields(cls)}
        return cls(**{key: value for key, value in content.items() if key in names})

    def updated(self, **changes) -> DataSpec:
        """A copy with the fields of `changes` that are not None replaced."""
        return dataclasses.replace(
            self, **{key: value for key, value in changes.items() if value is not None}
        )


def load_split(
    spec: DataSpec,
    explicit: bool = False,
    default_validation: float = DEFAULT_VALIDATION_FRACTION,
    read_test: bool = True,
) -> tuple[Split, Interactions | None]:
    """Reads the data of `spec` and applies its protocol.

    Args:
        spec: DataSpec. The data and its split.
        explicit: bool. Whether the model predicts ratings (no binarisation; `random` by
            default). Defaults to False.
        default_validation: float. The validation share when `spec` leaves it None.
            Defaults to 0.1.
        read_test: bool. False leaves the test part out: under `given` the test file is
            not even read (the items and users are then those of the train file), under
            the other protocols `split.test` is None. Model selection (the tuner) uses it,
            so that nothing it chooses can depend on the test lines. Defaults to True.

    Returns:
        `(split, full_train)`: the split, and under `given` with a validation share the
        train part with the validation interactions put back (what `retrain` fits on);
        None where it equals `split.train`.
    """
    from keras_recae.data.fetch import fetch, is_public_dataset
    from keras_recae.data.protocols import split_random, split_strong
    from keras_recae.data.readers import read_ratings
    from keras_recae.data.synthetic import synthetic_frame

    if spec.data is None:
        raise ConfigError("--data is needed: a ratings file or directory, or 'synthetic'")
    if is_public_dataset(spec.data):
        # A public data set by name: downloaded once into the Keras cache, then read there.
        spec = spec.updated(data=str(fetch(spec.data)))
    columns = {
        "user_col": spec.user_col or "user",
        "item_col": spec.item_col or "item",
        "rating_col": spec.rating_col,
    }
    seed = spec.seed or 0
    validation_fraction = spec.validation_fraction
    if validation_fraction is None:
        validation_fraction = default_validation
    protocol = spec.protocol
    given_files = is_given_data(spec)
    sizes = (spec.synthetic_users, spec.synthetic_items, spec.synthetic_interactions)
    if any(size is not None for size in sizes) and spec.data != "synthetic":
        raise ConfigError("--synthetic-users/-items/-interactions are for --data synthetic")
    if spec.data == "synthetic" and any(size is not None for size in sizes):
        if None in sizes:
            raise ConfigError(
                "--data synthetic of a size needs --synthetic-users, --synthetic-items and "
                "--synthetic-interactions"
            )
        data = _large_synthetic(*sizes, seed=seed)
        if (protocol or ("random" if explicit else "strong")) == "strong" and not spec.threshold:
            # The matrix's entries as lines: no frame of the pairs (`split_strong_lines`).
            check_protocol_flags(spec, "strong")
            return _without_test(_split_strong_matrix(spec, data), read_test), None
        train_frame = _as_frame(data)
    elif spec.data == "synthetic":
        train_frame = synthetic_frame(seed=seed, explicit=explicit)
    elif given_files:
        # Streamed by chunks straight into CSR: no frame of the whole files.
        if protocol not in (None, "given"):
            raise ConfigError(f"--protocol {protocol} splits one file; --test is only for given")
        check_protocol_flags(spec, "given")
        split, full, _, _ = load_given(spec, explicit, validation_fraction, read_test)
        return split, full
    elif (protocol or ("random" if explicit else "strong")) == "strong":
        # Streamed by chunks into arrays of 12 bytes a line: no frame of the whole file.
        check_protocol_flags(spec, "strong")
        return _without_test(_load_strong(spec, explicit, columns), read_test), None
    elif protocol in ("temporal", "leave-last-out"):
        # Streamed by chunks into arrays of positions and timestamps, 20 bytes a line.
        check_protocol_flags(spec, protocol)
        split, full = _load_timed(spec, protocol, explicit, columns, validation_fraction)
        return _without_test(split, read_test), full
    elif (protocol or "random") == "random":
        # Streamed by chunks straight into CSR, as a given split's train file.
        check_protocol_flags(spec, "random")
        split = _load_random(spec, explicit, columns, validation_fraction, seed)
        return _without_test(split, read_test), None
    else:
        train_frame = read_ratings(spec.data, spec.format, **columns)
    if protocol is None:
        protocol = "random" if explicit else "strong"
    check_protocol_flags(spec, protocol)
    threshold = spec.threshold
    if threshold is not None and not explicit and "rating" not in train_frame:
        raise ConfigError(
            f"--threshold {threshold:g}: {spec.data} has no ratings to compare with it (pairs "
            "only); leave out --threshold"
        )
    if "rating" in train_frame:
        has_ratings = not (train_frame["rating"] == 1.0).all()
        threshold = implicit_threshold(spec, explicit, has_ratings, train_frame["rating"].max())
    if protocol == "given":
        raise ConfigError("--protocol given needs a test file (--test) or a train/test directory")
    if protocol in ("temporal", "leave-last-out"):
        split, full = _split_by_time(
            spec, protocol, train_frame, threshold, explicit, validation_fraction
        )
        return _without_test(split, read_test), full
    if protocol == "strong":
        heldout = spec.heldout_users
        if heldout is None:
            heldout = max(1, train_frame["user"].nunique() // 10)
        with as_config_error(spec):
            split = split_strong(train_frame, n_heldout_users=heldout, threshold=threshold)
        return _without_test(split, read_test), None
    if threshold is not None and not explicit:
        train_frame = train_frame[train_frame["rating"] > threshold].assign(rating=1.0)
    with as_config_error(spec):
        split = split_random(
            train_frame,
            test_fraction=RANDOM_TEST_FRACTION,
            validation_fraction=validation_fraction,
            seed=seed,
        )
    return _without_test(split, read_test), None


def check_protocol_flags(spec: DataSpec, protocol: str) -> None:
    """A flag of another protocol is a mistake, not a no-op (with --protocol left out, the
    protocol is only known once the data is)."""
    for flag, value, owner in (
        ("--time-cut", spec.time_cut, "temporal"),
        ("--last-n", spec.last_n, "leave-last-out"),
        ("--heldout-users", spec.heldout_users, "strong"),
    ):
        if value is not None and protocol != owner:
            raise ConfigError(
                f"{flag} is for --protocol {owner}; this run's protocol is {protocol}"
            )


def is_given_data(spec: DataSpec) -> bool:
    """Whether the spec names a given split: a test file, or a train/test directory."""
    return spec.data != "synthetic" and (
        spec.test is not None
        or (
            Path(spec.data).is_dir()
            and (Path(spec.data) / "train.txt").is_file()
            and spec.protocol != "strong"
        )
    )


def implicit_threshold(
    spec: DataSpec, explicit: bool, has_ratings: bool, max_rating: float
) -> float | None:
    """The threshold the train ratings are binarised at (None: kept as they are).

    `spec.threshold`, checked against the largest train rating, or `DEFAULT_THRESHOLD`
    for an implicit model when the train file has ratings other than 1.
    """
    threshold = spec.threshold
    if threshold is not None and not explicit and not max_rating > threshold:
        raise ConfigError(
            f"--threshold {threshold:g}: no rating of {spec.data} is above it, so no "
            "interaction would be kept"
        )
    if threshold is None and has_ratings and not explicit:
        threshold = DEFAULT_THRESHOLD
    return threshold


# The protocols' parameters that a flag sets: their errors name the flag on the command line.
_PARAMETER_FLAGS = {
    "n_heldout_users": "--heldout-users",
    "validation_fraction": "--validation-fraction",
}


@contextlib.contextmanager
def as_config_error(spec: DataSpec):
    """A protocol's `ValueError` (the data and the flags do not fit) as a `ConfigError`
    naming the data and the flags."""
    try:
        yield
    except ValueError as error:
        text = str(error)
        for name, flag in _PARAMETER_FLAGS.items():
            text = text.replace(f"`{name}`", flag).replace(f"{name}=", f"{flag} ")
        raise ConfigError(f"{spec.data}: {text}") from None


def load_given(spec, explicit: bool, validation_fraction: float, read_test: bool, keep=None):
    """`load_split` of a given split (`spec.test`, or a `train.txt`/`test.txt` directory).

    The files are streamed by chunks into CSR (`keras_recae.data.streaming`); with `keep`
    (a worker's shard of the users), only its users' lines are kept, over the items of all
    lines.

    Returns:
        `(split, full_train, files, threshold)`: as `load_split`, the `StreamedFile`s
        read, and the threshold the lines were kept at (None: all of them).
    """
    from keras_recae.data.protocols import split_given_interactions
    from keras_recae.data.readers import DataFormatError, file_format
    from keras_recae.data.streaming import StreamedFile, given_interactions, seen_ids

    path, test = Path(spec.data), spec.test
    format = spec.format
    if path.is_dir() and test is None:
        path, test, format = path / "train.txt", path / "test.txt", format or "lightgcn"
    if not read_test:
        test = None
    if test is not None and format is None:
        format = file_format(path)
        if file_format(test) != format:
            raise DataFormatError(
                f"{path} reads as {format} but {test} reads as {file_format(test)}: pass "
                "--format to read both the same way."
            )
    columns = {
        "user_col": spec.user_col or "user",
        "item_col": spec.item_col or "item",
        "rating_col": spec.rating_col,
    }
    train_file = StreamedFile.read(path, format, keep, **columns)
    test_file = None if test is None else StreamedFile.read(test, format, keep, **columns)
    threshold = implicit_threshold(spec, explicit, train_file.has_ratings, train_file.max_rating)
    binarize = None if explicit else threshold
    files = [file for file in (train_file, test_file) if file is not None]
    item_ids = None if keep is None else seen_ids(files, "item", binarize)
    with as_config_error(spec):
        full, test_matrix = given_interactions(train_file, test_file, binarize, item_ids)
        split = split_given_interactions(full, test_matrix, validation_fraction, spec.seed or 0)
    if not read_test:
        split = dataclasses.replace(split, test=None)
    return split, (full if validation_fraction else None), files, binarize


def _load_strong(spec: DataSpec, explicit: bool, columns: dict) -> Split:
    """The `strong` split of a ratings file read by chunks (`split_strong_lines`)."""
    from keras_recae.data.protocols import split_strong_lines
    from keras_recae.data.streaming import StreamedFile, line_positions

    file = StreamedFile.read(spec.data, spec.format, **columns)
    threshold = implicit_threshold(spec, explicit, file.has_ratings, file.max_rating)
    users, items, ratings, user_ids, item_ids = line_positions(file)
    heldout = spec.heldout_users
    if heldout is None:
        heldout = max(1, len(user_ids) // 10)
    with as_config_error(spec):
        return split_strong_lines(
            users, items, ratings, user_ids, item_ids, n_heldout_users=heldout, threshold=threshold
        )


def _load_random(spec: DataSpec, explicit: bool, columns: dict, validation_fraction, seed):
    """The `random` split of a ratings file read by chunks (`split_random_interactions`);
    an implicit model's lines are kept above the threshold, as under the other protocols."""
    from keras_recae.data.protocols import split_random_interactions
    from keras_recae.data.streaming import StreamedFile, given_interactions

    file = StreamedFile.read(spec.data, spec.format, **columns)
    threshold = implicit_threshold(spec, explicit, file.has_ratings, file.max_rating)
    with as_config_error(spec):
        data, _ = given_interactions(file, None, None if explicit else threshold)
        return split_random_interactions(
            data,
            test_fraction=RANDOM_TEST_FRACTION,
            validation_fraction=validation_fraction,
            seed=seed,
        )


def _load_timed(spec: DataSpec, protocol: str, explicit: bool, columns: dict, validation_fraction):
    """A time-based split of a ratings file read by chunks into its lines' positions
    (`streaming.timed_lines`), which the protocol splits."""
    from keras_recae.data.streaming import StreamedFile, timed_lines

    file = StreamedFile.read(spec.data, spec.format, timestamps=True, **columns)
    threshold = implicit_threshold(spec, explicit, file.has_ratings, file.max_rating)
    return _split_by_time(
        spec, protocol, timed_lines(file), threshold, explicit, validation_fraction
    )


def _large_synthetic(n_users, n_items, n_interactions, seed) -> Interactions:
    """`synthetic_matrix`, its errors as configuration errors."""
    from keras_recae.data.synthetic import synthetic_matrix

    try:
        return synthetic_matrix(n_users, n_items, n_interactions, seed=seed)
    except ValueError as error:
        raise ConfigError(f"--data synthetic: {error}") from None


def _as_frame(data: Interactions):
    """The frame the protocols split: one row per entry of the matrix, no rating."""
    import numpy as np
    import pandas as pd

    matrix = data.matrix
    return pd.DataFrame(
        {
            "user": np.repeat(data.user_ids, np.diff(matrix.indptr)),
            "item": data.item_ids[matrix.indices],
        }
    )


def _split_strong_matrix(spec: DataSpec, data: Interactions) -> Split:
    """`strong` of a matrix's entries (values 1), taken as lines in row order: positions in
    its sorted ids, 8 bytes a line; the split `split_strong` gives of the same pairs."""
    import numpy as np

    from keras_recae.data.protocols import split_strong_lines

    matrix = data.matrix
    users = np.repeat(np.arange(matrix.shape[0], dtype=np.int32), np.diff(matrix.indptr))
    heldout = spec.heldout_users
    if heldout is None:
        heldout = max(1, int(np.count_nonzero(np.diff(matrix.indptr))) // 10)
    with as_config_error(spec):
        return split_strong_lines(
            users,
            matrix.indices.astype(np.int32, copy=False),
            None,
            data.user_ids,
            data.item_ids,
            n_heldout_users=heldout,
            threshold=None,
        )


def _split_by_time(spec, protocol, data, threshold, explicit, validation_fraction):
    """`temporal` and `leave-last-out` of a frame or of a streamed file's lines
    (`streaming.TimedLines`), with their errors as configuration errors."""
    from keras_recae.data import protocols
    from keras_recae.data.streaming import TimedLines

    streamed = isinstance(data, TimedLines)
    binarize = None if explicit else threshold
    with as_config_error(spec):
        if protocol == "temporal":
            split_by_cut = protocols.split_temporal_lines if streamed else protocols.split_temporal
            split, full = split_by_cut(
                data,
                cut=spec.time_cut if spec.time_cut is not None else 0.8,
                validation_fraction=validation_fraction,
                threshold=binarize,
            )
        else:
            split_last = (
                protocols.split_leave_last_out_lines if streamed else protocols.split_leave_last_out
            )
            split, full = split_last(
                data,
                n=spec.last_n if spec.last_n is not None else 1,
                validation=bool(validation_fraction),
                threshold=binarize,
            )
    # A final fit uses `full` only when validation took part of the train part.
    return split, (full if split.validation is not None else None)


def _without_test(split: Split, read_test: bool) -> Split:
    return split if read_test else dataclasses.replace(split, test=None)
