import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from keras_recae.data.readers import FORMATS, DataFormatError, read_given, read_ratings

SHARED_DATA = Path(__file__).parents[2].parent / "shared" / "data"

ML100K_LINES = ["3\t10\t5\t874965758", "1\t2\t3\t876893171", "2\t10\t4\t878542960"]


def write(path: Path, lines, encoding="utf-8") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(line + "\n" for line in lines), encoding=encoding)
    return path


def error_at(path: Path, line: int, expected: str) -> str:
    """A `match` pattern for an error naming `path`, the line and the expectation."""
    return re.escape(f"{path}, line {line}: expected {expected}")


def test_ml100k_values_dtypes_and_file_order(tmp_path):
    frame = read_ratings(write(tmp_path / "u1.base", ML100K_LINES))
    assert list(frame.columns) == ["user", "item", "rating", "timestamp"]
    assert frame["user"].tolist() == [3, 1, 2]
    assert frame["item"].tolist() == [10, 2, 10]
    assert frame["rating"].tolist() == [5.0, 3.0, 4.0]
    assert frame["timestamp"].tolist() == [874965758, 876893171, 878542960]
    assert frame.dtypes.tolist() == [np.int64, np.int64, np.float32, np.int64]


def test_ml100k_directory_reads_u_data(tmp_path):
    write(tmp_path / "u.data", ML100K_LINES)
    write(tmp_path / "u1.base", ML100K_LINES[:1])
    assert len(read_ratings(tmp_path)) == 3
    assert len(read_ratings(tmp_path, "ml-100k")) == 3


def test_ml1m_ratings_dat_and_directory(tmp_path):
    lines = ["1::1193::5::978300760", "1::661::3::978302109", "12::914::3::978301968"]
    path = write(tmp_path / "ratings.dat", lines, encoding="latin-1")
    frame = read_ratings(path)
    assert frame["user"].tolist() == [1, 1, 12]
    assert frame["item"].tolist() == [1193, 661, 914]
    assert frame["rating"].tolist() == [5.0, 3.0, 3.0]
    assert frame["timestamp"].tolist() == [978300760, 978302109, 978301968]
    assert read_ratings(tmp_path).equals(frame)


def test_ml10m_half_star_ratings_in_a_ratings_prefixed_file(tmp_path):
    path = write(tmp_path / "ratings_users0001-2999.dat", ["5::122::3.5::838985046"])
    assert read_ratings(path)["rating"].tolist() == [3.5]
    assert read_ratings(path, "ml-10m")["rating"].tolist() == [3.5]


def test_ml20m_ratings_csv(tmp_path):
    path = write(
        tmp_path / "ratings.csv",
        ["userId,movieId,rating,timestamp", "1,2,3.5,1112486027", "1,29,4.0,1112484676"],
    )
    frame = read_ratings(path)
    assert frame["user"].tolist() == [1, 1]
    assert frame["item"].tolist() == [2, 29]
    assert frame["rating"].tolist() == [3.5, 4.0]
    assert frame["timestamp"].tolist() == [1112486027, 1112484676]
    assert read_ratings(tmp_path, "ml-20m").equals(frame)


def test_lightgcn_one_row_per_pair(tmp_path):
    path = write(tmp_path / "train.txt", ["0 5 3 9", "1", "", "2 3", "7 1 2 "])
    frame = read_ratings(path)
    assert list(zip(frame["user"], frame["item"])) == [
        (0, 5),
        (0, 3),
        (0, 9),
        (2, 3),
        (7, 1),
        (7, 2),
    ]
    assert frame["rating"].tolist() == [1.0] * 6
    assert "timestamp" not in frame


def test_tsv_with_named_columns(tmp_path):
    path = write(tmp_path / "positives_ge4.tsv", ["UserID\tMovieID", "1\t1", "1\t48", "3\t2"])
    frame = read_ratings(path, user_col="UserID", item_col="MovieID")
    assert list(frame.columns) == ["user", "item", "rating"]
    assert frame["user"].tolist() == [1, 1, 3]
    assert frame["item"].tolist() == [1, 48, 2]
    assert frame["rating"].tolist() == [1.0, 1.0, 1.0]
    # The same header names are recognised without being named.
    assert read_ratings(path).equals(frame)


@pytest.mark.parametrize(
    "header", ["user,item,rating", "User_ID,Item_Id,Rating", "userid,movie_id,RATING"]
)
def test_csv_header_names_detected_case_insensitively(tmp_path, header):
    path = write(tmp_path / "data.csv", [header, "a,10,4.5", "b,11,2"])
    frame = read_ratings(path)
    assert frame["user"].tolist() == ["a", "b"]
    assert frame["item"].tolist() == [10, 11]
    assert frame["rating"].tolist() == [4.5, 2.0]


def test_csv_explicit_columns_and_string_ids(tmp_path):
    path = write(
        tmp_path / "log.csv",
        ["who,what,stars,when,extra", "u1,i9,4,100,x", "u2,007x,1,99,y"],
    )
    frame = read_ratings(
        path, user_col="who", item_col="what", rating_col="stars", timestamp_col="when"
    )
    assert frame["user"].tolist() == ["u1", "u2"]
    assert frame["item"].tolist() == ["i9", "007x"]
    assert frame["rating"].tolist() == [4.0, 1.0]
    assert frame["timestamp"].tolist() == [100, 99]
    assert frame["timestamp"].dtype == np.int64


def test_csv_custom_separator(tmp_path):
    path = write(tmp_path / "data.csv", ["user;item", "1;2", "3;4"])
    frame = read_ratings(path, sep=";")
    assert frame["item"].tolist() == [2, 4]


def test_parquet(tmp_path):
    path = tmp_path / "data.parquet"
    pd.DataFrame(
        {"user_id": [5, 6], "item_id": ["x", "y"], "rating": [1, 4], "timestamp": [7, 8]}
    ).to_parquet(path)
    frame = read_ratings(path)
    assert frame["user"].tolist() == [5, 6]
    assert frame["item"].tolist() == ["x", "y"]
    assert frame["rating"].tolist() == [1.0, 4.0]
    assert frame["timestamp"].tolist() == [7, 8]


def test_explicit_format_overrides_the_name(tmp_path):
    path = write(tmp_path / "pairs.txt", ["user\titem", "1\t2"])
    assert read_ratings(path, "tsv")["item"].tolist() == [2]


def test_read_given_lightgcn_directory(tmp_path):
    write(tmp_path / "train.txt", ["0 1 2", "1 2"])
    write(tmp_path / "test.txt", ["0 3", "1 0 1"])
    train, test = read_given(tmp_path)
    assert list(zip(train["user"], train["item"])) == [(0, 1), (0, 2), (1, 2)]
    assert list(zip(test["user"], test["item"])) == [(0, 3), (1, 0), (1, 1)]


def test_read_given_train_and_test_files(tmp_path):
    base = write(tmp_path / "u1.base", ML100K_LINES[:2])
    test_file = write(tmp_path / "u1.test", ML100K_LINES[2:])
    train, test = read_given(base, test_file)
    assert train["user"].tolist() == [3, 1]
    assert test["user"].tolist() == [2]


def test_read_given_requires_the_test_file_of_a_base_file(tmp_path):
    base = write(tmp_path / "u1.base", ML100K_LINES)
    write(tmp_path / "u1.test", ML100K_LINES)
    with pytest.raises(DataFormatError, match=r"u1\.base: .*test file.*u1\.test"):
        read_given(base)


def test_read_given_directory_without_split_files(tmp_path):
    write(tmp_path / "u.data", ML100K_LINES)
    with pytest.raises(DataFormatError, match=r"train\.txt and test\.txt, found u\.data"):
        read_given(tmp_path)


def test_read_given_files_of_different_formats(tmp_path):
    base = write(tmp_path / "u1.base", ML100K_LINES)
    other = write(tmp_path / "test.txt", ["1 2"])
    with pytest.raises(DataFormatError, match="reads as ml-100k but .* reads as lightgcn"):
        read_given(base, other)


def test_missing_file(tmp_path):
    with pytest.raises(DataFormatError, match=re.escape(f"{tmp_path / 'u1.base'}: no such")):
        read_ratings(tmp_path / "u1.base")


@pytest.mark.parametrize(
    "name, lines",
    [("u1.base", []), ("ratings.dat", ["", "  "]), ("train.txt", []), ("data.csv", [])],
)
def test_empty_file(tmp_path, name, lines):
    path = write(tmp_path / name, lines)
    with pytest.raises(DataFormatError, match=re.escape(f"{path}: the file is empty")):
        read_ratings(path)


def test_table_with_only_a_header(tmp_path):
    path = write(tmp_path / "data.csv", ["user,item"])
    with pytest.raises(DataFormatError, match=re.escape(f"{path}: no rows")):
        read_ratings(path)


def test_ml100k_wrong_field_count(tmp_path):
    lines = ML100K_LINES * 5 + ["1\t2\t5"] + ML100K_LINES
    path = write(tmp_path / "u1.base", lines)
    expected = "4 tab-separated fields (user item rating timestamp), found 3: '1\\t2\\t5'"
    with pytest.raises(DataFormatError, match=error_at(path, 16, expected)):
        read_ratings(path)


def test_ml100k_extra_field_on_the_first_line(tmp_path):
    path = write(tmp_path / "u.data", ["1\t2\t5\t7\t9"] + ML100K_LINES)
    with pytest.raises(DataFormatError, match=error_at(path, 1, "4 tab-separated fields")):
        read_ratings(path)


def test_ml100k_extra_field_later(tmp_path):
    path = write(tmp_path / "u.data", ML100K_LINES + ["1\t2\t5\t7\t9"])
    with pytest.raises(DataFormatError, match=error_at(path, 4, "4 tab-separated fields")):
        read_ratings(path)


def test_ml100k_non_integer_id(tmp_path):
    path = write(tmp_path / "u.data", ML100K_LINES + ["", "1\tabc\t5\t7"])
    with pytest.raises(DataFormatError, match=error_at(path, 5, "an integer item id, found 'abc'")):
        read_ratings(path)


def test_ml100k_non_numeric_rating(tmp_path):
    path = write(tmp_path / "u.data", ML100K_LINES + ["1\t2\tfive\t7"])
    with pytest.raises(
        DataFormatError, match=error_at(path, 4, "a finite numeric rating, found 'five'")
    ):
        read_ratings(path)


def test_ml1m_wrong_separator(tmp_path):
    path = write(tmp_path / "ratings.dat", ["1::2::5::9", "1::2::5:9"])
    with pytest.raises(DataFormatError, match=error_at(path, 2, "4 '::'-separated fields")):
        read_ratings(path)


def test_ml1m_non_integer_user_in_latin1(tmp_path):
    path = write(tmp_path / "ratings.dat", ["1::2::5::9", "é::2::5::9"], encoding="latin-1")
    with pytest.raises(DataFormatError, match=error_at(path, 2, "an integer user id, found 'é'")):
        read_ratings(path)


def test_lightgcn_non_integer_item(tmp_path):
    path = write(tmp_path / "train.txt", ["0 1 2", "1 2 x3 4"])
    with pytest.raises(DataFormatError, match=error_at(path, 2, "space-separated integers")):
        read_ratings(path)
    with pytest.raises(DataFormatError, match="found 'x3'"):
        read_ratings(path)


def test_csv_unknown_column_lists_the_columns(tmp_path):
    path = write(tmp_path / "data.csv", ["uid,iid", "1,2"])
    with pytest.raises(DataFormatError, match="no user column.*Columns present: 'uid', 'iid'"):
        read_ratings(path)
    with pytest.raises(DataFormatError, match="no column 'stars'.*Columns present: 'uid', 'iid'"):
        read_ratings(path, user_col="uid", item_col="iid", rating_col="stars")


def test_csv_non_numeric_rating(tmp_path):
    path = write(tmp_path / "data.csv", ["user,item,rating", "1,2,4", "1,3,4", "2,3,good"])
    with pytest.raises(
        DataFormatError, match=error_at(path, 4, "a finite numeric rating in column")
    ):
        read_ratings(path)


@pytest.mark.parametrize("line", [2, 3])
def test_csv_wrong_field_count(tmp_path, line):
    rows = ["1,2", "2,3"]
    rows.insert(line - 2, "1,3,4")
    path = write(tmp_path / "data.csv", ["user,item"] + rows)
    expected = "2 comma-separated fields (user,item), found 3: '1,3,4'"
    with pytest.raises(DataFormatError, match=error_at(path, line, expected)):
        read_ratings(path)


def test_csv_not_utf8(tmp_path):
    path = write(tmp_path / "data.csv", ["user,item", "\xe9,3"], encoding="latin-1")
    with pytest.raises(DataFormatError, match=error_at(path, 2, "utf-8 text, found the byte")):
        read_ratings(path)


def test_csv_missing_id(tmp_path):
    path = write(tmp_path / "data.csv", ["user,item", "1,2", ",3"])
    with pytest.raises(DataFormatError, match=error_at(path, 3, "a user id")):
        read_ratings(path)


def test_parquet_non_numeric_rating_names_the_row(tmp_path):
    path = tmp_path / "data.parquet"
    pd.DataFrame({"user": [1, 2], "item": [1, 2], "rating": ["4", "bad"]}).to_parquet(path)
    with pytest.raises(DataFormatError, match=re.escape(f"{path}, row 2: expected finite numeric")):
        read_ratings(path)


def test_undetectable_format_lists_known_formats(tmp_path):
    path = write(tmp_path / "movies.dat", ["1::Toy Story (1995)::Animation"])
    with pytest.raises(DataFormatError, match="cannot tell the format.*" + ", ".join(FORMATS)):
        read_ratings(path)
    with pytest.raises(DataFormatError, match="cannot tell the format of this directory"):
        read_ratings(tmp_path)


def test_unknown_format_name(tmp_path):
    path = write(tmp_path / "u.data", ML100K_LINES)
    with pytest.raises(DataFormatError, match="Unknown format 'ml-2m'. Known formats: ml-100k"):
        read_ratings(path, "ml-2m")


def test_lightgcn_directory_points_to_read_given(tmp_path):
    write(tmp_path / "train.txt", ["0 1"])
    write(tmp_path / "test.txt", ["0 2"])
    with pytest.raises(DataFormatError, match="read_given"):
        read_ratings(tmp_path)


needs_shared_data = pytest.mark.skipif(
    not SHARED_DATA.is_dir(), reason="the shared benchmark data is not on this machine"
)


@needs_shared_data
def test_gowalla_published_counts():
    if not (SHARED_DATA / "gowalla" / "train.txt").is_file():
        pytest.skip("gowalla is not in the shared data")
    train, test = read_given(SHARED_DATA / "gowalla")
    assert len(train) == 810_128
    assert len(test) == 217_242
    users = np.union1d(train["user"].unique(), test["user"].unique())
    items = np.union1d(train["item"].unique(), test["item"].unique())
    assert len(users) == 29_858
    assert len(items) == 40_981


@needs_shared_data
def test_ml100k_u1_base():
    path = SHARED_DATA / "ml-100k" / "u1.base"
    if not path.is_file():
        pytest.skip("ml-100k is not in the shared data")
    frame = read_ratings(path)
    assert len(frame) == 80_000
    assert frame["rating"].between(1, 5).all()
    assert frame.iloc[0].tolist() == [1, 1, 5.0, 874965758]


@pytest.mark.parametrize(
    "name, text, message",
    [
        (
            "u.data",
            "1\t2\t3\t4\n1\t3\tinf\t5\n",
            "line 2: expected a finite numeric rating, found 'inf'",
        ),
        ("u.data", "1\t2\tnan\t4\n", "line 1: expected a finite numeric rating, found 'nan'"),
        ("u.data", "99999999999999999999\t2\t3\t4\n", "line 1: expected an integer user id"),
        (
            "r.csv",
            "user,item,rating\n1,2,-inf\n",
            "expected a finite numeric rating in column 'rating'",
        ),
        (
            "train.txt",
            "0 1 2\n1 99999999999999999999\n",
            "line 2: expected space-separated integers",
        ),
        ("train.txt", "0\n1\n", "no (user, item) pair"),
    ],
)
def test_values_no_model_can_use_are_refused_with_the_line(tmp_path, name, text, message):
    path = tmp_path / name
    path.write_text(text)
    format = {"u.data": "ml-100k", "r.csv": "csv", "train.txt": "lightgcn"}[name]
    with pytest.raises(DataFormatError, match=re.escape(message)):
        read_ratings(path, format)


@pytest.mark.parametrize("name, format", [("train.txt", "lightgcn"), ("r.csv", "csv")])
def test_bytes_that_are_not_utf8_are_named_by_line_and_column(tmp_path, name, format):
    path = tmp_path / name
    path.write_bytes(
        b"user,item,rating\n1,2,3\n1,\xff3,4\n" if format == "csv" else b"0 1\n1 \xff2\n"
    )
    line = 3 if format == "csv" else 2
    with pytest.raises(
        DataFormatError, match=rf"line {line}: expected utf-8 text, found the byte b'\\xff'"
    ):
        read_ratings(path, format)


def test_a_rating_past_uint64_is_still_a_number(tmp_path):
    """Found by the fuzz test: pandas reads 2**64 as text, and the file was refused."""
    path = tmp_path / "u.data"
    path.write_text(f"1\t2\t{2**64}\t3\n1\t3\t4\t5\n")
    frame = read_ratings(path, "ml-100k")
    assert frame["rating"].tolist() == [np.float32(2.0**64), 4.0]
