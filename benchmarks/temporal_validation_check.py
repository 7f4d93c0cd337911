"""The validation part of ML-1M's `temporal` split (users 1-2999): NDCG@20 of the popularity
ranking, of the Mult-VAE run of `benchmarks/time_protocols.sh`, and of EASE at several `l2`
(fitted here, and again in numpy from its closed form as an independent check).

Usage: python benchmarks/temporal_validation_check.py   (after benchmarks/time_protocols.sh,
whose Mult-VAE `model.keras` it loads: model files stay out of git)
"""

from pathlib import Path

import numpy as np

from keras_recae.data.spec import DataSpec, load_split
from keras_recae.evaluation import evaluate_ranking
from keras_recae.metrics import ranking_metrics
from keras_recae.models import EASE
from keras_recae.runs import load_run_model

HERE = Path(__file__).resolve().parent
DATA = HERE.parents[1] / "shared" / "data" / "ml-1m" / "ratings_users0001-2999.dat"


def top_20(scores, inputs):
    scores = scores.copy()
    scores[inputs.nonzero()] = -np.inf
    return np.argsort(-scores, axis=1)[:, :20]


def main() -> None:
    spec = DataSpec(str(DATA), protocol="temporal", validation_fraction=0.1)
    split, _ = load_split(spec)
    validation = split.validation
    counts = validation.target_counts()
    train = split.train.matrix
    popularity = np.asarray((train > 0).sum(axis=0), dtype=np.float64)
    top = top_20(np.repeat(popularity, validation.n_users, axis=0), validation.inputs)
    figure = ranking_metrics(top, validation.targets, names=("ndcg",), target_counts=counts)
    print(f"validation users {validation.n_users}; popularity NDCG@20 {figure['ndcg@20']:.4f}")
    run = HERE / "runs" / "time-protocols" / "ml1m-users1-2999-temporal-mult-vae"
    result = evaluate_ranking(load_run_model(run), validation, ["ndcg@20"])
    print(f"Mult-VAE ({run.name}) NDCG@20 {result['ndcg@20']:.4f}")
    gram = (train.T @ train).toarray().astype(np.float64)
    for l2 in (50.0, 500.0, 4500.0):
        model = EASE(l2=l2)
        model.set_item_ids(split.item_ids)
        model.fit(split.train)
        keras_figure = evaluate_ranking(model, validation, ["ndcg@20"])["ndcg@20"]
        inverse = np.linalg.inv(gram + l2 * np.eye(len(gram)))
        weights = -inverse / np.diag(inverse)
        np.fill_diagonal(weights, 0.0)
        top = top_20(validation.inputs.toarray() @ weights, validation.inputs)
        numpy_figure = ranking_metrics(
            top, validation.targets, names=("ndcg",), target_counts=counts
        )["ndcg@20"]
        print(f"EASE l2={l2:g} NDCG@20 {keras_figure:.4f} (numpy closed form {numpy_figure:.4f})")


if __name__ == "__main__":
    main()
