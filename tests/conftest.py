"""Fixtures shared by the whole test suite: tiny synthetic data and the dtype policy.

The helper modules of `tests/serving` (fixture models, stand-in server, subprocess
checks) are importable by name because pyproject.toml puts that folder on pytest's
`pythonpath`.
"""

from __future__ import annotations

import collections
import json
import os
from pathlib import Path

import keras
import numpy as np
import pytest

from keras_recae.data import synthetic_interactions

N_USERS = 32
N_ITEMS = 20
N_VECTORS = 30
VECTOR_DIM = 8


@pytest.fixture(scope="session")
def implicit_data():
    """Tiny 0/1 interactions: 32 users x 20 items, ids 1..n."""
    return synthetic_interactions(N_USERS, N_ITEMS, n_clusters=2, density=0.3, seed=0)


@pytest.fixture(scope="session")
def rating_data():
    """Tiny 1..5 ratings: 32 users x 20 items, ids 1..n."""
    return synthetic_interactions(
        N_USERS, N_ITEMS, n_clusters=2, density=0.3, seed=0, explicit=True
    )


@pytest.fixture(scope="session")
def item_vectors() -> np.ndarray:
    """Tiny low-rank float32 item vectors with a shared offset, as word2vec's have."""
    rng = np.random.default_rng(0)
    factors = rng.normal(size=(N_VECTORS, 2)) @ rng.normal(size=(2, VECTOR_DIM))
    return (factors + 0.3 * rng.normal(size=(N_VECTORS, VECTOR_DIM)) + 2.0).astype(np.float32)


@pytest.fixture
def dtype_policy():
    """`keras.config.set_dtype_policy` for one test; the previous policy comes back after."""
    previous = keras.config.dtype_policy()
    yield keras.config.set_dtype_policy
    keras.config.set_dtype_policy(previous)


@pytest.fixture(scope="module")
def fuzz_counts():
    """A fuzzing module's inputs counted by target and outcome; when the module ends they are
    written as JSON to $KERAS_RECAE_FUZZ_STATS, which the long fuzz scripts of `benchmarks/`
    set (with KERAS_RECAE_FUZZ=long for more examples)."""
    counts = collections.defaultdict(collections.Counter)
    yield counts
    path = os.environ.get("KERAS_RECAE_FUZZ_STATS")
    if path:
        Path(path).write_text(json.dumps(counts, indent=2, sort_keys=True) + "\n")
