"""Synthetic interactions with planted structure, for tests, examples and notebooks."""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp

from keras_recae.data.interactions import Interactions

_MIN_USER_INTERACTIONS = 5
# Share of a user's expected interactions that fall in their own taste cluster.
_IN_CLUSTER_SHARE = 0.8
_ZIPF_EXPONENT = 0.8
_FIRST_TIMESTAMP = 978_300_000


def synthetic_interactions(
    n_users: int = 1000,
    n_items: int = 500,
    n_clusters: int = 8,
    density: float = 0.03,
    seed: int = 0,
    explicit: bool = False,
) -> Interactions:
    """Random interactions with item popularity skew and user taste clusters.

    Items get Zipf-like popularities and are dealt evenly into `n_clusters` clusters; so are
    users. A user draws their items without replacement, in proportion to popularity, with
    80% of the expected mass on their own cluster's items. Every user has at least 5
    interactions, and every item at least one (given to a user of its cluster). The result
    depends only on the arguments.

    Args:
        n_users: int. The number of users, ids `1..n_users`. Defaults to 1000.
        n_items: int. The number of items, ids `1..n_items`, at least 5. Defaults to 500.
        n_clusters: int. The number of taste clusters, in [1, n_items]. Defaults to 8.
        density: float. The mean share of items a user interacted with, in (0, 1]; users
            with fewer than 5 expected interactions get 5. Defaults to 0.03.
        seed: int. Seed of `numpy.random.default_rng`. Defaults to 0.
        explicit: bool. If True, values are ratings 1..5, higher within the user's cluster;
            else 1.0. Defaults to False.

    Returns:
        `Interactions` of shape `(n_users, n_items)`.

    Example:

    ```python
    from keras_recae.data.synthetic import synthetic_interactions

    data = synthetic_interactions(n_users=200, n_items=100, seed=1)
    ```
    """
    frame = synthetic_frame(n_users, n_items, n_clusters, density, seed, explicit)
    return Interactions.from_frame(
        frame,
        user_ids=np.arange(1, n_users + 1),
        item_ids=np.arange(1, n_items + 1),
    )


def synthetic_frame(
    n_users: int = 1000,
    n_items: int = 500,
    n_clusters: int = 8,
    density: float = 0.03,
    seed: int = 0,
    explicit: bool = False,
    return_clusters: bool = False,
) -> pd.DataFrame | tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """The interactions of `synthetic_interactions` as a frame, as the readers return one.

    Rows come in a random order with increasing timestamps, users interleaved, like a log.

    Args:
        n_users, n_items, n_clusters, density, seed, explicit: as in
            `synthetic_interactions`.
        return_clusters: bool. Also return the planted clusters, to check what a model
            learned against them. Defaults to False.

    Returns:
        A `pandas.DataFrame` with columns `user`, `item` (int64), `rating` (float32) and
        `timestamp` (int64); with `return_clusters`, the tuple `(frame, user_clusters,
        item_clusters)`, where `user_clusters[u - 1]` is the cluster (0-based) of user id `u`
        and `item_clusters[i - 1]` that of item id `i`.
    """
    frame, user_clusters, item_clusters = _generate(
        n_users, n_items, n_clusters, density, seed, explicit
    )
    if return_clusters:
        return frame, user_clusters, item_clusters
    return frame


def _generate(
    n_users: int,
    n_items: int,
    n_clusters: int,
    density: float,
    seed: int,
    explicit: bool,
) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """The frame, and the cluster of each user and of each item (0-based, by index)."""
    if n_users < 1:
        raise ValueError(f"`n_users` should be at least 1. Received: n_users={n_users}")
    if n_items < _MIN_USER_INTERACTIONS:
        raise ValueError(
            f"`n_items` should be at least {_MIN_USER_INTERACTIONS}. Received: n_items={n_items}"
        )
    if not 1 <= n_clusters <= n_items:
        raise ValueError(
            f"`n_clusters` should be in [1, n_items]. Received: n_clusters={n_clusters}"
        )
    if not 0 < density <= 1:
        raise ValueError(f"`density` should be in (0, 1]. Received: density={density}")
    rng = np.random.default_rng(seed)

    popularity = 1.0 / rng.permutation(np.arange(1, n_items + 1)) ** _ZIPF_EXPONENT
    item_cluster = rng.permutation(np.arange(n_items) % n_clusters)
    user_cluster = rng.permutation(np.arange(n_users) % n_clusters)

    weights = _cluster_weights(popularity, item_cluster, n_clusters)

    mean = max(density * n_items, _MIN_USER_INTERACTIONS)
    sigma = 0.5
    sizes = np.round(rng.lognormal(np.log(mean) - sigma**2 / 2, sigma, size=n_users))
    sizes = np.clip(sizes, _MIN_USER_INTERACTIONS, n_items).astype(np.int64)

    chosen = [
        rng.choice(n_items, size=size, replace=False, p=weights[cluster])
        for size, cluster in zip(sizes, user_cluster)
    ]
    users = np.repeat(np.arange(n_users), sizes)
    items = np.concatenate(chosen)

    missing = np.setdiff1d(np.arange(n_items), items)
    if len(missing):
        extra_users = np.empty(len(missing), dtype=np.int64)
        for position, item in enumerate(missing):
            fans = np.flatnonzero(user_cluster == item_cluster[item])
            extra_users[position] = rng.choice(fans if len(fans) else n_users)
        users = np.concatenate([users, extra_users])
        items = np.concatenate([items, missing])

    if explicit:
        affinity = np.where(user_cluster[users] == item_cluster[items], 4.0, 2.3)
        quality = rng.normal(0.0, 0.5, size=n_items)
        leniency = rng.normal(0.0, 0.3, size=n_users)
        noise = rng.normal(0.0, 0.6, size=len(users))
        ratings = np.clip(np.round(affinity + quality[items] + leniency[users] + noise), 1, 5)
    else:
        ratings = np.ones(len(users))

    order = rng.permutation(len(users))
    timestamps = _FIRST_TIMESTAMP + np.cumsum(rng.integers(1, 600, size=len(users)))
    frame = pd.DataFrame(
        {
            "user": users[order].astype(np.int64) + 1,
            "item": items[order].astype(np.int64) + 1,
            "rating": ratings[order].astype(np.float32),
            "timestamp": timestamps.astype(np.int64),
        }
    )
    return frame, user_cluster, item_cluster


def _cluster_weights(popularity, item_cluster, n_clusters: int) -> np.ndarray:
    """Each cluster's distribution over the items [n_clusters, n_items]: its own items in
    proportion to popularity, the others scaled so the cluster keeps its share of the mass."""
    weights = np.empty((n_clusters, len(popularity)))
    for cluster in range(n_clusters):
        inside = item_cluster == cluster
        mass_in, mass_out = popularity[inside].sum(), popularity[~inside].sum()
        leak = mass_in / mass_out * (1 - _IN_CLUSTER_SHARE) / _IN_CLUSTER_SHARE if mass_out else 0
        weights[cluster] = np.where(inside, popularity, leak * popularity)
    return weights / weights.sum(axis=1, keepdims=True)


def synthetic_matrix(
    n_users: int,
    n_items: int,
    n_interactions: int,
    n_clusters: int = 8,
    seed: int = 0,
    chunk_users: int = 50_000,
) -> Interactions:
    """Synthetic interactions of any size, generated in chunks of users straight into CSR.

    The planted structure of `synthetic_interactions` (Zipf-like item popularity, users and
    items dealt into taste clusters, 80% of a user's mass on their cluster's items) without
    its per-user draws over the whole catalogue: each cluster's item distribution is a
    cumulative table, and a chunk of users draws all its items with one sorted search, so
    the time grows with the interactions and the memory with the interactions of one chunk
    plus the table (`n_clusters x n_items` float64). Users get about `n_interactions /
    n_users` items each (lognormal sizes, at least 5 draws); draws repeated within a user are
    kept once, so the total is close to `n_interactions` and a little under it. The result
    depends only on the arguments.

    Args:
        n_users: int. Users, ids `1..n_users`.
        n_items: int. Items, ids `1..n_items`, at least 5.
        n_interactions: int. The number of draws, at least `5 * n_users`.
        n_clusters: int. Taste clusters, in [1, n_items]. Defaults to 8.
        seed: int. Seed of `numpy.random.default_rng`. Defaults to 0.
        chunk_users: int. Users generated at once. Defaults to 50,000.

    Returns:
        `Interactions` with values 1.0 and int32 column indices.

    Example:

    ```python
    from keras_recae.data.synthetic import synthetic_matrix

    data = synthetic_matrix(200_000, 1_000_000, 10_000_000)
    ```
    """
    if n_users < 1 or n_items < _MIN_USER_INTERACTIONS:
        raise ValueError(
            f"`n_users` should be at least 1 and `n_items` at least {_MIN_USER_INTERACTIONS}. "
            f"Received: n_users={n_users}, n_items={n_items}"
        )
    if n_interactions < _MIN_USER_INTERACTIONS * n_users:
        raise ValueError(
            f"`n_interactions` should be at least {_MIN_USER_INTERACTIONS} per user "
            f"({_MIN_USER_INTERACTIONS * n_users}). Received: n_interactions={n_interactions}"
        )
    if not 1 <= n_clusters <= n_items:
        raise ValueError(f"`n_clusters` should be in [1, n_items]. Received: {n_clusters}")
    rng = np.random.default_rng(seed)
    popularity = 1.0 / rng.permutation(np.arange(1, n_items + 1)) ** _ZIPF_EXPONENT
    item_cluster = rng.permutation(np.arange(n_items) % n_clusters)
    user_cluster = rng.permutation(np.arange(n_users) % n_clusters)
    tables = np.cumsum(_cluster_weights(popularity, item_cluster, n_clusters), axis=1)
    mean = n_interactions / n_users
    sigma = 0.5
    sizes = np.round(rng.lognormal(np.log(mean) - sigma**2 / 2, sigma, size=n_users))
    sizes = np.clip(sizes, _MIN_USER_INTERACTIONS, n_items).astype(np.int64)
    # Rescaled so that the draws add up to about `n_interactions`.
    sizes = sizes * (n_interactions / sizes.sum())
    sizes = np.clip(np.round(sizes), _MIN_USER_INTERACTIONS, n_items).astype(np.int64)
    indptr = [np.zeros(1, np.int64)]
    indices = []
    for start in range(0, n_users, chunk_users):
        users = np.arange(start, min(start + chunk_users, n_users))
        draws = sizes[users]
        owner = np.repeat(np.arange(len(users)), draws)
        columns = np.empty(len(owner), np.int64)
        clusters = user_cluster[users][owner]
        uniforms = rng.random(len(owner))
        for cluster in range(n_clusters):
            mine = clusters == cluster
            columns[mine] = np.searchsorted(tables[cluster], uniforms[mine], side="right")
        np.minimum(columns, n_items - 1, out=columns)
        keys = np.unique(owner * n_items + columns)
        rows, columns = keys // n_items, keys % n_items
        counts = np.bincount(rows, minlength=len(users))
        indptr.append(indptr[-1][-1] + np.cumsum(counts))
        indices.append(columns.astype(np.int32))
    matrix = sp.csr_matrix(
        (
            np.ones(sum(len(part) for part in indices), np.float32),
            np.concatenate(indices),
            np.concatenate(indptr),
        ),
        shape=(n_users, n_items),
    )
    return Interactions(matrix, np.arange(1, n_users + 1), np.arange(1, n_items + 1))
