"""DLAE, EDLAE and RDLAE against independent float64 computations, and the normalisation."""

import re

import numpy as np
import pytest
import scipy.sparse as sp

from keras_recae.data import to_sparse_tensor
from keras_recae.models import DLAE, EASE, EDLAE, RDLAE


@pytest.fixture(scope="module")
def matrix():
    # Counts and an item nobody saw, so that values other than 1 and empty columns are covered.
    rng = np.random.default_rng(3)
    dense = np.where(rng.random((80, 21)) < 0.3, rng.integers(1, 3, (80, 21)), 0.0)
    dense[:, 4] = 0.0
    dense[7] = 0.0
    return sp.csr_matrix(dense)


def weights(model, matrix) -> np.ndarray:
    model.fit(matrix)
    return model.weights_matrix.numpy().astype(np.float64)


def close(actual, expected):
    np.testing.assert_allclose(actual, expected, atol=3e-5 * max(1.0, np.abs(expected).max()))


def expected_dropout_minimiser(matrix, l2, p):
    """argmin_B E ||X - (D o X / (1 - p)) B||^2 + l2 ||B||^2 over dropout masks D.

    The expectation of the corrupted Gram matrix is `G + p / (1 - p) diagMat(diag G)`
    and that of the cross term `G`, so the normal equations are solved directly.
    """
    x = matrix.toarray()
    gram = x.T @ x
    corrupted = gram + np.diag(p / (1 - p) * np.diag(gram)) + l2 * np.eye(len(gram))
    return np.linalg.solve(corrupted, gram)


def test_dlae_is_the_minimiser_of_the_expected_dropout_objective(matrix):
    close(weights(DLAE(l2=3.0, dropout=0.4), matrix), expected_dropout_minimiser(matrix, 3.0, 0.4))


def test_dlae_without_dropout_is_ridge_regression_on_itself(matrix):
    x = matrix.toarray()
    expected = np.linalg.solve(x.T @ x + 5.0 * np.eye(x.shape[1]), x.T @ x)
    close(weights(DLAE(l2=5.0, dropout=0.0), matrix), expected)


def test_edlae_without_dropout_is_ease(matrix):
    edlae = weights(EDLAE(l2=7.0, dropout=0.0), matrix)
    np.testing.assert_array_equal(edlae, weights(EASE(l2=7.0), matrix))


def test_edlae_is_the_zero_diagonal_solution_with_dlae_penalty(matrix):
    """Minimises ||X - X B||^2 + ||Lambda^1/2 B||^2 subject to diag(B) = 0, column by column."""
    x = matrix.toarray()
    gram = x.T @ x
    penalty = 2.0 + 0.6 / 0.4 * np.diag(gram)
    expected = np.zeros_like(gram)
    for j in range(gram.shape[0]):
        others = np.arange(gram.shape[0]) != j
        system = gram[np.ix_(others, others)] + np.diag(penalty[others])
        expected[others, j] = np.linalg.solve(system, gram[others, j])
    close(weights(EDLAE(l2=2.0, dropout=0.6), matrix), expected)


def test_rdlae_holds_the_diagonal_at_or_under_xi(matrix):
    dlae = weights(DLAE(l2=2.0, dropout=0.3), matrix)
    rdlae = weights(RDLAE(l2=2.0, dropout=0.3, xi=0.2), matrix)
    assert np.diag(dlae).max() > 0.2
    assert np.diag(rdlae).max() <= 0.2 + 1e-6
    # Items whose DLAE weight on themselves was already under xi keep their DLAE column.
    free = np.diag(dlae) < 0.2
    assert free.any()
    close(rdlae[:, free], dlae[:, free])
    np.testing.assert_allclose(np.diag(rdlae)[~free], 0.2, atol=1e-5)


def test_rdlae_at_xi_zero_is_edlae_and_at_one_is_dlae(matrix):
    settings = {"l2": 4.0, "dropout": 0.5}
    close(weights(RDLAE(xi=0.0, **settings), matrix), weights(EDLAE(**settings), matrix))
    close(weights(RDLAE(xi=1.0, **settings), matrix), weights(DLAE(**settings), matrix))


@pytest.mark.parametrize("cls", [EASE, DLAE, EDLAE, RDLAE])
def test_normalisation_at_zero_changes_nothing(cls, matrix):
    plain = weights(cls(l2=3.0), matrix)
    np.testing.assert_array_equal(weights(cls(l2=3.0, alpha=0.0, beta=0.0), matrix), plain)


def numpy_normalised_edlae(matrix, l2, p, alpha, beta):
    """EDLAE on X^T D_U^-beta X, with the dropout penalty on the item counts, rescaled."""
    x = matrix.toarray()
    user_counts = x.sum(axis=1)
    user_counts[user_counts == 0] = 1.0
    item_counts = x.sum(axis=0)
    item_counts[item_counts == 0] = 1.0
    gram = x.T @ np.diag(user_counts**-beta) @ x
    penalty = l2 + p / (1 - p) * (x**2).sum(axis=0)
    inverse = np.linalg.inv(gram + np.diag(penalty))
    b = np.eye(len(gram)) - inverse / np.diag(inverse)[None, :]
    return np.diag(item_counts**alpha) @ b @ np.diag(item_counts**-alpha)


def test_normalisation_against_numpy(matrix):
    model = EDLAE(l2=3.0, dropout=0.3, alpha=0.4, beta=0.25)
    close(weights(model, matrix), numpy_normalised_edlae(matrix, 3.0, 0.3, 0.4, 0.25))


def test_item_side_normalisation_lowers_popular_items_scores(matrix):
    plain = EDLAE(l2=3.0, dropout=0.3)
    plain.fit(matrix)
    normalised = EDLAE(l2=3.0, dropout=0.3, alpha=0.5)
    normalised.fit(matrix)
    inputs = to_sparse_tensor(matrix[:40])
    popularity = np.asarray(matrix.sum(axis=0)).ravel()
    popular, rare = np.argmax(popularity), np.argmin(np.where(popularity > 0, popularity, 1e9))
    ratio_plain = plain(inputs).numpy()[:, [popular, rare]].sum(axis=0)
    ratio_normalised = normalised(inputs).numpy()[:, [popular, rare]].sum(axis=0)
    assert ratio_normalised[0] / ratio_normalised[1] < ratio_plain[0] / ratio_plain[1]


@pytest.mark.parametrize(
    "cls, kwargs, message",
    [
        (DLAE, {"dropout": 1.0}, "`dropout` should be in [0, 1). Received: dropout=1.0"),
        (EDLAE, {"dropout": -0.1}, "`dropout` should be in [0, 1). Received: dropout=-0.1"),
        (RDLAE, {"xi": 1.5}, "`xi` should be in [0, 1]. Received: xi=1.5"),
        (RDLAE, {"alpha": -1.0}, "`alpha` should be >= 0. Received: alpha=-1.0"),
        (EASE, {"beta": -0.5}, "`beta` should be >= 0. Received: beta=-0.5"),
    ],
)
def test_rejects_bad_arguments(cls, kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        cls(**kwargs)


@pytest.mark.parametrize("cls", [DLAE, EDLAE, RDLAE])
def test_config_round_trip_keeps_every_setting(cls):
    model = cls(l2=12.0, dropout=0.25, alpha=0.1, beta=0.2, blas_threads=None)
    restored = cls.from_config(model.get_config())
    for name in ("l2", "dropout", "alpha", "beta", "blas_threads"):
        assert getattr(restored, name) == getattr(model, name)


@pytest.mark.parametrize(
    "model, variants",
    [
        (EASE(l2=5.0, beta=0.3), [{}, {"alpha": 0.4}]),
        (DLAE(l2=5.0, dropout=0.4), [{"alpha": 0.3}, {}, {"alpha": 0.0}]),
        (EDLAE(l2=5.0, dropout=0.4, beta=0.2), [{"alpha": 0.5}, {}]),
        (
            RDLAE(l2=5.0, dropout=0.4, xi=0.1),
            [{"xi": 0.0}, {"xi": 0.3, "alpha": 0.2}, {}, {"alpha": 0.2, "xi": 0.05}],
        ),
    ],
    ids=lambda value: type(value).__name__ if not isinstance(value, list) else "",
)
def test_variant_scores_are_the_scores_of_models_fitted_with_those_settings(
    model, variants, matrix
):
    # Users' histories other than the training rows, so that the inputs' own items count.
    histories = matrix[::3]
    inverse = model.solve_inverse(sp.csr_matrix(matrix, dtype=np.float32))
    batches = list(model.variant_scores(inverse, histories, variants, batch_size=7))
    assert len(batches) == -(-histories.shape[0] // 7)
    for index, changes in enumerate(variants):
        fitted = model.variant(**changes)
        fitted.fit(matrix)
        expected = fitted(to_sparse_tensor(histories), training=False).numpy()
        actual = np.concatenate([batch[index] for batch in batches])
        close(actual, expected)


def test_variants_refuse_a_setting_that_changes_the_inverse():
    with pytest.raises(ValueError, match="variants of alpha, xi from one inverse, not of l2"):
        RDLAE().variant(l2=3.0)
    with pytest.raises(ValueError, match="variants of alpha from one inverse, not of xi"):
        EDLAE().variant(xi=0.1)
