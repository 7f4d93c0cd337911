"""Property-based tests of the readers: any file gives the right frame or a `DataFormatError`
that names the file, never another exception and never a silently wrong frame."""

import math
import os
import tempfile
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from keras_recae.data.readers import DataFormatError, read_ratings

INT64_MAX = 2**63 - 1
# Field values a rating file may hold, well-formed or not.
FIELDS = st.one_of(
    st.integers(min_value=-5, max_value=2000).map(str),
    st.integers(min_value=2**62, max_value=2**66).map(str),
    st.sampled_from(["nan", "NaN", "inf", "-inf", "", " ", "1.5", "-3", "4.0", "1e3", "x", "١"]),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.text(max_size=4),
)
# A bounded run in the test suite; `bash benchmarks/fuzz.sh readers` (KERAS_RECAE_FUZZ=long)
# tries many more inputs and counts them (the `fuzz_counts` fixture).
settings.register_profile("readers-suite", max_examples=80, deadline=None)
settings.register_profile("readers-long", max_examples=3000, deadline=None)
SETTINGS = settings(
    settings.get_profile(f"readers-{os.environ.get('KERAS_RECAE_FUZZ', 'suite')}"),
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


def _int64(text):
    try:
        value = int(text)
    except ValueError:
        return None
    return value if -INT64_MAX - 1 <= value <= INT64_MAX else None


def _rating(text):
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def reference_ml100k(lines):
    """The rows a tab-separated MovieLens file holds, parsed independently; None if bad."""
    rows = []
    for line in lines:
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) == 5 and fields[4] == "":
            fields = fields[:4]  # one trailing tab is accepted
        if len(fields) != 4:
            return None
        user, item, timestamp = _int64(fields[0]), _int64(fields[1]), _int64(fields[3])
        rating = _rating(fields[2])
        if None in (user, item, rating, timestamp):
            return None
        rows.append((user, item, rating, timestamp))
    return rows or None


def write(directory, name, data: bytes) -> Path:
    path = Path(directory) / name
    path.write_bytes(data)
    return path


def check(path, frame_or_error, reference):
    if isinstance(frame_or_error, DataFormatError):
        assert str(frame_or_error).startswith(str(path)), frame_or_error
        assert reference is None, f"refused a well-formed file: {frame_or_error}"
        return
    frame = frame_or_error
    assert reference is not None, "parsed a malformed file without a word"
    assert len(frame) == len(reference)
    # Ids compared as Python integers: float64 cannot hold every int64.
    assert frame["user"].tolist() == [row[0] for row in reference]
    assert frame["item"].tolist() == [row[1] for row in reference]
    ratings = np.array([row[2] for row in reference], dtype=np.float64).astype(np.float32)
    np.testing.assert_allclose(frame["rating"].to_numpy(), ratings)
    assert np.isfinite(frame["rating"].to_numpy()).all()


def read(path, format, counts):
    try:
        frame = read_ratings(path, format)
    except DataFormatError as error:
        counts[format]["refused with the file named"] += 1
        return error
    counts[format]["parsed"] += 1
    return frame


@SETTINGS
@given(
    rows=st.lists(st.lists(FIELDS, min_size=3, max_size=5), min_size=0, max_size=6),
    newline=st.sampled_from(["\n", "\r\n"]),
    bom=st.booleans(),
)
def test_movielens_100k_files(fuzz_counts, rows, newline, bom):
    lines = ["\t".join(fields) for fields in rows]
    text = newline.join(lines) + (newline if lines else "")
    data = (b"\xef\xbb\xbf" if bom else b"") + text.encode("latin-1", errors="replace")
    decoded = data.decode("latin-1")
    with tempfile.TemporaryDirectory() as directory:
        path = write(directory, "u.data", data)
        result = read(path, "ml-100k", fuzz_counts)
        reference = reference_ml100k(decoded.replace("\r\n", "\n").split("\n"))
        check(path, result, reference)


def reference_csv(lines):
    """The rows of a `user,item,rating` CSV parsed independently; None if it is malformed."""
    if not lines or lines[0] != "user,item,rating":
        return None
    rows = []
    for line in lines[1:]:
        if line == "":
            continue
        fields = line.split(",")
        if len(fields) != 3 or "" in fields[:2] or any(f != f.strip() for f in fields[:2]):
            return None
        users = [_int64(fields[0]), _int64(fields[1])]
        rating = _rating(fields[2])
        if None in users or rating is None or any(f != str(int(f)) for f in fields[:2]):
            return None
        rows.append((users[0], users[1], rating, 0))
    return rows or None


@SETTINGS
@given(
    rows=st.lists(
        st.lists(
            st.integers(min_value=-3, max_value=10**6).map(str) | FIELDS, min_size=2, max_size=4
        ),
        min_size=0,
        max_size=6,
    ),
    header=st.sampled_from(["user,item,rating", "u,i,r", ""]),
)
def test_csv_files_with_integer_ids(fuzz_counts, rows, header):
    lines = [header] + [",".join(fields) for fields in rows]
    text = "\n".join(lines) + "\n"
    with tempfile.TemporaryDirectory() as directory:
        path = write(directory, "ratings.csv", text.encode("utf-8", errors="surrogatepass"))
        result = read(path, "csv", fuzz_counts)
        if isinstance(result, DataFormatError):
            assert str(result).startswith(str(path)), result
            return
        # A parse: every rating finite, and the frame matches when the ids are canonical.
        assert np.isfinite(result["rating"].to_numpy()).all()
        reference = reference_csv(text.split("\n")[:-1])
        if reference is not None:
            check(path, result, reference)


@SETTINGS
@given(
    data=st.binary(max_size=200),
    name=st.sampled_from(["u.data", "ratings.csv", "train.txt", "ratings.dat"]),
)
def test_random_bytes_are_a_parse_or_a_clear_error(fuzz_counts, data, name):
    formats = {
        "u.data": "ml-100k",
        "ratings.csv": "csv",
        "train.txt": "lightgcn",
        "ratings.dat": "ml-1m",
    }
    with tempfile.TemporaryDirectory() as directory:
        path = write(directory, name, data)
        result = read(path, formats[name], fuzz_counts)
        if isinstance(result, DataFormatError):
            assert str(result).startswith(str(path)), result
        else:
            assert len(result) > 0 and np.isfinite(result["rating"].to_numpy()).all()
