"""Training under `tf.distribute`: strategies, distributed sparse batches, cross-replica sums.

Under `tf.distribute.MirroredStrategy` (several devices of one host) or
`tf.distribute.MultiWorkerMirroredStrategy` (several hosts, `TF_CONFIG`), each replica runs
the train step on its part of the global batch, and Keras's optimizer sums the replicas'
gradients before the update. The models of the zoo are written so that one step under a
strategy is the step on one device with the same global batch:

- Each replica's loss is its share of the global loss (`replica_mean`, `replica_share`):
  the per-user terms are summed over its rows and divided by the number of non-empty rows
  of the *global* batch (a cross-replica sum), so padding rows, which the pipelines add
  to the last batch and which may all land on one replica, count nowhere; terms that do
  not depend on the batch (weight penalties) are divided by the number of replicas. The
  summed gradients are then those of the global mean.
- Loss parts are tracked as global values (`global_sum`), so every replica's metric
  trackers hold the same numbers and Keras's averaging over replicas changes nothing.
- Random draws (dropout masks, reparameterisation noise, negative samples) are made for
  the whole global batch and sliced (`as_global_batch`): replicas get independent noise,
  and one epoch under a strategy gives the same weights as on one device.
- Variables a step assigns (RecVAE's phase and prior copy, the start of the output biases,
  the seed generators' states) get the same value on every replica, each replica writing
  its own copy.
- A `tf.cond` whose branches synchronise replicas (an optimizer update) runs in the
  cross-replica context (`switch`), as Keras's `LossScaleOptimizer` does.

`distribute_batches` splits each global batch of a `tf.data` pipeline of sparse batches
into the replicas' parts, the part of replica `r` being rows `[r * b, (r + 1) * b)`;
`Recommender.fit` calls it for datasets when the model was created under a strategy.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence

import keras
import numpy as np
import tensorflow as tf

from keras_recae.sparse_ops import in_xla_context

STRATEGIES = ("none", "mirrored", "multi-worker")


# ---------------------------------------------------------------------------------------
# Strategies


def split_cpu(n_devices: int) -> None:
    """Splits the host CPU into `n_devices` logical devices (CPU:0 ... CPU:n-1).

    This must run before TensorFlow initialises its devices (before the first op); it is a
    way to try MirroredStrategy without GPUs. Does nothing when the split is already there.
    """
    cpus = tf.config.list_physical_devices("CPU")
    current = tf.config.get_logical_device_configuration(cpus[0]) or []
    if len(current) == n_devices:
        return
    try:
        tf.config.set_logical_device_configuration(
            cpus[0], [tf.config.LogicalDeviceConfiguration() for _ in range(n_devices)]
        )
    except RuntimeError:
        raise RuntimeError(
            f"The CPU can only be split into {n_devices} logical devices before TensorFlow "
            "initialises its devices; split it at the start of the program."
        ) from None


def normalize_devices(devices: Sequence[str] | str | None) -> list[str] | None:
    """Device names as TensorFlow takes them: `"gpu:0,gpu:1"` -> `["/gpu:0", "/gpu:1"]`."""
    if devices is None:
        return None
    if isinstance(devices, str):
        devices = [device for device in devices.split(",") if device.strip()]
    names = []
    for device in devices:
        name = device.strip().lower().removeprefix("/").removeprefix("device:")
        kind, _, index = name.partition(":")
        if kind not in ("cpu", "gpu") or not index.isdigit():
            raise ValueError(
                "`devices` should be names like 'gpu:0' or 'cpu:1', comma-separated. "
                f"Received: {device!r}"
            )
        names.append(f"/{kind}:{int(index)}")
    if not names:
        raise ValueError("`devices` should name at least one device. Received none.")
    if len(set(names)) != len(names):
        raise ValueError(f"`devices` should not repeat a device. Received: {list(devices)}")
    return names


def make_strategy(kind: str, devices: Sequence[str] | str | None = None):
    """The `tf.distribute` strategy of a command-line choice, or None for `"none"`.

    Args:
        kind: str. `"none"`, `"mirrored"` (`MirroredStrategy` over `devices`, by default
            the visible GPUs, else the CPU) or `"multi-worker"`
            (`MultiWorkerMirroredStrategy`, the cluster read from the `TF_CONFIG`
            environment variable).
        devices: list of str | str | None. For `"mirrored"`: the devices, e.g.
            `["gpu:0", "gpu:1"]`; CPU devices beyond the first are made by splitting the
            CPU (`split_cpu`), which must happen before TensorFlow initialises.
    """
    if kind not in STRATEGIES:
        raise ValueError(f"`distribute` should be one of {list(STRATEGIES)}. Received: {kind!r}")
    names = normalize_devices(devices)
    if kind == "none":
        if names is not None:
            raise ValueError("`devices` applies to the mirrored strategy only.")
        return None
    if kind == "multi-worker":
        if names is not None:
            raise ValueError(
                "`devices` applies to the mirrored strategy only: each worker of a "
                "multi-worker strategy uses its visible GPUs, or its CPU."
            )
        check_tf_config(os.environ.get("TF_CONFIG"))
        return tf.distribute.MultiWorkerMirroredStrategy()
    if names is not None:
        cpus = [name for name in names if name.startswith("/cpu")]
        if cpus:
            split_cpu(max(int(name.split(":")[1]) for name in cpus) + 1)
        visible = {
            device.name.lower().rsplit("device:", 1)[-1]
            for device in tf.config.list_logical_devices()
        }
        missing = [name for name in names if name[1:] not in visible]
        if missing:
            raise ValueError(
                f"`devices`: {', '.join(missing)} not found. Visible devices: "
                + ", ".join(sorted(visible))
            )
    return tf.distribute.MirroredStrategy(names)


def check_tf_config(text: str | None) -> dict:
    """Parses `TF_CONFIG` for a multi-worker run, with an error saying what is wrong."""
    example = (
        '{"cluster": {"worker": ["host1:12345", "host2:12345"]}, '
        '"task": {"type": "worker", "index": 0}}'
    )
    if not text:
        raise ValueError(
            "The multi-worker strategy reads the cluster from the TF_CONFIG environment "
            f"variable, which is not set. Set it on every worker, e.g. TF_CONFIG='{example}' "
            "(index 0 on the first worker, 1 on the second, ...)."
        )
    try:
        config = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"TF_CONFIG is not JSON ({error}). Expected e.g. {example}") from None
    cluster = config.get("cluster") if isinstance(config, dict) else None
    task = config.get("task") if isinstance(config, dict) else None
    if not isinstance(cluster, dict) or not cluster or not isinstance(task, dict):
        raise ValueError(f"TF_CONFIG should hold 'cluster' and 'task'. Expected e.g. {example}")
    kind, index = task.get("type"), task.get("index")
    jobs = cluster.get(kind)
    if not isinstance(jobs, list) or not isinstance(index, int) or not 0 <= index < len(jobs):
        raise ValueError(
            f"TF_CONFIG: task {kind!r} {index!r} is not in the cluster "
            f"{json.dumps(cluster)}. Expected e.g. {example}"
        )
    return config


def is_chief(strategy) -> bool:
    """Whether this process writes the results: True but on the non-chief workers."""
    if strategy is None or not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return True
    resolver = strategy.cluster_resolver
    kind, index = resolver.task_type, resolver.task_id
    if kind is None or kind == "chief":
        return True
    has_chief = "chief" in (resolver.cluster_spec().as_dict() or {})
    return kind == "worker" and index == 0 and not has_chief


def is_multi_worker(strategy) -> bool:
    """Whether `strategy` spans several workers (a `TF_CONFIG` cluster)."""
    return (
        isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)
        and strategy.extended._in_multi_worker_mode()
    )


def worker_position(strategy) -> tuple[int, int]:
    """This worker's index among the workers of a strategy, and their number.

    The chief (if the cluster has one) is worker 0 and `worker` task `i` is `i + 1`, else
    `i`: the order of the strategy's input pipelines (`InputContext.input_pipeline_id`)
    and of its replicas. One host (no multi-worker cluster) is worker 0 of 1.
    """
    if not is_multi_worker(strategy):
        return 0, 1
    resolver = strategy.cluster_resolver
    cluster = resolver.cluster_spec().as_dict() or {}
    chiefs = len(cluster.get("chief", []))
    count = chiefs + len(cluster.get("worker", []))
    if resolver.task_type == "chief":
        return 0, count
    if resolver.task_type != "worker":
        raise ValueError(
            f"Only the chief and the workers train; this task is {resolver.task_type!r}."
        )
    return chiefs + int(resolver.task_id), count


def sum_over_workers(strategy, values) -> np.ndarray:
    """The sum over the workers of a strategy of each worker's `values` (an array), float64.

    Every worker must call it, with arrays of one shape, at the same point of the
    program: it is a collective. One host returns `values` as they are.
    """
    values = np.asarray(values, dtype=np.float64)
    if not is_multi_worker(strategy):
        return values
    _, workers = worker_position(strategy)
    local_replicas = strategy.num_replicas_in_sync // workers
    constant = tf.constant(values)

    def contribution():
        # The first replica of each worker gives its worker's values, the others zeros.
        replica = tf.distribute.get_replica_context().replica_id_in_sync_group
        return tf.cond(
            tf.equal(replica % local_replicas, 0),
            lambda: constant,
            lambda: tf.zeros_like(constant),
        )

    @tf.function(autograph=False)
    def reduce():
        parts = strategy.run(contribution)
        return strategy.reduce(tf.distribute.ReduceOp.SUM, parts, axis=None)

    return reduce().numpy()


# ---------------------------------------------------------------------------------------
# Input


def _batch_size(spec) -> int | None:
    """The static leading dimension of the batched parts of an element, checked equal."""
    sizes = {
        part.shape[0]
        for part in tf.nest.flatten(spec)
        if isinstance(part, (tf.SparseTensorSpec, tf.TensorSpec)) and part.shape.rank
    }
    if len(sizes) != 1 or None in sizes:
        return None
    return sizes.pop()


def distribute_batches(strategy, dataset: tf.data.Dataset, per_worker: bool = False):
    """Splits each global batch of `dataset` into the replicas' parts.

    The elements of `dataset` (as `sparse_batches` and the models' `training_batches`
    make them) are SparseTensors and tensors whose leading dimension is the global batch
    size `B`, static, and scalars (RecVAE's phase). Replica `r` of `R` gets rows
    `[r * B / R, (r + 1) * B / R)` of each batch and the scalars as they are. Every worker
    of a multi-worker strategy runs the whole pipeline and keeps its replicas' parts, so
    a shuffled pipeline must be seeded (the same seed on every worker).

    With `per_worker`, `dataset` is instead this worker's own batches (its shard of the
    users, `--shard-users`): each element holds the worker's `B / W` rows of the global
    batch, split among the worker's replicas in order, so that the global batch is the
    workers' batches one after the other (worker 0's first). Every worker's pipeline must
    give as many batches.

    The pipeline is repeated: fit with `steps_per_epoch` set to the returned number of
    steps (as `Recommender.fit` does), which Keras cannot read from a dataset made per
    worker.

    Args:
        strategy: `tf.distribute.MirroredStrategy` or
            `tf.distribute.MultiWorkerMirroredStrategy`.
        dataset: tf.data.Dataset. Batches with a static batch size `B`, a multiple of
            the number of replicas.

    Returns:
        `(distributed_dataset, steps)`: the `tf.distribute.DistributedDataset`, and the
        number of global batches of one pass over `dataset` (None when unknown or
        infinite).
    """
    if not isinstance(
        strategy, (tf.distribute.MirroredStrategy, tf.distribute.MultiWorkerMirroredStrategy)
    ):
        raise ValueError(
            "keras-recae trains under tf.distribute.MirroredStrategy or "
            f"MultiWorkerMirroredStrategy. Received: {type(strategy).__name__}"
        )
    spec = dataset.element_spec
    batch_size = _batch_size(spec)
    replicas = strategy.num_replicas_in_sync
    if batch_size is None:
        raise ValueError(
            "Distributing a pipeline needs batches of one static size (a padded last batch, "
            f"as `sparse_batches` makes). Received elements: {spec}"
        )
    if per_worker:
        # This worker's replicas share its batch.
        replicas = max(1, replicas // worker_position(strategy)[1])
    if batch_size % replicas:
        raise ValueError(
            f"The batch size ({batch_size}) should be a multiple of the number of replicas "
            f"({replicas}), so that each replica gets as many users."
        )
    part = batch_size // replicas
    cardinality = int(dataset.cardinality())
    steps = cardinality if cardinality >= 0 else None

    def dataset_fn(context: tf.distribute.InputContext) -> tf.data.Dataset:
        local_replicas = context.num_replicas_in_sync // context.num_input_pipelines
        first = 0 if per_worker else context.input_pipeline_id * local_replicas

        def parts(*components):
            element = components if isinstance(spec, tuple) else components[0]

            def replica_part(index):
                start = (first + index) * part
                return tf.nest.map_structure(lambda x: _rows(x, start, part), element)

            return tf.data.Dataset.range(local_replicas).map(replica_part)

        source = dataset.repeat() if steps else dataset
        return source.flat_map(parts).prefetch(tf.data.AUTOTUNE)

    return strategy.distribute_datasets_from_function(dataset_fn), steps


def _rows(x, start, size: int):
    """Rows `[start, start + size)` of a batched tensor, with the static shape kept."""
    if isinstance(x, tf.SparseTensor):
        sliced = tf.sparse.slice(x, tf.stack([start, 0 * start]), [size, x.shape[1]])
        outputs = tf.SparseTensor(sliced.indices, sliced.values, [size, x.shape[1]])
        outputs.set_shape([size, x.shape[1]])
        return outputs
    if x.shape.rank == 0:
        return x
    return tf.ensure_shape(x[start : start + size], [size, *x.shape[1:]])


# ---------------------------------------------------------------------------------------
# Inside the train step


def replica_context():
    """The replica context of a `tf.distribute` strategy, or None on one device."""
    if not tf.distribute.has_strategy() or tf.distribute.in_cross_replica_context():
        return None
    return tf.distribute.get_replica_context()


def num_replicas() -> int:
    """Replicas in sync in the current replica context; 1 on one device."""
    context = replica_context()
    return 1 if context is None else context.num_replicas_in_sync


def global_sum(values):
    """The sum over the replicas of `values` (a tensor or a structure of them).

    On one device, or outside a replica, `values` as they are.
    """
    context = replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return values
    return context.all_reduce(tf.distribute.ReduceOp.SUM, values)


def replica_mean(values, mask):
    """This replica's share of the mean of `values` over the masked rows of the global batch.

    `sum(values * mask)` over this replica's rows divided by the number of masked rows
    of the global batch, so that the shares of the replicas sum to the global mean. On
    one device it is the masked mean (0 when no row is masked).
    """
    mask = keras.ops.cast(mask, values.dtype)
    count = global_sum(keras.ops.sum(mask))
    return keras.ops.sum(values * mask) / keras.ops.maximum(count, 1.0)


def replica_share(value):
    """This replica's share of a term that does not depend on the batch (a weight penalty)."""
    replicas = num_replicas()
    return value if replicas == 1 else value / float(replicas)


def weight_penalty(losses):
    """This replica's share of the sum of a model's weight penalties (`model.losses`), float32."""
    return replica_share(keras.ops.cast(keras.ops.sum(losses), "float32"))


def as_global_batch(fn, values, equal_parts: bool = False):
    """`fn(values)` for a random `fn`, drawn as on one device with the whole global batch.

    `fn` maps a tensor to one of the same leading dimension, its random draws depending
    on that shape only (a dropout mask, Gaussian noise, random integers); `values` are
    this replica's rows (or stored entries) of the global batch. Inside a replica,
    `values` are placed at their position in a tensor as long as the global batch, `fn`
    is applied to it and this replica's part is returned. The replicas' draws are then
    independent, and together those of one device.

    Args:
        fn: callable. The random function.
        values: tensor. This replica's part, along the first axis.
        equal_parts: bool. Whether every replica has as many rows (batch rows, not stored
            entries), which spares a cross-replica gather of the sizes.
    """
    context = replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return fn(values)
    replicas = context.num_replicas_in_sync
    replica = tf.get_static_value(context.replica_id_in_sync_group)
    if replica is None:
        replica = context.replica_id_in_sync_group
    size = values.shape[0]
    if size is None or not (equal_parts or in_xla_context()):
        size = keras.ops.shape(values)[0]
    if equal_parts or in_xla_context():
        # XLA needs static shapes: the replicas' parts are taken as equal, which keeps the
        # draws independent (not those of one device when the entries are unequal).
        offset, total = replica * size, replicas * size
    else:
        sizes = context.all_gather(keras.ops.reshape(keras.ops.cast(size, "int64"), (1,)), 0)
        offset = keras.ops.sum(sizes[:replica])
        total = keras.ops.sum(sizes)
        size = keras.ops.cast(size, "int64")
    padding = [[offset, total - offset - size]] + [[0, 0]] * (len(values.shape) - 1)
    return fn(tf.pad(values, padding))[offset : offset + size]


def switch(predicate, true_fn, false_fn, *args) -> None:
    """Runs `true_fn(*args)` or `false_fn(*args)`, branches that may synchronise replicas.

    `keras.ops.cond` on one device. Under a strategy that synchronises replicas by
    `merge_call` (all but XLA on GPUs), a branch that does (an optimizer update, a
    cross-replica sum) cannot run inside a cond of the replica context: the cond then
    runs in the cross-replica context and each branch on every replica, as Keras's
    `LossScaleOptimizer` does. `predicate` must be the same on every replica; the
    branches return nothing.
    """

    def done(fn):
        def run():
            fn(*args)
            return keras.ops.convert_to_tensor(True)

        return run

    context = replica_context()
    if context is None or tf.__internal__.distribute.strategy_supports_no_merge_call():
        keras.ops.cond(predicate, done(true_fn), done(false_fn))
        return

    def cross_replica(strategy, predicate, *args):
        # Every replica computed the same predicate.
        predicate = strategy.experimental_local_results(predicate)[0]

        def on_replicas(fn):
            def run():
                strategy.extended.call_for_each_replica(fn, args=args)
                return tf.constant(True)

            return run

        tf.cond(predicate, on_replicas(true_fn), on_replicas(false_fn))

    context.merge_call(cross_replica, args=(predicate, *args))
