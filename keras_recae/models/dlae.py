"""DLAE: the linear autoencoder trained with dropout, solved in closed form."""

from __future__ import annotations

import keras
import numpy as np

from keras_recae.checks import check_rate
from keras_recae.models.linear_autoencoder import LinearAutoencoder
from keras_recae.search_space import float_range


@keras.saving.register_keras_serializable(package="keras_recae")
class DLAE(LinearAutoencoder):
    """Dropout linear autoencoder (DLAE), solved in closed form.

    Training a full-rank linear autoencoder with input dropout at rate `p` (the kept
    entries scaled by `1 / (1 - p)`) minimises, in expectation, the squared error plus
    the penalty `Lambda = l2 I + p / (1 - p) diagMat(diag(X^T X))`, which weighs each
    item by its popularity. The minimiser is `B = (G + Lambda)^-1 G = I - C Lambda` with
    `C = (G + Lambda)^-1`: dropout, not a constraint, keeps `B` from the identity, so its
    diagonal is not zero (it never reaches the rankings: a user's own items are excluded).
    `alpha` and `beta` add the data-adaptive normalisation of `LinearAutoencoder` (the
    penalty then uses the items' training counts).

    Args:
        l2: float. The ridge penalty. Defaults to `50.0`.
        dropout: float. The dropout rate `p`, in [0, 1). Defaults to `0.5`.
        alpha: float. Item-side normalisation exponent. Defaults to `0.0`.
        beta: float. User-side normalisation exponent. Defaults to `0.0`.
        blas_threads: int | None. BLAS threads for the factorisation (see
            `LinearAutoencoder`). Defaults to `1`.

    Example:

    ```python
    from keras_recae.data import synthetic_interactions
    from keras_recae.models import DLAE

    data = synthetic_interactions(seed=0)
    model = DLAE(l2=10.0, dropout=0.5)
    model.fit(data)
    ```

    References:
        Steck. Autoencoders that don't overfit towards the Identity. NeurIPS 2020.
    """

    search_space = {
        "l2": float_range(1.0, 1_000.0, log=True),
        "dropout": float_range(0.0, 0.9),
        "alpha": float_range(0.0, 0.5),
        "beta": float_range(0.0, 0.5),
    }

    def __init__(
        self,
        l2: float = 50.0,
        dropout: float = 0.5,
        alpha: float = 0.0,
        beta: float = 0.0,
        blas_threads: int | None = 1,
        **kwargs,
    ):
        super().__init__(l2=l2, alpha=alpha, beta=beta, blas_threads=blas_threads, **kwargs)
        self.dropout = check_rate("dropout", dropout)

    def diagonal_penalty(self, item_squares: np.ndarray) -> np.ndarray:
        return self.l2 + self.dropout / (1.0 - self.dropout) * item_squares

    def column_scales(self, diagonal: np.ndarray, penalty: np.ndarray) -> np.ndarray:
        return penalty

    def get_config(self):
        config = super().get_config()
        config.update({"dropout": self.dropout})
        return config
