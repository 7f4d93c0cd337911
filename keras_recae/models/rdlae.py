"""RDLAE: the dropout linear autoencoder with its diagonal held at or under xi."""

from __future__ import annotations

import keras
import numpy as np

from keras_recae.checks import check_unit_interval
from keras_recae.models.dlae import DLAE
from keras_recae.search_space import float_range


@keras.saving.register_keras_serializable(package="keras_recae")
class RDLAE(DLAE):
    """Relaxed denoising linear autoencoder (RDLAE), solved in closed form.

    DLAE's objective under the inequality constraint `diag(B) <= xi` instead of EASE's
    `diag(B) = 0`: with `C = (G + Lambda)^-1`, the Lagrange multipliers are
    `mu_j = max(0, (1 - xi) / C_jj - Lambda_jj)` and `B = I - C diagMat(Lambda + mu)`, so
    an item whose unconstrained weight on itself exceeds `xi` is held at `xi` and the
    others keep DLAE's. With `xi=0` it is EDLAE; with `xi=1`, DLAE. `alpha` and `beta` add
    the data-adaptive normalisation of `LinearAutoencoder`.

    Args:
        l2: float. The ridge penalty. Defaults to `50.0`.
        dropout: float. The dropout rate `p`, in [0, 1). Defaults to `0.5`.
        xi: float. The largest diagonal weight, in [0, 1]. Defaults to `0.1`.
        alpha: float. Item-side normalisation exponent. Defaults to `0.0`.
        beta: float. User-side normalisation exponent. Defaults to `0.0`.
        blas_threads: int | None. BLAS threads for the factorisation (see
            `LinearAutoencoder`). Defaults to `1`.

    Example:

    ```python
    from keras_recae.data import synthetic_interactions
    from keras_recae.models import RDLAE

    data = synthetic_interactions(seed=0)
    model = RDLAE(l2=10.0, dropout=0.5, xi=0.1)
    model.fit(data)
    ```

    References:
        Moon, Kim, Lee. It's Enough: Relaxing Diagonal Constraints in Linear Autoencoders
        for Recommendation. SIGIR 2023.
    """

    search_space = {**DLAE.search_space, "xi": float_range(0.0, 0.5)}

    def __init__(
        self,
        l2: float = 50.0,
        dropout: float = 0.5,
        xi: float = 0.1,
        alpha: float = 0.0,
        beta: float = 0.0,
        blas_threads: int | None = 1,
        **kwargs,
    ):
        super().__init__(
            l2=l2, dropout=dropout, alpha=alpha, beta=beta, blas_threads=blas_threads, **kwargs
        )
        self.xi = check_unit_interval("xi", xi)

    variant_settings = ("alpha", "xi")

    def column_scales(self, diagonal: np.ndarray, penalty: np.ndarray) -> np.ndarray:
        return penalty + np.maximum(0.0, (1.0 - self.xi) / diagonal - penalty)

    def get_config(self):
        config = super().get_config()
        config.update({"xi": self.xi})
        return config
