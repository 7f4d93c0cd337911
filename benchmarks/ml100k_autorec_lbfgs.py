"""I-AutoRec on MovieLens-100K u1 trained as the paper trained it: full-batch L-BFGS.

Sedhain et al. optimised AutoRec with L-BFGS (and Rprop); the benchmarks use full-batch
Adam with a decaying learning rate (benchmarks/_ratings.py). This script checks whether
the paper's optimiser does better on u1: the library's `AutoRec(kind="item")` and its loss
(masked squared error over the observed ratings plus `l2`/2 times the squared kernels,
both divided by the number of training ratings) are minimised by scipy's L-BFGS-B over all
weights at once, with gradients from TensorFlow. The protocol is that of
ml100k_ratings.py: the iteration count is chosen on 10% of each user's base ratings
(validation RMSE every 10 iterations; stop after 8 evaluations without improvement), then
the same initial weights are refitted on every base rating for that many iterations and
evaluated on u1.test.

Usage:
    python benchmarks/ml100k_autorec_lbfgs.py [--l2 100 300 1000] [--fold u1]
        [--max-iterations 1000] [--threads 1]

Prints one JSON line per `l2`.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parents[2] / "shared/data/ml-100k"
EVERY = 10
PATIENCE = 8


def minimise(data, l2: float, hidden: int, iterations: int, validation=None):
    """An I-AutoRec fitted on `data` by L-BFGS-B; with `validation`, early-stopped on it.

    Returns the model and the (iteration, validation RMSE) history.
    """
    import keras
    import scipy.optimize
    import tensorflow as tf

    from keras_recae.data.pipeline import to_sparse_tensor
    from keras_recae.evaluation import evaluate_ratings
    from keras_recae.models import AutoRec

    keras.utils.set_random_seed(0)
    model = AutoRec(kind="item", hidden_units=hidden, l2=l2, seed=0)
    model.adapt(data)
    rows = to_sparse_tensor(model.training_rows(data))
    weights = model.trainable_weights
    shapes = [tuple(w.shape) for w in weights]
    ends = np.cumsum([int(np.prod(shape)) for shape in shapes])

    def assign(x):
        for weight, shape, start, end in zip(weights, shapes, [0, *ends[:-1]], ends):
            weight.assign(x[start:end].reshape(shape).astype(np.float32))

    @tf.function
    def loss_and_gradient():
        with tf.GradientTape() as tape:
            loss = model.loss_parts(rows, training=True)["loss"]
        gradients = tape.gradient(loss, weights)
        return loss, tf.concat([tf.reshape(g, [-1]) for g in gradients], 0)

    def objective(x):
        assign(x)
        loss, gradient = loss_and_gradient()
        return float(loss), gradient.numpy().astype(np.float64)

    history, state = [], {"iteration": 0, "x": None}

    def callback(x):
        state["iteration"] += 1
        state["x"] = x.copy()
        if validation is None or state["iteration"] % EVERY:
            return
        assign(x)
        history.append((state["iteration"], evaluate_ratings(model, validation)["rmse"]))
        best = min(rmse for _, rmse in history)
        if len(history) > PATIENCE and min(rmse for _, rmse in history[-PATIENCE:]) > best:
            raise StopIteration  # scipy ends the minimisation and returns the last iterate

    x0 = np.concatenate([w.numpy().ravel() for w in weights]).astype(np.float64)
    scipy.optimize.minimize(
        objective,
        x0,
        jac=True,
        method="L-BFGS-B",
        callback=callback,
        options={"maxiter": iterations, "maxfun": 3 * iterations, "maxcor": 20},
    )
    assign(state["x"] if state["x"] is not None else x0)
    return model, history


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--l2", type=float, nargs="+", default=[100.0, 300.0, 1000.0])
    parser.add_argument("--hidden", type=int, default=500)
    parser.add_argument("--fold", default="u1")
    parser.add_argument("--max-iterations", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--data", default=str(DATA))
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

    from keras_recae.runs import configure_threads

    configure_threads(args.threads)
    from keras_recae.data.protocols import given_full_train, split_given
    from keras_recae.data.readers import read_given
    from keras_recae.evaluation import evaluate_ratings

    data = Path(args.data)
    train_frame, test_frame = read_given(data / f"{args.fold}.base", data / f"{args.fold}.test")
    split = split_given(train_frame, test_frame, validation_fraction=0.1, seed=0)
    train = given_full_train(train_frame, test_frame)
    for l2 in args.l2:
        cpu = time.process_time()
        _, history = minimise(split.train, l2, args.hidden, args.max_iterations, split.validation)
        best_iteration, best_rmse = min(history, key=lambda entry: entry[1])
        model, _ = minimise(train, l2, args.hidden, best_iteration)
        result = {
            "fold": args.fold,
            "l2": l2,
            "hidden": args.hidden,
            "iterations_run": history[-1][0],
            "best_iteration": best_iteration,
            "validation_rmse": best_rmse,
            "test": evaluate_ratings(model, split.test),
            "cpu_seconds": time.process_time() - cpu,
        }
        print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
