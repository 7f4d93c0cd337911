"""EDLAE: the dropout linear autoencoder with full emphasis on the dropped entries."""

from __future__ import annotations

import keras
import numpy as np

from keras_recae.models.dlae import DLAE


@keras.saving.register_keras_serializable(package="keras_recae")
class EDLAE(DLAE):
    """Emphasized denoising linear autoencoder (EDLAE), solved in closed form.

    With full emphasis on the entries dropout removed, an item cannot predict itself: the
    solution is DLAE's penalty with EASE's zero-diagonal constraint,
    `B = I - C diagMat(1 / diag(C))` with `C = (G + Lambda)^-1` and
    `Lambda = l2 I + p / (1 - p) diagMat(diag(X^T X))`. With `dropout=0` it is EASE.
    `alpha` and `beta` add the data-adaptive normalisation of `LinearAutoencoder`.

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
    from keras_recae.models import EDLAE

    data = synthetic_interactions(seed=0)
    model = EDLAE(l2=10.0, dropout=0.5)
    model.fit(data)
    ```

    References:
        Steck. Autoencoders that don't overfit towards the Identity. NeurIPS 2020.
    """

    zero_diagonal = True

    def column_scales(self, diagonal: np.ndarray, penalty: np.ndarray) -> np.ndarray:
        return 1.0 / diagonal
