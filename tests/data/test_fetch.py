"""Public data sets by name, fetched from a server on 127.0.0.1 standing in for the origin."""

import contextlib
import functools
import hashlib
import http.server
import io
import threading
import zipfile

import pytest

from keras_recae import cli
from keras_recae.data import fetch as fetching
from keras_recae.data.spec import DataSpec, load_split

U_DATA = "".join(
    f"{u}\t{i}\t{(u * i) % 5 + 1}\t{880000000 + u * 100 + i}\n"
    for u in range(1, 31)
    for i in range(1, 21)
    if (u + i) % 3
)
TRAIN = "".join(
    f"{u} " + " ".join(str(i) for i in range(u % 7, u % 7 + 6)) + "\n" for u in range(20)
)
TEST = "".join(f"{u} {u % 7 + 8} {u % 7 + 9}\n" for u in range(20))


def git_sha1(content: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def origin(tmp_path, monkeypatch):
    """A web server on 127.0.0.1 holding a MovieLens-like zip and a LightGCN-like split, and
    the registry pointing at it."""
    served = tmp_path / "served"
    (served / "lightgcn").mkdir(parents=True)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("ml-100k/u.data", U_DATA)
        archive.writestr("ml-100k/README", "test archive")
    (served / "ml-100k.zip").write_bytes(buffer.getvalue())
    (served / "lightgcn" / "train.txt").write_text(TRAIN)
    (served / "lightgcn" / "test.txt").write_text(TEST)
    handler = functools.partial(QuietHandler, directory=str(served))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    md5 = hashlib.md5(buffer.getvalue()).hexdigest()
    datasets = {
        "ml-100k": fetching.PublicDataset(
            "ml-100k",
            (fetching.RemoteFile(f"{url}/ml-100k.zip", f"md5:{md5}", "ml-100k.zip"),),
            "ml-100k/u.data",
            extract=True,
        ),
        "gowalla": fetching.PublicDataset(
            "gowalla",
            tuple(
                fetching.RemoteFile(
                    f"{url}/lightgcn/{part}.txt",
                    f"git-sha1:{git_sha1(text.encode())}",
                    f"{part}.txt",
                )
                for part, text in (("train", TRAIN), ("test", TEST))
            ),
            ".",
        ),
    }
    monkeypatch.setattr(fetching, "DATASETS", datasets)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras-home"))
    yield server, served
    server.shutdown()


def quietly(function, *args, **kwargs):
    with contextlib.redirect_stdout(io.StringIO()):
        return function(*args, **kwargs)


def test_a_movielens_archive_is_fetched_checked_extracted_and_then_read_from_the_cache(
    origin, tmp_path
):
    server, _ = origin
    path = quietly(fetching.fetch, "ml-100k")
    assert path.read_text() == U_DATA
    assert path.is_relative_to(tmp_path / "keras-home" / "datasets" / "keras-recae")
    server.shutdown()  # offline from here on: the cache serves
    assert quietly(fetching.fetch, "ml-100k") == path
    # `--data ml-100k` reads the cached file as `--data PATH` would.
    by_name, _ = load_split(DataSpec("ml-100k", protocol="leave-last-out"))
    by_path, _ = load_split(DataSpec(str(path), protocol="leave-last-out"))
    assert by_name.test.digest() == by_path.test.digest() and by_name.test.n_users > 0


def test_a_lightgcn_split_is_checked_by_its_git_object_ids(origin):
    path = quietly(fetching.fetch, "gowalla")
    assert (path / "train.txt").read_text() == TRAIN
    split, _ = load_split(DataSpec("gowalla"))
    assert split.protocol == "given" and split.test.n_users == 20


def test_a_download_that_fails_its_checksum_is_deleted_and_reported(origin):
    _, served = origin
    (served / "lightgcn" / "test.txt").write_text(TEST + "0 1\n")  # the origin changed
    with pytest.raises(fetching.FetchError, match="does not match its published checksum"):
        quietly(fetching.fetch, "gowalla")
    root = fetching.data_path("gowalla")
    assert not (root / "test.txt").exists() and not list((root / "downloads").iterdir())
    (served / "lightgcn" / "test.txt").write_text(TEST)
    assert (quietly(fetching.fetch, "gowalla") / "test.txt").read_text() == TEST


def test_offline_is_a_clear_error(origin, capsys):
    server, _ = origin
    server.shutdown()
    server.server_close()
    with pytest.raises(fetching.FetchError, match="could not download http://127.0.0.1:"):
        quietly(fetching.fetch, "ml-100k")
    assert cli.main(["data", "fetch", "ml-100k"]) == 2
    assert "Without a network" in capsys.readouterr().err
    assert cli.main(["data", "fetch", "ml-99k"]) == 2
    assert "unknown data set 'ml-99k'" in capsys.readouterr().err


def test_data_list_and_fetch_from_the_command_line(origin, capsys):
    assert cli.main(["data", "list"]) == 0
    assert "ml-100k\t" in capsys.readouterr().out
    assert quietly(cli.main, ["data", "fetch", "ml-100k"]) == 0
    assert cli.main(["data", "list"]) == 0
    assert "(cached)" in capsys.readouterr().out


def test_the_published_registry_is_well_formed():
    for name, dataset in fetching.DATASETS.items():
        assert dataset.name == name and dataset.files
        for remote in dataset.files:
            algorithm, digest = remote.checksum.split(":")
            assert algorithm in ("md5", "git-sha1")
            assert len(digest) == (32 if algorithm == "md5" else 40)
            assert remote.url.startswith("https://")
