import csv
import math

import keras
import numpy as np
import pytest
import scipy.sparse as sp
import tensorflow as tf

from keras_recae.callbacks import (
    LearningRateDecay,
    RandomStateBackup,
    RankingEvaluation,
    RunBackup,
)
from keras_recae.data.pipeline import sparse_batches
from keras_recae.data.split import EvalSet
from keras_recae.models import Recommender

N_ITEMS = 8


class ItemScoresFixture(Recommender):
    """Test fixture: the same trainable score vector for every user, and a zero loss.

    Training leaves the weights as they are, so `RankScheduleFixture` decides what each
    epoch's evaluation sees.
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.item_scores = self.add_weight(shape=(N_ITEMS,), initializer="zeros")

    def call(self, x, training=False):
        return tf.zeros([tf.shape(x)[0], 1]) + self.item_scores

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        return keras.ops.sum(y_pred) * 0.0


def scores_ranking_item_zero_at(rank):
    order = [item for item in range(1, N_ITEMS)]
    order.insert(rank - 1, 0)
    scores = np.zeros(N_ITEMS, np.float32)
    scores[order] = np.arange(N_ITEMS, 0, -1)
    return scores


class RankScheduleFixture(keras.callbacks.Callback):
    """Test fixture: at the start of epoch e, puts item 0 at rank `ranks[e]`."""

    def __init__(self, ranks):
        super().__init__()
        self.ranks = ranks

    def on_epoch_begin(self, epoch, logs=None):
        self.model.item_scores.assign(scores_ranking_item_zero_at(self.ranks[epoch]))


def ndcg_at_5(rank):
    # Item 0 is each user's only relevant item.
    return 1 / math.log2(rank + 1) if rank <= 5 else 0.0


@pytest.fixture
def eval_set():
    n_users = 3
    inputs = sp.csr_matrix((n_users, N_ITEMS), dtype=np.float32)
    targets = sp.csr_matrix(np.ones((n_users, 1), np.float32) * np.eye(1, N_ITEMS, 0))
    return EvalSet(inputs, targets, np.arange(n_users))


def fit(ranks, epochs, callbacks):
    model = ItemScoresFixture()
    model.compile(optimizer=keras.optimizers.SGD(0.1), jit_compile=False)
    train = sp.csr_matrix(np.eye(4, N_ITEMS, dtype=np.float32))
    history = model.fit(
        sparse_batches(train, 4),
        epochs=epochs,
        callbacks=[RankScheduleFixture(ranks), *callbacks],
        shuffle=False,
        verbose=0,
    )
    return model, history


def test_early_stopping_and_best_weights(eval_set):
    ranks = [5, 2, 3, 1, 4, 6, 7, 8, 2, 3]
    evaluation = RankingEvaluation(eval_set, metrics=["ndcg@5"], monitor="ndcg@5", patience=2)
    model, history = fit(ranks, epochs=10, callbacks=[evaluation])

    # Best at epoch 4 (rank 1); epochs 5 and 6 do not improve: stop after epoch 6.
    assert len(history.history["loss"]) == 6
    assert history.history["val_ndcg@5"] == pytest.approx([ndcg_at_5(r) for r in ranks[:6]])
    assert evaluation.best_epoch == 4
    assert evaluation.best_value == pytest.approx(1.0)
    assert evaluation.best_metrics == {"ndcg@5": pytest.approx(1.0)}
    np.testing.assert_array_equal(model.item_scores.numpy(), scores_ranking_item_zero_at(ranks[3]))


def test_keeps_last_weights_without_restoring(eval_set):
    ranks = [3, 1, 2]
    evaluation = RankingEvaluation(
        eval_set, metrics=["ndcg@5"], monitor="ndcg@5", restore_best_weights=False
    )
    model, _ = fit(ranks, epochs=3, callbacks=[evaluation])
    assert evaluation.best_epoch == 2
    np.testing.assert_array_equal(model.item_scores.numpy(), scores_ranking_item_zero_at(2))


def test_evaluates_every_n_epochs_and_at_the_last_with_stable_log_keys(eval_set, tmp_path):
    ranks = [1, 3, 2, 4, 5]
    evaluation = RankingEvaluation(
        eval_set, metrics=["ndcg@5", "recall@1"], monitor="val_ndcg@5", every=2
    )
    csv_path = tmp_path / "log.csv"
    _, history = fit(ranks, epochs=5, callbacks=[evaluation, keras.callbacks.CSVLogger(csv_path)])

    # Evaluated after epochs 2, 4 and 5 (the last); the latest values are repeated in between
    # even though the weights changed, and NaN comes before the first evaluation.
    values = history.history["val_ndcg@5"]
    assert np.isnan(values[0])
    assert values[1:] == pytest.approx([ndcg_at_5(3), ndcg_at_5(3), ndcg_at_5(4), ndcg_at_5(5)])
    assert history.history["val_recall@1"][1:] == [0.0, 0.0, 0.0, 0.0]
    assert evaluation.best_epoch == 2
    with open(csv_path, newline="") as file:
        rows = list(csv.DictReader(file))
    assert len(rows) == 5
    assert {"epoch", "loss", "val_ndcg@5", "val_recall@1"} <= set(rows[0])
    assert float(rows[3]["val_ndcg@5"]) == pytest.approx(ndcg_at_5(4))


def test_monitor_is_evaluated_when_not_listed(eval_set):
    evaluation = RankingEvaluation(eval_set, metrics=["recall@5"], monitor="ndcg@5")
    assert evaluation.metrics == ["recall@5", "ndcg@5"]
    _, history = fit([2], epochs=1, callbacks=[evaluation])
    assert history.history["val_ndcg@5"] == pytest.approx([ndcg_at_5(2)])


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"every": 0}, "`every` should be a positive integer. Received: every=0"),
        ({"patience": 0}, "`patience` should be a positive integer or None"),
        ({"metrics": ["ndcg@10", "auc@10"]}, "Unknown metric 'auc@10'"),
        ({"monitor": "val_loss"}, "Unknown metric 'loss'"),
    ],
)
def test_rejects_bad_arguments(eval_set, kwargs, message):
    with pytest.raises(ValueError, match=message):
        RankingEvaluation(eval_set, **kwargs)


def _regression(seed=0):
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    return model


def _regression_data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(8, 3)).astype(np.float32)
    y = (x @ np.array([1.0, -2.0, 0.5], np.float32))[:, None]
    return x, y


def test_learning_rate_decay_equals_a_staircase_exponential_schedule():
    x, y = _regression_data()
    # Two batches an epoch: the schedule steps once every two updates.
    schedule = keras.optimizers.schedules.ExponentialDecay(
        0.1, decay_steps=2, decay_rate=0.5, staircase=True
    )
    reference = _regression()
    reference.compile(optimizer=keras.optimizers.Adam(schedule), loss="mse")
    reference.fit(x, y, batch_size=4, epochs=4, shuffle=False, verbose=0)

    decay = LearningRateDecay(0.1, 0.5)
    model = _regression()
    model.compile(optimizer=keras.optimizers.Adam(0.1), loss="mse")
    history = model.fit(x, y, batch_size=4, epochs=4, shuffle=False, verbose=0, callbacks=[decay])

    assert history.history["learning_rate"] == pytest.approx([0.1, 0.05, 0.025, 0.0125])
    for ours, theirs in zip(model.get_weights(), reference.get_weights(), strict=True):
        np.testing.assert_allclose(ours, theirs, rtol=1e-6)


def test_learning_rate_decay_follows_the_epoch_number_when_resumed():
    x, y = _regression_data()
    model = _regression()
    model.compile(optimizer=keras.optimizers.Adam(0.1), loss="mse")
    # A fit resumed at epoch 3 (as BackupAndRestore does) starts at 0.1 * 0.5**3.
    history = model.fit(
        x, y, epochs=5, initial_epoch=3, verbose=0, callbacks=[LearningRateDecay(0.1, 0.5)]
    )
    assert history.history["learning_rate"] == pytest.approx([0.0125, 0.00625])
    assert float(model.optimizer.learning_rate) == pytest.approx(0.00625)


@pytest.mark.parametrize(
    "learning_rate, decay, message",
    [(0.1, 0.0, "decay must be in"), (0.1, 1.5, "decay must be in"), (0.0, 0.9, "positive")],
)
def test_learning_rate_decay_rejects_bad_arguments(learning_rate, decay, message):
    with pytest.raises(ValueError, match=message):
        LearningRateDecay(learning_rate, decay)


def _resumable_fit(backup, epochs, keep_random_state):
    """A tiny Mult-DAE (input dropout) fitted on unshuffled batches, resuming from `backup`."""
    from keras_recae.data import synthetic_interactions
    from keras_recae.models import MultDAE

    data = synthetic_interactions(n_users=60, n_items=30, n_clusters=3, density=0.2, seed=0)
    keras.utils.set_random_seed(0)
    model = MultDAE(hidden_dims=[8], seed=0)
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    model.build((None, 30))
    callbacks = [keras.callbacks.BackupAndRestore(str(backup), delete_checkpoint=False)]
    if keep_random_state:
        callbacks.append(RandomStateBackup(str(backup)))
    model.fit(sparse_batches(data.matrix, 20), epochs=epochs, verbose=0, callbacks=callbacks)
    return model.get_weights()


@pytest.mark.parametrize("keep_random_state", [True, False])
def test_a_resumed_fit_continues_the_dropout_noise(tmp_path, keep_random_state):
    straight = _resumable_fit(tmp_path / "straight", 4, keep_random_state)
    _resumable_fit(tmp_path / "resumed", 2, keep_random_state)
    assert (tmp_path / "resumed" / "random_state.npz").exists() == keep_random_state
    resumed = _resumable_fit(tmp_path / "resumed", 4, keep_random_state)
    same = all(np.allclose(a, b, atol=1e-6) for a, b in zip(straight, resumed, strict=True))
    # Without the saved states, the resumed epochs draw the first epochs' masks again.
    assert same == keep_random_state


def test_random_state_of_another_model_is_refused(tmp_path):
    np.savez(tmp_path / "random_state.npz", state_0=np.zeros(5, np.uint32))
    model = _regression()
    model.add(keras.layers.Dropout(0.5, seed=1))
    model.compile(optimizer="adam", loss="mse")
    x, y = _regression_data()
    with pytest.raises(ValueError, match="random_state.npz holds 1 random states that do not fit"):
        model.fit(x, y, epochs=1, verbose=0, callbacks=[RandomStateBackup(str(tmp_path))])


def _fit_with_run_backup(backup, epochs, eval_set=None):
    """A tiny Mult-DAE (input dropout) on unshuffled batches with a `RunBackup`, resumed
    from `backup`; with `eval_set`, a `RankingEvaluation` whose state goes with the backup.
    """
    from keras_recae.data import synthetic_interactions
    from keras_recae.models import MultDAE

    data = synthetic_interactions(n_users=60, n_items=30, n_clusters=3, density=0.2, seed=0)
    keras.utils.set_random_seed(0)
    model = MultDAE(hidden_dims=[8], seed=0)
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    model.build((None, 30))
    stateful = []
    if eval_set is not None:
        stateful = [RankingEvaluation(eval_set, metrics=["ndcg@5"], monitor="ndcg@5", verbose=0)]
    callbacks = [*stateful, RunBackup(str(backup), stateful=stateful)]
    model.fit(sparse_batches(data.matrix, 20), epochs=epochs, verbose=0, callbacks=callbacks)
    return model.get_weights(), (stateful[0] if stateful else None)


def synthetic_eval_set():
    inputs = sp.csr_matrix(np.eye(5, 30, dtype=np.float32))
    targets = sp.csr_matrix(np.eye(5, 30, k=1, dtype=np.float32))
    return EvalSet(inputs, targets, np.arange(5))


def test_run_backup_commits_each_epoch_whole_and_resumes_exactly(tmp_path):
    straight, straight_selection = _fit_with_run_backup(
        tmp_path / "straight", 4, synthetic_eval_set()
    )
    backup = tmp_path / "resumed"
    _fit_with_run_backup(backup, 2, synthetic_eval_set())
    assert RunBackup.committed_epoch(backup) == 2
    assert sorted(p.name for p in backup.iterdir()) == ["epoch-2", "training_metadata.json"]
    # A process killed in epoch 3, after writing some of its files, before the commit.
    (backup / "epoch-3.partial").mkdir()
    (backup / "epoch-3.partial" / "model.weights.h5").write_bytes(b"\x89HDF truncated")
    resumed, selection = _fit_with_run_backup(backup, 4, synthetic_eval_set())
    for a, b in zip(straight, resumed, strict=True):
        np.testing.assert_array_equal(a, b)
    assert selection.best_epoch == straight_selection.best_epoch
    assert selection.best_value == straight_selection.best_value
    for a, b in zip(selection.best_weights, straight_selection.best_weights, strict=True):
        np.testing.assert_array_equal(a, b)
    assert sorted(p.name for p in backup.iterdir()) == ["epoch-4", "training_metadata.json"]


def test_unchanged_best_weights_are_linked_not_written_again(tmp_path):
    selection = RankingEvaluation(synthetic_eval_set(), metrics=["ndcg@5"], verbose=0)
    selection.best_epoch, selection.best_weights = 3, [np.arange(4.0)]
    selection.save_state(str(tmp_path / "epoch-3"))
    selection.save_state(str(tmp_path / "epoch-4"), previous=str(tmp_path / "epoch-3"))
    first = (tmp_path / "epoch-3" / selection.weights_file).stat()
    second = (tmp_path / "epoch-4" / selection.weights_file).stat()
    assert first.st_ino == second.st_ino and second.st_nlink == 2
    selection.best_epoch, selection.best_weights = 5, [np.arange(4.0) + 1]
    selection.save_state(str(tmp_path / "epoch-5"), previous=str(tmp_path / "epoch-4"))
    restored = RankingEvaluation(synthetic_eval_set(), metrics=["ndcg@5"], verbose=0)
    restored.load_state(str(tmp_path / "epoch-5"))
    assert restored.best_epoch == 5
    np.testing.assert_array_equal(restored.best_weights[0], np.arange(4.0) + 1)
