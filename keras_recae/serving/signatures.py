"""Names of the serving signatures (DESIGN.md's serving contract) and the missing score.

Kept apart from the `tf.Module`s so that the clients read them without TensorFlow.
"""

from __future__ import annotations

import numpy as np

# Recommenders (`ServingModule`).
SERVING_DEFAULT = "serving_default"
RECOMMEND = "recommend"
SCORE = "score"
ENCODE = "encode"
RECOMMEND_FOR_USER = "recommend_for_user"

# Embedding refiners (`RefinerModule`); `serving_default` is `similar_items` there.
REFINE = "refine"
SIMILAR_ITEMS = "similar_items"

# What `score` returns for unknown or padding candidates, and the top-k signatures for
# slots with no item left: float32's lowest finite value, since -inf is not valid JSON.
MISSING_SCORE = float(np.finfo(np.float32).min)
