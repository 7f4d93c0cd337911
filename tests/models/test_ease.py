import re

import keras
import numpy as np
import pytest
import scipy.sparse as sp

from keras_recae.data import synthetic_interactions, to_sparse_tensor
from keras_recae.models import EASE
from keras_recae.models import linear_autoencoder as ease_module

N_ITEMS = 40


@pytest.fixture(scope="module")
def data():
    return synthetic_interactions(n_users=120, n_items=N_ITEMS, n_clusters=4, density=0.15)


@pytest.fixture(scope="module")
def fitted(data):
    model = EASE(l2=20.0)
    model.fit(data)
    return model


def numpy_ease(matrix, l2):
    """B = I - P diag(1 / diag(P)) with P = (X^T X + l2 I)^-1, in float64."""
    x = matrix.toarray().astype(np.float64)
    p = np.linalg.inv(x.T @ x + l2 * np.eye(x.shape[1]))
    return np.eye(x.shape[1]) - p / np.diag(p)[None, :]


@pytest.mark.parametrize("block", [2048, 7], ids=["one-block", "blocks-of-7"])
@pytest.mark.parametrize("l2", [0.5, 20.0])
def test_weights_match_the_closed_form(monkeypatch, block, l2):
    # Real-valued counts and an item nobody saw (its row and column stay zero).
    rng = np.random.default_rng(1)
    dense = np.where(rng.random((60, 23)) < 0.3, rng.integers(1, 4, (60, 23)), 0.0)
    dense[:, 5] = 0.0
    matrix = sp.csr_matrix(dense)
    monkeypatch.setattr(ease_module, "_GRAM_BLOCK", block)
    model = EASE(l2=l2)
    model.fit(matrix)
    weights = model.weights_matrix.numpy()
    expected = numpy_ease(matrix, l2)
    np.testing.assert_array_equal(np.diag(weights), 0.0)
    np.testing.assert_allclose(weights, expected, atol=2e-5 * np.abs(expected).max())
    np.testing.assert_array_equal(weights[5], 0.0)
    assert bool(model.fitted.numpy())


def test_scores_are_the_history_times_the_weights(fitted, data):
    history = data.matrix[:15]
    scores = fitted(to_sparse_tensor(history)).numpy()
    expected = history.toarray() @ fitted.weights_matrix.numpy()
    np.testing.assert_allclose(scores, expected, rtol=1e-5, atol=1e-6)


def test_fit_returns_an_empty_history_and_takes_the_item_ids(data):
    model = EASE(l2=20.0)
    assert not model.is_trained()
    model.build((None, N_ITEMS))
    assert not model.is_trained()
    history = model.fit(data)
    assert model.is_trained()
    assert isinstance(history, keras.callbacks.History)
    assert history.history == {}
    np.testing.assert_array_equal(model.item_ids, data.item_ids)
    assert model.n_items == N_ITEMS


def test_fit_keeps_item_ids_given_before(data):
    model = EASE(l2=20.0)
    ids = [f"i{i}" for i in range(N_ITEMS)]
    model.set_item_ids(ids)
    model.fit(data)
    assert list(model.item_ids) == ids


@pytest.mark.parametrize("value", [np.ones((3, 4)), [[1.0, 0.0]], "data.csv"])
def test_fit_rejects_non_sparse_input(value):
    with pytest.raises(TypeError) as error:
        EASE().fit(value)
    message = str(error.value)
    assert "`EASE.fit` takes the training matrix as `Interactions` or a scipy sparse" in message
    assert message.endswith(f"Received: {type(value).__name__}")


def test_refuses_to_fit_when_memory_is_short(monkeypatch):
    monkeypatch.setattr(ease_module, "available_memory_bytes", lambda: 2**27)
    # 6,000 items need two float32 6000 x 6000 matrices: 288e6 bytes, about 0.27 GiB.
    matrix = sp.csr_matrix((3, 6000), dtype=np.float32)
    expected = (
        "EASE on 6000 items needs about 0.3 GiB (two float32 6000 x 6000 matrices) but only "
        "0.1 GiB is available. Filter rare items first"
    )
    with pytest.raises(MemoryError, match=re.escape(expected)):
        EASE().fit(matrix)


def test_available_memory_counts_the_reclaimable_cache(monkeypatch, tmp_path):
    meminfo = tmp_path / "meminfo"
    meminfo.write_text(
        "MemTotal:       24000000 kB\nMemFree:         1000000 kB\n"
        "MemAvailable:    5000000 kB\nCached:          3800000 kB\n"
    )
    monkeypatch.setattr(ease_module, "_MEMINFO", str(meminfo))
    assert ease_module.available_memory_bytes() == 5_000_000 * 1024
    # Without the file (not Linux), the free pages the OS reports.
    monkeypatch.setattr(ease_module, "_MEMINFO", str(tmp_path / "missing"))
    assert ease_module.available_memory_bytes() > 0


def test_fits_when_the_available_memory_is_unknown(monkeypatch, data):
    monkeypatch.setattr(ease_module, "available_memory_bytes", lambda: None)
    model = EASE(l2=20.0)
    model.fit(data)
    assert bool(model.fitted.numpy())


def test_a_singular_gram_matrix_names_l2():
    matrix = sp.csr_matrix(np.array([[1.0, 0.0], [1.0, 0.0]]))
    with pytest.raises(np.linalg.LinAlgError, match=r"not positive definite .* raise `l2`"):
        EASE(l2=0.0).fit(matrix)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"l2": -1.0}, "`l2` should be >= 0. Received: l2=-1.0"),
        (
            {"blas_threads": 0},
            "`blas_threads` should be a positive integer or None. Received: blas_threads=0",
        ),
    ],
)
def test_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ValueError) as error:
        EASE(**kwargs)
    assert message in str(error.value)
