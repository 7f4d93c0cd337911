"""`--shard-users`: two local workers, each keeping only its shard of the users.

The workers read a LightGCN split whose users they share out by a hash of the id. The
checks: each worker kept the lines of its users only, and the two shards are all users;
the model is the one a single device trains on the global batches (each worker's batch
of its own users, worker 0's first); the validation and test figures are those of one
evaluation of both workers' users.
"""

import json
import zlib

import keras
import numpy as np
import pytest
import scipy.sparse as sp
import tensorflow as tf

from keras_recae.data.pipeline import sparse_batches
from keras_recae.data.shards import load_shard
from keras_recae.data.spec import DataSpec
from keras_recae.data.split import EvalSet
from keras_recae.evaluation import evaluate_ranking
from keras_recae.models import MultVAE
from keras_recae.optimizers import FusedAdam

N_USERS, N_ITEMS = 300, 60
BATCH = 40
ARGS = [
    "train",
    "mult-vae",
    "--epochs",
    "2",
    "--eval-every",
    "2",
    "--batch-size",
    str(BATCH),
    "--set",
    "hidden_dims=[16,4]",
    "--seed",
    "0",
    "--metrics",
    "recall@10,ndcg@10",
    "--monitor",
    "ndcg@10",
]


def write_split(directory):
    """Three groups of users, each on its own 20 items: 6 train and 2 test items a user."""
    rng = np.random.default_rng(0)
    directory.mkdir()
    lines = {"train": [], "test": []}
    for user in range(N_USERS):
        group = user % 3
        items = rng.choice(np.arange(group * 20, group * 20 + 20), 8, replace=False)
        lines["train"].append(f"{user} " + " ".join(map(str, items[:6])))
        lines["test"].append(f"{user} " + " ".join(map(str, items[6:])))
    for name, rows in lines.items():
        (directory / f"{name}.txt").write_text("\n".join(rows) + "\n")
    return lines


@pytest.fixture(scope="module")
def runs(tmp_path_factory, run_workers):
    root = tmp_path_factory.mktemp("shard_users")
    scratch = root / "tmp"
    scratch.mkdir()
    lines = write_split(root / "data")
    args = [*ARGS, "--data", str(root / "data"), "--out", str(root / "run")]
    outputs = run_workers([*args, "--shard-users", "--distribute", "multi-worker"], root, scratch)
    return root, lines, outputs


def test_each_worker_keeps_the_lines_of_its_own_users(runs):
    _, lines, outputs = runs
    # Independently of the library: CRC-32 of the id's text, modulo the workers.
    shard_of = {user: zlib.crc32(str(user).encode()) % 2 for user in range(N_USERS)}
    users = [sum(1 for user in shard_of if shard_of[user] == k) for k in range(2)]
    assert 0 < users[0] < N_USERS
    for k, output in enumerate(outputs):
        pairs = sum(
            len(line.split()) - 1 for line in lines["train"] if shard_of[int(line.split()[0])] == k
        )
        assert (
            f"shard {k} of 2: {users[k]} users, {pairs} train lines "
            f"(users per shard: {users[0]}, {users[1]})"
        ) in output


def shard_batches(split, local_batch, steps, seed):
    """A worker's batches as the runner makes them: its rows padded to `steps` batches."""
    matrix = split.train.matrix
    padded = sp.vstack([matrix, sp.csr_matrix((steps * local_batch - matrix.shape[0], N_ITEMS))])
    return sparse_batches(padded.tocsr(), local_batch, shuffle=True, seed=seed)


def test_the_model_is_the_one_trained_on_the_global_batches_on_one_device(runs):
    root, _, _ = runs
    summary = json.loads((root / "run" / "metrics.json").read_text())
    assert summary["shards"] == {"workers": 2, "users": summary["shards"]["users"]}
    assert sum(summary["shards"]["users"]) == summary["n_users"] == N_USERS
    distributed = keras.saving.load_model(root / "run" / "model.keras")

    spec = DataSpec(str(root / "data"), seed=0)
    shards = [load_shard(spec, k, 2, 0.1) for k in range(2)]
    local = BATCH // 2
    steps = max(-(-users // local) for users in summary["shards"]["users"])
    # In the runner's order: the global seed, the model, its weights, the pipelines.
    keras.utils.set_random_seed(0)
    single = MultVAE(hidden_dims=[16, 4], seed=0)
    single.set_item_ids(shards[0][0].item_ids)
    single.compile(optimizer=FusedAdam(summary["run"]["lr"]))
    # (Mult-VAE takes no totals of the training data: nothing to combine over the shards.)
    single.adapt(shards[0][0].train.matrix)
    pipelines = [shard_batches(split, local, steps, seed=0) for split, _, _ in shards]
    global_batches = tf.data.Dataset.zip(tuple(pipelines)).map(
        lambda a, b: tf.sparse.concat(0, [a, b])
    )
    single.fit(global_batches.repeat(), steps_per_epoch=steps, epochs=2, verbose=0)

    assert int(keras.ops.convert_to_numpy(distributed.optimizer.iterations)) == 2 * steps
    pairs = list(zip(distributed.get_weights(), single.get_weights()))
    assert len(pairs) == len(single.get_weights()) > 0
    for a, b in pairs:
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-5)


def union(parts):
    return EvalSet(
        sp.vstack([part.inputs for part in parts]).tocsr(),
        sp.vstack([part.targets for part in parts]).tocsr(),
        np.concatenate([part.user_ids for part in parts]),
    )


def test_the_figures_are_those_of_both_workers_users_together(runs):
    root, _, _ = runs
    summary = json.loads((root / "run" / "metrics.json").read_text())
    model = keras.saving.load_model(root / "run" / "model.keras")
    shards = [load_shard(DataSpec(str(root / "data"), seed=0), k, 2, 0.1) for k in range(2)]
    for part in ("validation", "test"):
        eval_set = union([getattr(split, part) for split, _, _ in shards])
        expected = evaluate_ranking(model, eval_set, metrics=["recall@10", "ndcg@10"])
        assert summary[part].keys() == expected.keys()
        for name, value in expected.items():
            assert summary[part][name] == pytest.approx(value, abs=1e-9), (part, name)
    # Each worker has part of the users: no per-user files, no split digests.
    assert not list((root / "run").glob("*_users.csv.gz"))
    assert summary["split_digests"] == {}
