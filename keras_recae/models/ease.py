"""EASE: the closed-form item-item linear autoencoder with a zero diagonal."""

from __future__ import annotations

import keras
import numpy as np

from keras_recae.models.linear_autoencoder import LinearAutoencoder
from keras_recae.search_space import float_range


@keras.saving.register_keras_serializable(package="keras_recae")
class EASE(LinearAutoencoder):
    """Embarrassingly shallow autoencoder (EASE), solved in closed form.

    The item-item weights are `B = I - P diag(1 / diag(P))` with
    `P = (X^T X + l2 I)^-1`, so that `diag(B) = 0`. `fit` takes the training
    matrix (not a `tf.data` pipeline) and computes `B` in float32 with one
    Cholesky factorisation and inversion done in place, holding one
    `n_items x n_items` matrix on the host and one copy in the model's
    weight. Scores are `X_u B`, computed sparse x dense. `alpha` and `beta`
    add the data-adaptive normalisation of `LinearAutoencoder`.

    Args:
        l2: float. The ridge penalty (Steck's lambda). Defaults to `500.0`.
        alpha: float. Item-side normalisation exponent. Defaults to `0.0`.
        beta: float. User-side normalisation exponent. Defaults to `0.0`.
        blas_threads: int | None. BLAS threads for the factorisation (see
            `LinearAutoencoder`). Defaults to `1`.

    Example:

    ```python
    from keras_recae.data import synthetic_interactions
    from keras_recae.models import EASE

    data = synthetic_interactions(seed=0)
    model = EASE(l2=50.0)
    model.fit(data)
    ```

    References:
        Steck. Embarrassingly Shallow Autoencoders for Sparse Data. WWW 2019.
    """

    search_space = {"l2": float_range(1.0, 10_000.0, log=True)}
    zero_diagonal = True

    def column_scales(self, diagonal: np.ndarray, penalty: np.ndarray) -> np.ndarray:
        return 1.0 / diagonal
