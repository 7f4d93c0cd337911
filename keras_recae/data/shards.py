"""A worker's shard of the users: each worker of a multi-worker run keeps its own users.

With `--shard-users` (`RunConfig.shard_users`), worker `w` of `W` keeps the users whose id
hashes to `w` (`user_shards`: CRC-32 of the id's text, modulo `W`), so no worker holds the
whole interaction matrix. `load_shard` streams the files of a `given` split chunk by chunk
(`keras_recae.data.streaming`) and keeps the shard's lines; what every worker must agree on
is collected from all the lines on the way, a value per distinct user or item, never per
line: the items (the columns of every worker's matrix), which users each shard has (so that
every worker makes as many steps), and whether the train file has ratings other than 1 (the
implicit models' default threshold).
"""

from __future__ import annotations

import dataclasses
import zlib

import numpy as np

from keras_recae.data import ids
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
class ShardInfo:
    """Which shard of the users a worker holds.

    Attributes:
        shard: int. This worker's shard.
        users: tuple of int. The users (rows of the train matrix) of every shard.
    """

    shard: int
    users: tuple

    @property
    def n_users(self) -> int:
        return int(sum(self.users))


def load_shard(spec, shard: int, n_shards: int, default_validation: float, read_test=True):
    """`load_split` of a worker's shard of the users, for implicit models under `given`.

    The files are streamed (`keras_recae.data.spec.load_given`) and only the lines of
    users whose `user_shards` is `shard` kept; the shard is split as `load_split` splits
    all the lines, over the items of all of them (with the same threshold). Its validation
    part is drawn with the spec's seed from the shard's rows, so it is not the validation
    part of an unsharded run.

    Returns:
        `(split, full_train, info)`: as `load_split`, and a `ShardInfo`.
    """
    from keras_recae.data.fetch import fetch, is_public_dataset
    from keras_recae.data.spec import is_given_data, load_given
    from keras_recae.data.streaming import seen_ids

    if not 0 <= shard < n_shards:
        raise ValueError(f"`shard` should be in [0, {n_shards}). Received: {shard}")
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
    fraction = spec.validation_fraction
    if fraction is None:
        fraction = default_validation

    def keep(users):
        return user_shards(users, n_shards) == shard

    split, full, files, threshold = load_given(spec, False, fraction, read_test, keep=keep)
    users = user_shards(seen_ids(files, "user", threshold), n_shards)
    info = ShardInfo(shard, tuple(np.bincount(users, minlength=n_shards).tolist()))
    if split.train.n_users != info.users[shard]:
        raise AssertionError(
            f"shard {shard}: {split.train.n_users} users in its matrix, {info.users[shard]} "
            "counted while reading"
        )
    return split, full, info
