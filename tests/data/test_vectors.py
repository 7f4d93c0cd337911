import os
import struct

import numpy as np
import pytest

from keras_recae.data import VectorFormatError, read_vectors, write_vectors
from keras_recae.data.ids import integer_ids as integer_keys
from keras_recae.data.vectors import FORMATS, default_ids_path, detect_format

EXTENSIONS = {
    "word2vec": "txt",
    "glove": "glove.txt",
    "word2vec-binary": "bin",
    "gensim": "kv",
    "npy": "npy",
    "npz": "npz",
}


def example(kind: str, n: int = 7, d: int = 5, seed: int = 0):
    rng = np.random.default_rng(seed)
    vectors = rng.normal(size=(n, d)).astype(np.float32) * 10.0 ** rng.integers(-8, 8, (n, d))
    if kind == "int":
        keys = np.array([5, -3, 10**12, 0, 7, 42, 2**62][:n], dtype=np.int64)
    else:
        keys = np.array(["ä-item", "b", "12", "c:d", "🙂", "e/f", "0012"][:n], dtype=object)
    return keys, vectors.astype(np.float32)


def write_text(path, text: str) -> str:
    path.write_text(text, encoding="utf-8")
    return str(path)


def read_error(path, **kwargs) -> str:
    with pytest.raises(VectorFormatError) as info:
        read_vectors(path, **kwargs)
    return str(info.value)


@pytest.mark.parametrize("format", FORMATS)
@pytest.mark.parametrize("kind", ["str", "int"])
def test_round_trip_in_every_format(tmp_path, format, kind):
    if format == "gensim":
        pytest.importorskip("gensim")
    keys, vectors = example(kind)
    path = write_vectors(tmp_path / f"v.{EXTENSIONS[format]}", keys, vectors, format=format)
    read_keys, read = read_vectors(path)
    text_format = format in ("word2vec", "glove", "word2vec-binary", "npy")
    expected_keys = [str(k) for k in keys.tolist()] if text_format else keys.tolist()
    # Keys come back exactly, in order, with their type where the format keeps it.
    assert read_keys.tolist() == expected_keys
    assert [type(k) for k in read_keys.tolist()] == [type(k) for k in expected_keys]
    assert read.dtype == np.float32
    np.testing.assert_array_equal(read, vectors)
    assert detect_format(path) == format
    # Nothing else is left in the directory: no temporary files.
    expected_files = {path.name} | ({"v.ids.txt"} if format == "npy" else set())
    assert set(os.listdir(tmp_path)) == expected_files


@pytest.mark.parametrize("binary", [False, True])
def test_reads_what_gensim_writes_and_gensim_reads_ours(tmp_path, binary):
    gensim = pytest.importorskip("gensim")
    keys, vectors = example("str")
    kv = gensim.models.KeyedVectors(vector_size=vectors.shape[1])
    kv.add_vectors(list(keys), vectors)
    theirs = tmp_path / ("theirs.bin" if binary else "theirs.txt")
    kv.save_word2vec_format(str(theirs), binary=binary)
    read_keys, read = read_vectors(theirs)
    for key, row in zip(read_keys, read):
        np.testing.assert_allclose(row, kv[key], rtol=1e-6)
    assert set(read_keys) == set(keys)

    ours = write_vectors(tmp_path / ("ours.bin" if binary else "ours.txt"), keys, vectors)
    loaded = gensim.models.KeyedVectors.load_word2vec_format(str(ours), binary=binary)
    assert loaded.index_to_key == list(keys)
    np.testing.assert_array_equal(loaded.vectors, vectors)


def test_reads_the_vectors_of_a_saved_word2vec_model(tmp_path):
    gensim = pytest.importorskip("gensim")
    sentences = [["a", "b", "c"], ["b", "c", "d"], ["a", "d"]] * 5
    model = gensim.models.Word2Vec(sentences, vector_size=4, min_count=1, seed=0, workers=1)
    model.save(str(tmp_path / "w2v.model"))
    keys, vectors = read_vectors(tmp_path / "w2v.model")
    assert keys.tolist() == model.wv.index_to_key
    np.testing.assert_array_equal(vectors, model.wv.vectors)


def test_npy_with_an_explicit_id_list(tmp_path):
    keys, vectors = example("str")
    ids = tmp_path / "names.list"
    write_vectors(tmp_path / "v.npy", keys, vectors, ids=ids)
    assert not default_ids_path(tmp_path / "v.npy").exists()
    read_keys, read = read_vectors(tmp_path / "v.npy", ids=ids)
    assert read_keys.tolist() == keys.tolist()
    np.testing.assert_array_equal(read, vectors)
    with pytest.raises(FileNotFoundError, match="v.ids.txt: no id list"):
        read_vectors(tmp_path / "v.npy")


def test_float64_input_is_read_as_float32(tmp_path):
    vectors = np.random.default_rng(0).normal(size=(3, 2))
    np.savez(tmp_path / "v.npz", keys=np.array(["a", "b", "c"]), vectors=vectors)
    _, read = read_vectors(tmp_path / "v.npz")
    assert read.dtype == np.float32
    np.testing.assert_allclose(read, vectors, rtol=1e-7)


def test_format_is_detected_from_the_content(tmp_path):
    keys, vectors = example("str")
    for format in FORMATS:
        if format == "gensim" and not _has_gensim():
            continue
        written = write_vectors(tmp_path / f"v.{EXTENSIONS[format]}", keys, vectors, format=format)
        if format == "npy":
            continue  # An .npy without its extension loses its id list's name too.
        renamed = written.with_name(f"{format}.data")
        os.rename(written, renamed)
        assert detect_format(renamed) == format
        assert read_vectors(renamed)[0].tolist() == read_vectors(renamed, format)[0].tolist()


def _has_gensim() -> bool:
    try:
        import gensim  # noqa: F401
    except ImportError:
        return False
    return True


# -- malformed text files ---------------------------------------------------------------


def test_ragged_row(tmp_path):
    path = write_text(tmp_path / "v.txt", "3 2\na 1 2\nb 1 2 3\nc 1 2\n")
    message = read_error(path)
    assert "v.txt, line 3" in message
    assert "key 'b' has 3 values, expected 2 (the dimension in the header on line 1)" in message


def test_header_dimension_disagrees_with_every_row(tmp_path):
    path = write_text(tmp_path / "v.txt", "2 3\na 1 2\nb 1 2\n")
    assert "line 2: key 'a' has 2 values, expected 3" in read_error(path)


def test_header_announces_more_vectors_than_the_body_holds(tmp_path):
    path = write_text(tmp_path / "v.txt", "4 2\na 1 2\nb 1 2\n")
    message = read_error(path)
    assert "the header on line 1 announces 4 vectors, but the file ends after 2" in message


def test_header_announces_fewer_vectors_than_the_body_holds(tmp_path):
    path = write_text(tmp_path / "v.txt", "1 2\na 1 2\nb 1 2\n")
    message = read_error(path)
    assert "line 3: the header on line 1 announces 1 vectors, but the file has 2 lines" in message


@pytest.mark.parametrize("header", ["a 1 2", "3", "3 x", "-1 2", "2 0", ""])
def test_malformed_header(tmp_path, header):
    path = write_text(tmp_path / "v.txt", f"{header}\nb 1 2\nc 3 4\n")
    message = read_error(path, format="word2vec")
    assert "line 1: expected the header 'n_vectors dimension'" in message


@pytest.mark.parametrize("header", ["3", "3 x", "2 0", ""])
def test_a_text_file_with_a_malformed_header_is_read_as_word2vec(tmp_path, header):
    path = write_text(tmp_path / "v.txt", f"{header}\nb 1 2\nc 3 4\n")
    assert detect_format(path) == "word2vec"
    assert "line 1: expected the header 'n_vectors dimension'" in read_error(path)


# -- GloVe: text without a header --------------------------------------------------------


def test_a_text_file_without_a_header_is_glove(tmp_path):
    path = write_text(tmp_path / "glove.6B.3d.txt", "the 0.1 -2 3e-1\n, 4 5 6\nä 7 8 9\n")
    assert detect_format(path) == "glove"
    keys, vectors = read_vectors(path)
    assert keys.tolist() == ["the", ",", "ä"]
    np.testing.assert_array_equal(vectors, np.float32([[0.1, -2, 0.3], [4, 5, 6], [7, 8, 9]]))
    # Written back as GloVe, the file is the same lines with no header.
    out = write_vectors(tmp_path / "out.txt", keys, vectors, format="glove")
    assert out.read_text(encoding="utf-8").splitlines()[0].split()[0] == "the"
    np.testing.assert_array_equal(read_vectors(out)[1], vectors)


def test_glove_ragged_line_names_the_line_and_the_missing_header(tmp_path):
    path = write_text(tmp_path / "v.txt", "a 1 2\nb 3 4\nc 5\n")
    message = read_error(path)
    assert "v.txt, line 3: key 'c' has 1 values, expected 2" in message
    assert "GloVe file, which has no header" in message


def test_glove_errors_count_lines_from_the_first(tmp_path):
    path = write_text(tmp_path / "v.txt", "a 1 2\nb 3 x\na 5 6\n")
    assert "line 2: value 2 of key 'b' is not a number: 'x'" in read_error(path)
    path = write_text(tmp_path / "w.txt", "a 1 2\nb 3 4\na 5 6\n")
    assert "line 3: key 'a' repeats line 1; keys should be unique" in read_error(path)
    assert "the file is empty; expected a GloVe file" in read_error(
        write_text(tmp_path / "e.txt", ""), format="glove"
    )


def test_non_numeric_value(tmp_path):
    path = write_text(tmp_path / "v.txt", "3 3\na 1 2 3\nb 1 two 3\nc 1 2 3\n")
    message = read_error(path)
    assert "line 3: value 2 of key 'b' is not a number: 'two'" in message


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "1e999"])
def test_non_finite_value(tmp_path, value):
    path = write_text(tmp_path / "v.txt", f"2 2\na 1 2\nb {value} 3\n")
    message = read_error(path)
    assert "line 3: value 1 of key 'b' is" in message and "finite" in message


def test_duplicate_key(tmp_path):
    path = write_text(tmp_path / "v.txt", "3 2\na 1 2\nb 3 4\na 5 6\n")
    assert "line 4: key 'a' repeats line 2; keys should be unique" in read_error(path)


def test_empty_line_inside_the_body(tmp_path):
    path = write_text(tmp_path / "v.txt", "3 2\na 1 2\n\nb 3 4\n")
    message = read_error(path)
    assert "line 3" in message


def test_trailing_blank_lines_and_crlf_are_accepted(tmp_path):
    path = write_text(tmp_path / "v.txt", "2 2\r\na 1 2\r\nb 3 4 \r\n\n\n")
    keys, vectors = read_vectors(path)
    assert keys.tolist() == ["a", "b"]
    np.testing.assert_array_equal(vectors, [[1, 2], [3, 4]])


def test_a_binary_file_read_as_text_names_the_line(tmp_path):
    keys, vectors = example("str")
    written = write_vectors(tmp_path / "v.bin", keys, vectors)
    message = read_error(written, format="word2vec")
    assert "line 2: not UTF-8 text" in message or "line 2:" in message


def test_empty_file(tmp_path):
    assert "the file is empty" in read_error(write_text(tmp_path / "v.txt", ""))


# -- malformed binary files -------------------------------------------------------------


def binary(header: bytes, records) -> bytes:
    body = b"".join(key + b" " + struct.pack(f"<{len(v)}f", *v) + b"\n" for key, v in records)
    return header + body


def test_binary_truncated_vector(tmp_path):
    data = binary(b"2 3\n", [(b"a", [1, 2, 3]), (b"b", [4, 5, 6])])[:-6]
    (tmp_path / "v.bin").write_bytes(data)
    message = read_error(tmp_path / "v.bin")
    assert "record 2 (byte" in message and "the file ends inside the vector of key 'b'" in message


def test_binary_header_announces_more_vectors(tmp_path):
    (tmp_path / "v.bin").write_bytes(binary(b"3 2\n", [(b"a", [1, 2]), (b"b", [3, 4])]))
    assert "announces 3 vectors, but the file ends after 2" in read_error(tmp_path / "v.bin")


def test_binary_header_announces_fewer_vectors(tmp_path):
    (tmp_path / "v.bin").write_bytes(binary(b"1 2\n", [(b"a", [1, 2]), (b"b", [3, 4])]))
    message = read_error(tmp_path / "v.bin")
    assert "announces 1 vectors of dimension 2, but more data follows them" in message


def test_binary_duplicate_key(tmp_path):
    (tmp_path / "v.bin").write_bytes(binary(b"2 2\n", [(b"a", [1, 2]), (b"a", [3, 4])]))
    assert "record 2 (byte" in read_error(tmp_path / "v.bin")
    assert "key 'a' repeats record 1" in read_error(tmp_path / "v.bin")


def test_binary_non_finite_value(tmp_path):
    (tmp_path / "v.bin").write_bytes(binary(b"1 2\n", [(b"a", [1, float("nan")])]))
    message = read_error(tmp_path / "v.bin")
    assert "record 1" in message and "value 2 of key 'a' is nan" in message


def test_binary_wrong_dimension_in_the_header(tmp_path):
    (tmp_path / "v.bin").write_bytes(binary(b"2 3\n", [(b"a", [1, 2]), (b"b", [3, 4])]))
    message = read_error(tmp_path / "v.bin")
    assert "v.bin" in message and ("record" in message or "byte" in message)


def test_binary_malformed_header(tmp_path):
    (tmp_path / "v.bin").write_bytes(b"two 2\n" + b"a " + struct.pack("<2f", 1, 2))
    assert "line 1: expected the header" in read_error(tmp_path / "v.bin")


# -- numpy files and id lists -----------------------------------------------------------


def test_npz_missing_arrays(tmp_path):
    np.savez(tmp_path / "v.npz", vectors=np.zeros((2, 2)))
    message = read_error(tmp_path / "v.npz")
    assert "expected the arrays 'keys' and 'vectors'; missing 'keys'. It holds: vectors" in message


def test_npz_duplicate_keys(tmp_path):
    np.savez(tmp_path / "v.npz", keys=np.array([3, 1, 3]), vectors=np.zeros((3, 2)))
    assert "keys 1 and 3 are the same key '3'" in read_error(tmp_path / "v.npz")


def test_npz_key_count_disagrees(tmp_path):
    np.savez(tmp_path / "v.npz", keys=np.array(["a", "b"]), vectors=np.zeros((3, 2)))
    assert "2 keys for 3 vectors" in read_error(tmp_path / "v.npz")


def test_npz_non_numeric_vectors(tmp_path):
    np.savez(tmp_path / "v.npz", keys=np.array(["a"]), vectors=np.array([["x", "y"]]))
    assert "the vectors should be numbers. Received dtype <U1" in read_error(tmp_path / "v.npz")


def test_npy_not_a_matrix(tmp_path):
    np.save(tmp_path / "v.npy", np.zeros(3))
    (tmp_path / "v.ids.txt").write_text("a\nb\nc\n")
    assert "should form an (n, d) array. Received shape (3,)" in read_error(tmp_path / "v.npy")


def test_npy_with_a_nan(tmp_path):
    vectors = np.zeros((2, 3), np.float32)
    vectors[1, 2] = np.nan
    np.save(tmp_path / "v.npy", vectors)
    (tmp_path / "v.ids.txt").write_text("a\nb\n")
    assert "row 2, value 3 is nan" in read_error(tmp_path / "v.npy")


def test_id_list_length_disagrees(tmp_path):
    np.save(tmp_path / "v.npy", np.zeros((3, 2)))
    (tmp_path / "v.ids.txt").write_text("a\nb\n")
    assert "v.ids.txt: 2 keys for the 3 rows of" in read_error(tmp_path / "v.npy")


def test_id_list_duplicate_and_empty_lines(tmp_path):
    np.save(tmp_path / "v.npy", np.zeros((3, 2)))
    (tmp_path / "v.ids.txt").write_text("a\nb\na\n")
    assert "v.ids.txt, line 3: key 'a' repeats line 1" in read_error(tmp_path / "v.npy")
    (tmp_path / "v.ids.txt").write_text("a\n\nb\n")
    assert "v.ids.txt, line 2: empty line" in read_error(tmp_path / "v.npy")


def test_not_a_gensim_file(tmp_path):
    pytest.importorskip("gensim")
    path = write_text(tmp_path / "v.kv", "hello")
    assert "not a file written by gensim's KeyedVectors.save" in read_error(path)


# -- writing ----------------------------------------------------------------------------


def test_write_refuses_to_overwrite(tmp_path):
    keys, vectors = example("str")
    path = write_vectors(tmp_path / "v.txt", keys, vectors)
    before = path.read_bytes()
    with pytest.raises(FileExistsError, match="v.txt exists"):
        write_vectors(path, keys, vectors * 2)
    assert path.read_bytes() == before
    write_vectors(path, keys, vectors * 2, overwrite=True)
    np.testing.assert_array_equal(read_vectors(path)[1], vectors * 2)


def test_write_refuses_an_existing_id_list(tmp_path):
    keys, vectors = example("str")
    (tmp_path / "v.ids.txt").write_text("mine\n")
    with pytest.raises(FileExistsError, match="v.ids.txt exists"):
        write_vectors(tmp_path / "v.npy", keys, vectors)
    assert not (tmp_path / "v.npy").exists()


@pytest.mark.parametrize("key", ["two words", "tab\there", ""])
def test_text_formats_refuse_keys_with_whitespace(tmp_path, key):
    with pytest.raises(ValueError, match="keys without whitespace"):
        write_vectors(tmp_path / "v.txt", ["a", key], np.zeros((2, 2)))
    assert not (tmp_path / "v.txt").exists()


def test_write_checks_keys_and_shapes(tmp_path):
    with pytest.raises(ValueError, match="should be unique"):
        write_vectors(tmp_path / "v.npz", ["a", "a"], np.zeros((2, 2)))
    with pytest.raises(ValueError, match="one key per vector"):
        write_vectors(tmp_path / "v.npz", ["a"], np.zeros((2, 2)))
    with pytest.raises(ValueError, match=r"\(n, d\) array"):
        write_vectors(tmp_path / "v.npz", ["a"], np.zeros(2))
    with pytest.raises(ValueError, match="cannot tell the format"):
        write_vectors(tmp_path / "v.unknown", ["a"], np.zeros((1, 2)))


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    keys, vectors = example("str")
    path = write_vectors(tmp_path / "v.npz", keys, vectors)
    before = path.read_bytes()

    def fail(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", fail)
    with pytest.raises(OSError, match="disk full"):
        write_vectors(path, keys, vectors * 2, overwrite=True)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["v.npz"]


def test_integer_keys():
    assert integer_keys(np.array(["12", "-3", "0"], dtype=object)).tolist() == [12, -3, 0]
    assert integer_keys(np.array(["12", "012"], dtype=object)) is None
    assert integer_keys(np.array(["12", "+3"], dtype=object)) is None
    assert integer_keys(np.array(["1", str(2**63)], dtype=object)) is None
    assert integer_keys(np.array([4, 5])).dtype == np.int64


def test_glove_lines_longer_than_a_few_kilobytes_are_detected(tmp_path):
    keys = np.array(["a", "b"], dtype=object)
    vectors = np.random.default_rng(0).normal(size=(2, 1000)).astype(np.float32)
    path = write_vectors(tmp_path / "wide.txt", keys, vectors, format="glove")
    assert len(path.read_bytes().split(b"\n")[0]) > 8192
    assert detect_format(path) == "glove"
    np.testing.assert_array_equal(read_vectors(path)[1], vectors)
