"""Rating evaluation (`evaluate_ratings`) and model selection on it (`RatingEvaluation`)."""

import keras
import numpy as np
import pytest
import scipy.sparse as sp
import tensorflow as tf

from keras_recae.callbacks import RatingEvaluation
from keras_recae.data.pipeline import sparse_batches
from keras_recae.data.split import EvalSet
from keras_recae.evaluation import evaluate_ratings
from keras_recae.models import Recommender
from keras_recae.sparse_ops import row_counts, row_sums

N_ITEMS = 7


class OffsetFixture(Recommender):
    """Test fixture: predicts the user's mean given rating plus a trainable item offset.

    Users with an empty history get 3 plus the offset. Records the traced input shapes.
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.offsets = self.add_weight(shape=(N_ITEMS,), initializer="zeros")
        self.traced_shapes = []

    def call(self, x, training=False):
        self.traced_shapes.append(tuple(x.shape))
        counts, sums = row_counts(x), row_sums(x)
        means = tf.where(counts > 0, sums / tf.maximum(counts, 1.0), 3.0)
        return means[:, None] + self.offsets[None, :]

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        return keras.ops.sum(y_pred) * 0.0


class UserOffsetFixture(OffsetFixture):
    """Test fixture: conditioned on users, adding a per-user offset for known users."""

    user_conditioned = True

    def __init__(self, user_offsets, user_ids, **kwargs):
        super().__init__(**kwargs)
        self.user_offsets = tf.constant(user_offsets, tf.float32)
        self.user_ids = np.asarray(user_ids)

    def score_users(self, x, user_indices):
        known = tf.cast(user_indices >= 0, tf.float32)
        offsets = tf.gather(self.user_offsets, tf.maximum(user_indices, 0)) * known
        return self.call(x) + offsets[:, None]


def random_eval_set(rng, n_users, empty_target_users=()):
    inputs = np.where(rng.random((n_users, N_ITEMS)) < 0.4, rng.integers(1, 6, (n_users, 7)), 0)
    targets = np.where(
        (rng.random((n_users, N_ITEMS)) < 0.3) & (inputs == 0), rng.integers(1, 6, (n_users, 7)), 0
    )
    targets[list(empty_target_users)] = 0
    return EvalSet(
        sp.csr_matrix(inputs.astype(np.float32)),
        sp.csr_matrix(targets.astype(np.float32)),
        np.arange(100, 100 + n_users),
    )


def numpy_predictions(eval_set, offsets, user_offsets=None):
    inputs = eval_set.inputs.toarray()
    counts = (inputs != 0).sum(axis=1)
    means = np.where(counts > 0, inputs.sum(axis=1) / np.maximum(counts, 1), 3.0)
    predictions = means[:, None] + offsets[None, :]
    if user_offsets is not None:
        predictions = predictions + user_offsets[:, None]
    return predictions


def numpy_metrics(eval_set, predictions):
    targets = eval_set.targets.toarray()
    held_out = targets != 0
    errors = (predictions - targets)[held_out]
    return np.sqrt(np.mean(errors**2)), np.mean(np.abs(errors))


def test_rmse_and_mae_against_numpy_in_padded_batches():
    rng = np.random.default_rng(0)
    eval_set = random_eval_set(rng, 23, empty_target_users=(4, 9))
    model = OffsetFixture()
    offsets = rng.normal(size=N_ITEMS).astype(np.float32)
    model.offsets.assign(offsets)
    results = evaluate_ratings(model, eval_set, batch_size=5)
    rmse, mae = numpy_metrics(eval_set, numpy_predictions(eval_set, offsets))
    assert results == {"rmse": pytest.approx(rmse, rel=1e-6), "mae": pytest.approx(mae, rel=1e-6)}
    # 21 users with held-out ratings: five batches of the same static shape, one trace.
    assert model.traced_shapes == [(5, N_ITEMS)]


def test_models_conditioned_on_users_get_their_training_rows():
    rng = np.random.default_rng(1)
    eval_set = random_eval_set(rng, 12)
    # The model knows users 100..109 in another order, and neither 110 nor 111.
    known = np.array([105, 100, 103, 101, 102, 104, 107, 106, 109, 108, 555])
    user_offsets = rng.normal(size=len(known)).astype(np.float32)
    model = UserOffsetFixture(user_offsets, known)
    results = evaluate_ratings(model, eval_set, batch_size=4)
    per_user = np.array(
        [user_offsets[list(known).index(u)] if u in known else 0.0 for u in eval_set.user_ids]
    )
    rmse, mae = numpy_metrics(eval_set, numpy_predictions(eval_set, np.zeros(N_ITEMS), per_user))
    assert results["rmse"] == pytest.approx(rmse, rel=1e-6)
    assert results["mae"] == pytest.approx(mae, rel=1e-6)


def test_rejects_an_eval_set_without_held_out_ratings():
    empty = sp.csr_matrix((3, N_ITEMS), dtype=np.float32)
    with pytest.raises(ValueError, match="No user of `eval_set` has a held-out rating"):
        evaluate_ratings(OffsetFixture(), EvalSet(empty, empty, np.arange(3)))
    wide = sp.csr_matrix((3, N_ITEMS + 1), dtype=np.float32)
    with pytest.raises(ValueError, match="should have the same shape"):
        evaluate_ratings(OffsetFixture(), EvalSet(empty, wide, np.arange(3)))


class OffsetScheduleFixture(keras.callbacks.Callback):
    """Test fixture: at the start of epoch e, sets every item offset to `offsets[e]`."""

    def __init__(self, offsets):
        super().__init__()
        self.offsets = offsets

    def on_epoch_begin(self, epoch, logs=None):
        self.model.offsets.assign(np.full(N_ITEMS, self.offsets[epoch], np.float32))


@pytest.fixture
def constant_eval_set():
    """Every given and held-out rating is 3: the RMSE and MAE are |offset|."""
    inputs = sp.csr_matrix(np.eye(3, N_ITEMS, dtype=np.float32) * 3.0)
    targets = sp.csr_matrix(np.eye(3, N_ITEMS, 1, dtype=np.float32) * 3.0)
    return EvalSet(inputs, targets, np.arange(3))


def fit(offsets, epochs, callbacks):
    model = OffsetFixture()
    model.compile(optimizer=keras.optimizers.SGD(0.1), jit_compile=False)
    train = sp.csr_matrix(np.eye(4, N_ITEMS, dtype=np.float32))
    history = model.fit(
        sparse_batches(train, 4),
        epochs=epochs,
        callbacks=[OffsetScheduleFixture(offsets), *callbacks],
        shuffle=False,
        verbose=0,
    )
    return model, history


def test_selects_the_lowest_rmse_stops_early_and_restores(constant_eval_set):
    offsets = [0.9, -0.5, 0.7, 0.1, 0.3, -0.4, 0.2, 0.05]
    evaluation = RatingEvaluation(constant_eval_set, patience=2)
    model, history = fit(offsets, epochs=8, callbacks=[evaluation])
    # Best at epoch 4 (|0.1|); epochs 5 and 6 do not improve: stop after epoch 6.
    assert len(history.history["loss"]) == 6
    assert history.history["val_rmse"] == pytest.approx([abs(o) for o in offsets[:6]])
    assert history.history["val_mae"] == pytest.approx([abs(o) for o in offsets[:6]])
    assert evaluation.best_epoch == 4
    assert evaluation.best_metrics == {"rmse": pytest.approx(0.1), "mae": pytest.approx(0.1)}
    np.testing.assert_allclose(model.offsets.numpy(), 0.1)


def test_state_dir_keeps_the_best_epoch_across_a_resumed_run(constant_eval_set, tmp_path):
    first = RatingEvaluation(constant_eval_set, every=1, state_dir=str(tmp_path))
    fit([0.5, 0.2, 0.4], epochs=3, callbacks=[first])
    assert first.best_epoch == 2 and first.wait == 1
    resumed = RatingEvaluation(constant_eval_set, state_dir=str(tmp_path))
    model, _ = fit([0.3], epochs=1, callbacks=[resumed])
    # The resumed run's epoch (0.3) does not beat the stored best (0.2), which is restored.
    assert resumed.best_epoch == 2 and resumed.wait == 2
    assert resumed.best_value == pytest.approx(0.2)
    np.testing.assert_allclose(model.offsets.numpy(), 0.2)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (
            {"monitor": "ndcg@10"},
            "`monitor` should be 'rmse' or 'mae'. Received: monitor='ndcg@10'",
        ),
        ({"every": 0}, "`every` should be a positive integer. Received: every=0"),
        ({"patience": 0}, "`patience` should be a positive integer or None"),
    ],
)
def test_rejects_bad_arguments(constant_eval_set, kwargs, message):
    with pytest.raises(ValueError, match=message):
        RatingEvaluation(constant_eval_set, **kwargs)
