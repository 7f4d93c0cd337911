"""The scoring interface shared by every model of the zoo, and what a model declares."""

from __future__ import annotations

import keras
import numpy as np
import scipy.sparse as sp
import tensorflow as tf

from keras_recae import distribute
from keras_recae.data import ids
from keras_recae.data.pipeline import sparse_batches
from keras_recae.keras_overrides import DistributedTrainerOverrides
from keras_recae.sparse_ops import mask_entries


@keras.saving.register_keras_serializable(package="keras_recae")
class Recommender(DistributedTrainerOverrides, keras.Model):
    """A model that scores the whole catalogue from a user's sparse history.

    Subclasses implement `call(inputs, training=False)`, taking a
    `tf.SparseTensor` of shape `[batch, n_items]` (ratings, or 1.0 for implicit
    feedback) and returning scores of shape `[batch, n_items]`, higher meaning
    more relevant. On top of that this class gives `recommend` and `encode`,
    and keeps the raw item ids of the columns (`item_ids`), which are saved
    with the model in `.keras` files and become the vocabulary of the serving
    signatures.

    A model declares what it provides with class attributes, which the runner, the
    evaluation and the serving exports read:

    - `explicit`: its input values are ratings and `call` returns predicted ratings
      (the serving signatures take `ratings` beside the item ids).
    - `closed_form`: `fit(interactions)` solves for the weights; there is no gradient
      step, no optimizer and no `tf.data` pipeline (EASE).
    - `user_conditioned`: it keeps a node or weights per training user, scored by
      `score_users(inputs, user_indices)`, and the raw ids of those users
      (`user_ids`, set by `set_user_ids`).
    - `has_encoder`: `encode` gives a user representation.
    - `default_lr` and `default_batch_size`: Adam's learning rate and the rows per batch
      when the run gives none (`keras-recae train` without `--lr`, `--batch-size`): the
      settings that work on data nobody tuned for (the models that learn slowly at `1e-3`
      declare a larger rate).
    - `min_updates_per_epoch`: when the run leaves the batch size to the model, batches
      shrink below `default_batch_size` so that one pass over the training rows takes at
      least this many updates (a model that needs updates more than passes, on small data);
      None keeps `default_batch_size` whatever the data.

    and, for training, `adapt(matrix)` (prepare for a training matrix),
    `n_training_rows(matrix)` (the rows of one pass) and `training_batches(matrix,
    batch_size)` (the `tf.data` pipeline `fit` takes).
    """

    explicit = False
    closed_form = False
    user_conditioned = False
    has_encoder = False
    # The settings a tuning study varies by default (`keras_recae.search_space`): none
    # here; each model of the zoo declares its own.
    search_space: dict = {}
    default_lr = 1e-3
    default_batch_size = 500
    min_updates_per_epoch: int | None = None

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.item_ids = None
        self.user_ids = None

    @property
    def n_items(self) -> int | None:
        """The catalogue size, known once the model is built."""
        shape = (self.get_build_config() or {}).get("input_shape")
        return None if shape is None else int(shape[-1])

    def set_item_ids(self, item_ids) -> None:
        """Records the raw item id of each column, in column order."""
        item_ids = ids.vocabulary(item_ids, "item_ids")
        if self.n_items is not None and len(item_ids) != self.n_items:
            raise ValueError(
                f"`item_ids` should hold one id per item of the model ({self.n_items}). "
                f"Received: {len(item_ids)} ids."
            )
        self.item_ids = item_ids

    def set_user_ids(self, user_ids) -> None:
        """Records the raw id of each training user, in row order (user-conditioned models).

        Subclasses check the count against their users; this records the vocabulary.
        """
        if not self.user_conditioned:
            raise ValueError(
                f"{type(self).__name__} is not conditioned on users: it has no `user_ids`."
            )
        self.user_ids = ids.vocabulary(user_ids, "user_ids")

    def score_users(self, inputs: tf.SparseTensor, user_indices):
        """Scores with the weights of training users (`user_indices`, -1 for an unknown user).

        Only models conditioned on users (`user_conditioned`) implement it.
        """
        raise NotImplementedError(
            f"{type(self).__name__} is not conditioned on users: it has no `score_users`."
        )

    def is_trained(self) -> bool:
        """Whether the weights were ever fitted: at least one optimizer step."""
        return self.compiled and int(self.optimizer.iterations) > 0

    # -- training -----------------------------------------------------------------------

    def training_optimizers(self) -> list:
        """The optimizers `fit` updates the weights with: the compiled one."""
        return [self.optimizer]

    def adapt(self, matrix: sp.csr_matrix, combine=None) -> None:
        """Prepares the model for a users x items training matrix: builds it if needed.

        `combine`, when `matrix` is one worker's shard of the users, sums an array over
        the workers (a collective: every worker calls it at the same point); models that
        learn from totals of the training data (the items' counts of a popularity
        proposal or of ELSA's `alpha`, RecVAE's mean history) take the whole data's
        through it (`training_totals`, `training_item_counts`).
        """
        if not self.built:
            self.build_for_fit((None, matrix.shape[1]))

    @staticmethod
    def training_totals(values, combine=None) -> np.ndarray:
        """`values` (an array of totals of a training matrix) summed over the workers."""
        return np.asarray(values, dtype=np.float64) if combine is None else combine(values)

    def training_item_counts(self, matrix, combine=None) -> np.ndarray:
        """Each item's training entries (columns of `matrix`), summed over the workers."""
        matrix = sp.csr_matrix(matrix)
        counts = np.bincount(matrix.indices, minlength=matrix.shape[1])
        return self.training_totals(counts, combine)

    def n_training_rows(self, matrix: sp.csr_matrix) -> int:
        """The rows of one pass over a training matrix: its users."""
        return matrix.shape[0]

    def training_batches(
        self,
        matrix: sp.csr_matrix,
        batch_size: int,
        shuffle: bool = True,
        seed=None,
        initial_epoch: int = 0,
    ) -> tf.data.Dataset:
        """The `tf.data` pipeline of a training matrix that `fit` takes: `sparse_batches`.

        `initial_epoch` is the Keras epoch its first iteration is (a run resumed there):
        the row orders are then those an uninterrupted run's pipeline gives from it on.
        """
        return sparse_batches(
            matrix, batch_size, shuffle=shuffle, seed=seed, initial_pass=initial_epoch
        )

    def fit(self, x=None, y=None, *args, **kwargs):
        """`keras.Model.fit`; under a `tf.distribute` strategy, each replica gets its users.

        When the model was created under a strategy's scope (or `fit` is called in one), a
        `tf.data.Dataset` of sparse batches is split by `keras_recae.distribute.
        distribute_batches`, replica `r` of `R` getting rows `[r * B / R, (r + 1) * B / R)`
        of each global batch of `B` users, and `steps_per_epoch` defaults to the batches
        of one pass. The other arguments are those of `keras.Model.fit`.
        """
        strategy = self.fit_strategy()
        if strategy is not None and isinstance(x, tf.data.Dataset):
            x, steps = distribute.distribute_batches(strategy, x)
            if kwargs.get("steps_per_epoch") is None and len(args) < 11:
                kwargs["steps_per_epoch"] = steps
        return super().fit(x, y, *args, **kwargs)

    # -- scoring ------------------------------------------------------------------------

    def encode(self, inputs: tf.SparseTensor):
        """The user representation of each row (posterior mean for VAEs)."""
        raise NotImplementedError(f"{type(self).__name__} has no user representation.")

    def recommend(self, inputs: tf.SparseTensor, k: int = 10, exclude_inputs: bool = True):
        """Top-`k` column indices and scores per row, the input items left out.

        Returns:
            A pair `(indices, scores)` of tensors of shape `[batch, k]`.
        """
        scores = keras.ops.cast(self(inputs, training=False), "float32")
        if exclude_inputs:
            scores = mask_entries(scores, inputs)
        scores, indices = tf.math.top_k(scores, k=k)
        return indices, scores

    # -- saving -------------------------------------------------------------------------

    def save_assets(self, dir_path):
        if self.item_ids is not None:
            ids.write_id_asset(dir_path, ids.ITEM_IDS_FILE, self.item_ids)
        if self.user_ids is not None:
            ids.write_id_asset(dir_path, ids.USER_IDS_FILE, self.user_ids)

    def load_assets(self, dir_path):
        item_ids = ids.read_id_asset(dir_path, ids.ITEM_IDS_FILE)
        if item_ids is not None:
            self.set_item_ids(item_ids)
        user_ids = ids.read_id_asset(dir_path, ids.USER_IDS_FILE)
        # Files of the earlier command line hold the users of user-based AutoRecs too.
        if user_ids is not None and self.user_conditioned:
            self.set_user_ids(user_ids)
