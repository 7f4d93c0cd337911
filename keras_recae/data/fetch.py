"""Public data sets by name: `keras-recae data fetch ml-1m`, or `--data ml-1m`.

Each file is downloaded once with `keras.utils.get_file` into the Keras cache directory
(`~/.keras/datasets/keras-recae`, or under `$KERAS_HOME`) and checked against its published
checksum before use: GroupLens's MD5 of each MovieLens archive, and for the LightGCN splits
the Git object id of each file in the authors' repository (gusye1234/LightGCN-PyTorch), which
is a SHA-1 of the file's content. A file that fails its check is deleted and reported; an
archive is extracted into a temporary directory and renamed into place, so a killed fetch
leaves nothing half-written behind.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import shutil
import tempfile
import zipfile
from pathlib import Path

from keras_recae.errors import ConfigError

CACHE_SUBDIR = os.path.join("datasets", "keras-recae")
_MOVIELENS = "https://files.grouplens.org/datasets/movielens"
_LIGHTGCN = "https://raw.githubusercontent.com/gusye1234/LightGCN-PyTorch/master/data"


@dataclasses.dataclass(frozen=True)
class RemoteFile:
    """One file of a data set and how to check it.

    Args:
        url: str. Where it is downloaded from.
        checksum: str. `"md5:<hex>"` or `"git-sha1:<hex>"` (Git's blob id: the SHA-1 of
            `"blob <size>\\0"` followed by the content).
        name: str. Its name in the cache.
    """

    url: str
    checksum: str
    name: str


@dataclasses.dataclass(frozen=True)
class PublicDataset:
    """A public data set the readers know.

    Args:
        name: str. The name of `--data NAME`.
        files: tuple of RemoteFile. What is downloaded.
        data: str. The path, inside the data set's cache directory, that `--data` reads: a
            ratings file, or a directory of `train.txt` and `test.txt`.
        extract: bool. The one file is a zip archive to extract. Defaults to False.
        description: str. One line for `keras-recae data list`.
    """

    name: str
    files: tuple
    data: str
    extract: bool = False
    description: str = ""


def _movielens(name: str, md5: str, data: str, description: str) -> PublicDataset:
    archive = RemoteFile(f"{_MOVIELENS}/{name}.zip", f"md5:{md5}", f"{name}.zip")
    return PublicDataset(name, (archive,), data, extract=True, description=description)


def _lightgcn(name: str, train_sha1: str, test_sha1: str, description: str) -> PublicDataset:
    files = tuple(
        RemoteFile(f"{_LIGHTGCN}/{name}/{part}.txt", f"git-sha1:{sha1}", f"{part}.txt")
        for part, sha1 in (("train", train_sha1), ("test", test_sha1))
    )
    return PublicDataset(name, files, ".", description=description)


# MD5s as GroupLens publishes them beside each archive (ml-100k.zip.md5, ...); Git blob ids of
# gusye1234/LightGCN-PyTorch at 947ca2b (2023-03-20).
DATASETS = {
    dataset.name: dataset
    for dataset in (
        _movielens(
            "ml-100k",
            "0e33842e24a9c977be4e0107933c0723",
            "ml-100k/u.data",
            "MovieLens 100K: 100,000 ratings, 943 users, 1,682 movies (u.data)",
        ),
        _movielens(
            "ml-1m",
            "c4d9eecfca2ab87c1945afe126590906",
            "ml-1m/ratings.dat",
            "MovieLens 1M: 1,000,209 ratings, 6,040 users, 3,706 movies",
        ),
        _movielens(
            "ml-10m",
            "ce571fd55effeba0271552578f2648bd",
            "ml-10M100K/ratings.dat",
            "MovieLens 10M: 10,000,054 ratings, 69,878 users, 10,677 movies",
        ),
        _movielens(
            "ml-20m",
            "cd245b17a1ae2cc31bb14903e1204af3",
            "ml-20m/ratings.csv",
            "MovieLens 20M: 20,000,263 ratings, 138,493 users, 26,744 movies",
        ),
        _movielens(
            "ml-25m",
            "6b51fb2759a8657d3bfcbfc42b592ada",
            "ml-25m/ratings.csv",
            "MovieLens 25M: 25,000,095 ratings, 162,541 users, 59,047 movies",
        ),
        _lightgcn(
            "gowalla",
            "a27782bd7a1d4d0744148dc0460ea94da74763f2",
            "9ed5af4b5d21511f33740b4e22e3852f45671800",
            "Gowalla, the LightGCN/NGCF split: 29,858 users, 40,981 items (given protocol)",
        ),
        _lightgcn(
            "yelp2018",
            "cda12361055ba448ae4bd1070f6000c16dea8f22",
            "30dfbc3437b27b74cb2970b435a5ec93ad9f2468",
            "Yelp2018, the LightGCN split: 31,668 users, 38,048 items (given protocol)",
        ),
        _lightgcn(
            "amazon-book",
            "6ef55159c5f1fd7f6d86eb9ff290d0cc2854ac99",
            "09e5da4e0bf46c751c4ba0f4375e414fd13512cd",
            "Amazon-book, the LightGCN split: 52,643 users, 91,599 items (given protocol)",
        ),
    )
}


class FetchError(ConfigError):
    """A data set could not be downloaded or failed its checksum."""


def is_public_dataset(data: str | None) -> bool:
    """Whether `--data` names a public data set rather than a path that exists."""
    return data in DATASETS and not Path(data).exists()


def fetch(name: str, cache_dir: str | None = None) -> Path:
    """Downloads a public data set (once), checks it and returns the path `--data` reads.

    Args:
        name: str. One of `DATASETS` (`ml-100k`, `ml-1m`, `ml-10m`, `ml-20m`, `ml-25m`,
            `gowalla`, `yelp2018`, `amazon-book`).
        cache_dir: str | None. The cache's root; None means Keras's (`~/.keras`, or
            `$KERAS_HOME`). Defaults to None.

    Returns:
        The ratings file, or the directory of `train.txt` and `test.txt`.

    Raises:
        FetchError: for an unknown name, a download that fails (offline, a server error),
            or a file whose checksum differs from the published one.

    Example:

    ```python
    from keras_recae.data.fetch import fetch
    from keras_recae.data.spec import DataSpec, load_split

    split, _ = load_split(DataSpec(str(fetch("ml-1m")), protocol="strong"))
    ```
    """
    if name not in DATASETS:
        raise FetchError(f"unknown data set '{name}'. Known: {', '.join(DATASETS)}")
    dataset = DATASETS[name]
    root = _cache_root(cache_dir) / name
    target = data_path(name, cache_dir)
    if dataset.extract and target.exists():
        return target
    root.mkdir(parents=True, exist_ok=True)
    downloaded = [_download(remote, root) for remote in dataset.files]
    if dataset.extract:
        _extract(downloaded[0], root / "files")
    if not target.exists():
        raise FetchError(f"{name}: the download holds no {dataset.data}")
    return target


def data_path(name: str, cache_dir: str | None = None) -> Path:
    """Where a fetched data set's `--data` path is (whether or not it is there yet)."""
    dataset = DATASETS[name]
    root = _cache_root(cache_dir) / name
    return (root / "files" / dataset.data) if dataset.extract else root


def is_cached(name: str, cache_dir: str | None = None) -> bool:
    """Whether a data set is in the cache, ready to read."""
    dataset = DATASETS[name]
    if dataset.extract:
        return data_path(name, cache_dir).exists()
    root = data_path(name, cache_dir)
    return all((root / remote.name).is_file() for remote in dataset.files)


def _cache_root(cache_dir: str | None) -> Path:
    # Keras's own cache: $KERAS_HOME, else ~/.keras.
    default = os.environ.get("KERAS_HOME") or os.path.join("~", ".keras")
    return Path(cache_dir or default).expanduser() / CACHE_SUBDIR


def _download(remote: RemoteFile, root: Path) -> Path:
    import keras

    path = root / remote.name
    if path.exists() and _matches(path, remote.checksum):
        return path
    try:
        downloaded = keras.utils.get_file(
            fname=remote.name,
            origin=remote.url,
            cache_dir=str(root),
            cache_subdir="downloads",
            force_download=True,
        )
    except Exception as error:  # get_file raises a bare Exception for URL failures
        raise FetchError(
            f"could not download {remote.url}: {error}. Without a network, download it "
            f"elsewhere and pass its path to --data, or copy it to {path}."
        ) from None
    downloaded = Path(downloaded)
    if not _matches(downloaded, remote.checksum):
        actual = _digest(downloaded, remote.checksum.split(":", 1)[0])
        downloaded.unlink()
        raise FetchError(
            f"{remote.url}: the download does not match its published checksum "
            f"({remote.checksum}; received {actual}). It was deleted; a retry downloads it "
            "again."
        )
    os.replace(downloaded, path)
    return path


def _matches(path: Path, checksum: str) -> bool:
    algorithm, expected = checksum.split(":", 1)
    return _digest(path, algorithm) == f"{algorithm}:{expected}"


def _digest(path: Path, algorithm: str) -> str:
    if algorithm == "md5":
        hasher = hashlib.md5()
    elif algorithm == "git-sha1":
        hasher = hashlib.sha1(f"blob {path.stat().st_size}\0".encode())
    else:
        raise ValueError(f"unknown checksum algorithm '{algorithm}'")
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            hasher.update(block)
    return f"{algorithm}:{hasher.hexdigest()}"


def _extract(archive: Path, destination: Path) -> None:
    """Extracts a zip into `destination` by a temporary directory and a rename."""
    if destination.exists():
        return
    temporary = Path(tempfile.mkdtemp(prefix=".extract-", dir=destination.parent))
    try:
        with zipfile.ZipFile(archive) as opened:
            for member in opened.namelist():
                resolved = (temporary / member).resolve()
                if not resolved.is_relative_to(temporary.resolve()):
                    raise FetchError(f"{archive}: the member {member!r} points outside the archive")
            opened.extractall(temporary)
        os.replace(temporary, destination)
    except zipfile.BadZipFile as error:
        raise FetchError(f"{archive}: not a zip archive ({error})") from None
    finally:
        shutil.rmtree(temporary, ignore_errors=True)
