"""The contract every model of the zoo keeps, checked on one row per model class.

Adding a model to the zoo means adding one `Row` to `ZOO`, with settings that keep it
tiny; `test_every_model_class_has_a_row` fails until it is there. Each row gets: a config
round trip, a `.keras` round trip, a train step compiled with XLA, a step under each
mixed-precision policy, and an export whose answers, computed in a process that cannot
import `keras_recae` (as TF Serving runs it), equal the model's own. A model's
mathematics is tested in its own file under tests/models.

Models are trained the way the runner trains them, through the capabilities declared on
`Recommender` (`closed_form`, `user_conditioned`, `adapt`, `training_batches`), for one
epoch of one full batch.
"""

from __future__ import annotations

import importlib
import inspect
import pickle
import pkgutil
import subprocess
import sys
from dataclasses import dataclass, field

import keras
import numpy as np
import pytest
import scipy.sparse as sp
from background_checks import HERE, clean_environment
from fixture_models import decoded

import keras_recae.models
from keras_recae.data import to_sparse_tensor
from keras_recae.models import (
    CDAE,
    DLAE,
    EASE,
    EDLAE,
    ELSA,
    RDLAE,
    Autoencoder,
    AutoRec,
    DeepRec,
    DenoisingAutoencoder,
    DenoisingEmbeddingAutoencoder,
    EmbeddingAutoencoder,
    EmbeddingRefiner,
    EmbeddingVAE,
    MultDAE,
    MultVAE,
    Recommender,
    RecVAE,
)
from keras_recae.serving import export

K = 5


@dataclass(frozen=True)
class Row:
    """A model class of the zoo and constructor arguments that keep it tiny."""

    cls: type
    settings: dict = field(default_factory=dict)
    label: str = ""

    @property
    def name(self) -> str:
        return self.label or self.cls.__name__


ZOO = [
    Row(AutoRec, {"kind": "user", "hidden_units": 4, "l2": 1.0, "seed": 0}, "AutoRec-user"),
    Row(AutoRec, {"kind": "item", "hidden_units": 4, "l2": 1.0, "seed": 0}, "AutoRec-item"),
    Row(DeepRec, {"hidden_dims": (8, 4), "dropout": 0.2, "seed": 0}),
    Row(CDAE, {"hidden_dim": 4, "negative_ratio": 2, "seed": 0}),
    Row(MultDAE, {"hidden_dims": (8,), "seed": 0}),
    Row(MultVAE, {"hidden_dims": (8, 4), "total_anneal_steps": 10, "seed": 0}),
    Row(
        RecVAE,
        {
            "hidden_dim": 8,
            "latent_dim": 4,
            "n_layers": 2,
            "n_enc_epochs": 1,
            "n_dec_epochs": 1,
            "seed": 0,
        },
    ),
    Row(Autoencoder, {"hidden_dims": (8, 4), "seed": 0}),
    Row(DenoisingAutoencoder, {"hidden_dims": (8, 4), "seed": 0}),
    Row(EASE, {"l2": 10.0}),
    Row(DLAE, {"l2": 10.0, "dropout": 0.3}),
    Row(EDLAE, {"l2": 10.0, "dropout": 0.3, "alpha": 0.2, "beta": 0.2}),
    Row(RDLAE, {"l2": 10.0, "dropout": 0.3, "xi": 0.1}),
    Row(ELSA, {"rank": 4, "seed": 0}),
    Row(EmbeddingAutoencoder, {"latent_dim": 3, "hidden_dims": (8,), "seed": 0}),
    Row(
        DenoisingEmbeddingAutoencoder,
        {"latent_dim": 3, "hidden_dims": (8,), "dropout": 0.1, "seed": 0},
    ),
    Row(EmbeddingVAE, {"latent_dim": 3, "hidden_dims": (8,), "anneal_steps": 10, "seed": 0}),
]
ROWS = [pytest.param(row, id=row.name) for row in ZOO]

# Bases of the model families: they get no row, their subclasses do.
BASE_CLASSES = {
    "Recommender",
    "RatingAutoencoder",
    "ItemBasedRatings",
    "ReconstructionAutoencoder",
    "EmbeddingRefiner",
    "LinearAutoencoder",
}


def is_refiner(cls) -> bool:
    return issubclass(cls, EmbeddingRefiner)


@pytest.fixture(scope="module")
def data_for(implicit_data, rating_data, item_vectors):
    """The training data of a row: item vectors, ratings or interactions."""

    def data(row: Row):
        if is_refiner(row.cls):
            return item_vectors
        return rating_data if row.cls.explicit else implicit_data

    return data


def string_ids(prefix: str, ids) -> np.ndarray:
    return np.array([f"{prefix}-{i}" for i in ids], dtype=object)


def train(row: Row, data, **compile_arguments):
    """A new model of the row, trained for one epoch of one full batch (fitted, when in
    closed form), with string item ids (and user ids, when user conditioned).

    Returns:
        `(model, history)`, the history `None` for a closed-form model.
    """
    keras.utils.set_random_seed(0)
    model = row.cls(**row.settings)
    if is_refiner(row.cls):
        model.compile(optimizer=keras.optimizers.Adam(1e-2), **compile_arguments)
        history = model.fit(data, batch_size=len(data), epochs=1, verbose=0).history
        model.set_items(string_ids("item", range(len(data))), data)
        return model, history
    model.set_item_ids(string_ids("item", data.item_ids))
    if model.user_conditioned:
        model.set_user_ids(string_ids("user", data.user_ids))
    if model.closed_form:
        model.fit(data.matrix)
        return model, None
    model.adapt(data.matrix)
    model.compile(optimizer=keras.optimizers.Adam(1e-2), **compile_arguments)
    # One batch holds every row, whether the rows are users or items.
    batches = model.training_batches(data.matrix, max(data.matrix.shape), seed=0)
    return model, model.fit(batches, epochs=1, verbose=0).history


@pytest.fixture(scope="module")
def trained(data_for):
    """The model of a row trained by `train`, once per row for the whole module."""
    models = {}

    def get(row: Row):
        if row.name not in models:
            models[row.name] = train(row, data_for(row))[0]
        return models[row.name]

    return get


def inputs_of(model, data):
    """What the model takes: a few item vectors, or a few users' rows."""
    if isinstance(model, EmbeddingRefiner):
        return data[:6]
    return to_sparse_tensor(data.matrix[:6])


def predictions(model, inputs) -> np.ndarray:
    return np.asarray(keras.ops.convert_to_numpy(model(inputs, training=False)), np.float32)


def assert_finite_losses(history: dict) -> None:
    assert history["loss"], history
    for name, values in history.items():
        assert np.isfinite(values).all(), (name, values)


@pytest.mark.parametrize("row", ROWS)
def test_config_round_trip(row):
    model = row.cls(**row.settings)
    config = model.get_config()
    arguments = set(inspect.signature(row.cls.__init__).parameters) - {"self", "kwargs"}
    assert arguments <= set(config), arguments - set(config)
    restored = row.cls.from_config(config)
    assert type(restored) is row.cls
    assert restored.get_config() == config


@pytest.mark.parametrize("row", ROWS)
def test_keras_file_round_trip(row, trained, data_for, tmp_path):
    model = trained(row)
    path = tmp_path / "model.keras"
    model.save(path)
    restored = keras.saving.load_model(path)
    assert type(restored) is row.cls
    assert restored.get_config() == model.get_config()
    assert model.is_trained() and restored.is_trained()
    np.testing.assert_array_equal(restored.item_ids, model.item_ids)
    inputs = inputs_of(model, data_for(row))
    np.testing.assert_allclose(predictions(restored, inputs), predictions(model, inputs), atol=1e-6)
    if is_refiner(row.cls):
        np.testing.assert_allclose(restored.refine(), model.refine(), atol=1e-6)
    elif model.user_conditioned:
        np.testing.assert_array_equal(restored.user_ids, model.user_ids)
        users = np.array([3, 0, -1, 1, 2, 5], np.int64)
        np.testing.assert_allclose(
            np.asarray(restored.score_users(inputs, users)),
            np.asarray(model.score_users(inputs, users)),
            atol=1e-6,
        )


def set_ids(model, item_ids, user_ids=None) -> None:
    if isinstance(model, EmbeddingRefiner):
        model.set_items(item_ids, model.item_vectors)
        return
    model.set_item_ids(item_ids)
    if user_ids is not None:
        model.set_user_ids(user_ids)


@pytest.mark.parametrize("row", ROWS)
def test_keras_file_round_trip_keeps_the_kind_of_ids(row, trained, tmp_path):
    """String ids come back as strings (see above), integer ids as int64."""
    model = trained(row)
    conditioned = not is_refiner(row.cls) and model.user_conditioned
    names = (model.item_ids, model.user_ids if conditioned else None)
    integers = [None if ids is None else np.arange(len(ids)) * 7 for ids in names]
    try:
        set_ids(model, *integers)
        model.save(tmp_path / "model.keras")
    finally:
        set_ids(model, *names)
    restored = keras.saving.load_model(tmp_path / "model.keras")
    assert model.item_ids.dtype == object and restored.item_ids.dtype == np.int64
    np.testing.assert_array_equal(restored.item_ids, integers[0])
    if conditioned:
        assert restored.user_ids.dtype == np.int64
        np.testing.assert_array_equal(restored.user_ids, integers[1])


@pytest.mark.parametrize("row", ROWS)
def test_train_step_compiles_with_xla(row, data_for):
    if not is_refiner(row.cls) and row.cls.closed_form:
        pytest.skip(f"{row.name} is fitted in closed form: it has no train step to compile")
    model, history = train(row, data_for(row), jit_compile=True)
    assert model.jit_compile is True
    assert_finite_losses(history)
    assert int(model.optimizer.iterations) >= 1


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
@pytest.mark.parametrize("row", ROWS)
def test_mixed_precision_step(row, policy, data_for, dtype_policy):
    dtype_policy(policy)
    data = data_for(row)
    model, history = train(row, data)
    assert model.dtype_policy.name == policy
    if history is not None:
        assert_finite_losses(history)
        # Loss parts are tracked in float32, whatever the compute dtype.
        dtypes = {keras.backend.standardize_dtype(m.result().dtype) for m in model.metrics}
        assert dtypes == {"float32"}, dtypes
    outputs = model(inputs_of(model, data), training=False)
    if not is_refiner(row.cls) and model.explicit:
        # Ratings need float32's digits: a rating model predicts in float32.
        assert keras.backend.standardize_dtype(outputs.dtype) == "float32"
    assert np.isfinite(keras.ops.convert_to_numpy(keras.ops.cast(outputs, "float32"))).all()


def requests_of(model, data) -> dict:
    """Signature -> inputs: a few users' histories in raw ids and an empty one; for a
    refiner, a few vectors to refine."""
    if isinstance(model, EmbeddingRefiner):
        return {"refine": {"vectors": data[:4]}}
    matrix = sp.vstack([data.matrix[:3], sp.csr_matrix((1, data.matrix.shape[1]))]).tocsr()
    width = max(np.diff(matrix.indptr))
    ids = np.full((matrix.shape[0], width), "", dtype=object)
    values = np.zeros((matrix.shape[0], width), np.float32)
    for r in range(matrix.shape[0]):
        row = matrix[r]
        ids[r, : row.nnz] = model.item_ids[row.indices]
        values[r, : row.nnz] = row.data
    inputs = {"item_ids": ids}
    if model.explicit:
        inputs["ratings"] = values
    return {"serving_default": inputs}


def own_answers(model, data) -> dict:
    """What the model itself answers to `requests_of`: `refine`, or `recommend` in raw ids."""
    if isinstance(model, EmbeddingRefiner):
        return {"refined": model.refine(data[:4])}
    matrix = sp.vstack([data.matrix[:3], sp.csr_matrix((1, data.matrix.shape[1]))]).tocsr()
    if not model.explicit:
        matrix.data[:] = 1.0
    columns, scores = model.recommend(to_sparse_tensor(matrix), k=K)
    return {"item_ids": model.item_ids[np.asarray(columns)], "scores": np.asarray(scores)}


@pytest.fixture(scope="module")
def served(trained, data_for, tmp_path_factory):
    """Every row's model exported, then loaded and run in ONE process that cannot import
    `keras_recae` (tests/serving/standalone_runner.py): name -> its answers, and the
    runner's report on what it could import."""
    work = tmp_path_factory.mktemp("contract")
    jobs = {}
    for row in ZOO:
        model = trained(row)
        path = export(model, work / row.name, k=K)
        jobs[row.name] = {"path": str(path), "requests": requests_of(model, data_for(row))}
    with open(work / "requests.pkl", "wb") as file:
        pickle.dump(jobs, file)
    runner = [sys.executable, str(HERE / "standalone_runner.py"), "requests.pkl", "outputs.pkl"]
    process = subprocess.run(
        runner, cwd=work, env=clean_environment(), capture_output=True, text=True, timeout=600
    )
    assert process.returncode == 0, process.stderr[-3000:]
    with open(work / "outputs.pkl", "rb") as file:
        return pickle.load(file)


def assert_same_top_k(served: dict, own: dict, context: str) -> None:
    """Same scores; same ids wherever a score is not tied, where either order is right."""
    np.testing.assert_allclose(served["scores"], own["scores"], rtol=1e-5, atol=1e-5)
    ids, expected = decoded(served["item_ids"]), decoded(own["item_ids"])
    scores = np.asarray(own["scores"], np.float64)
    gaps = np.abs(np.diff(scores, axis=1)) > 1e-5
    untied = np.ones(scores.shape, bool)
    untied[:, 1:] &= gaps
    untied[:, :-1] &= gaps
    assert untied.any(), context
    np.testing.assert_array_equal(ids[untied], expected[untied], err_msg=context)


def test_the_export_runner_cannot_import_the_package(served):
    assert "blocked on purpose" in served["blocked"]
    assert served["project_modules"] == []


@pytest.mark.parametrize("row", ROWS)
def test_export_answers_as_the_model_where_only_tensorflow_is(row, served, trained, data_for):
    model = trained(row)
    own = own_answers(model, data_for(row))
    results = served["results"][row.name]
    for answers, where in ((results, "tf.saved_model.load"), (results["session"], "a TF1 session")):
        context = f"{row.name} in {where}"
        if is_refiner(row.cls):
            np.testing.assert_allclose(
                answers["refine"]["refined"], own["refined"], rtol=1e-5, atol=1e-6
            )
        else:
            assert_same_top_k(answers["serving_default"], own, context)


def zoo_classes() -> set:
    """Every model class of the package: the `Recommender` and `EmbeddingRefiner`
    subclasses defined in a module of `keras_recae.models` or registered with Keras
    under the package "keras_recae"."""
    found = set()
    for info in pkgutil.walk_packages(keras_recae.models.__path__, "keras_recae.models."):
        module = importlib.import_module(info.name)
        found.update(
            value
            for value in vars(module).values()
            if inspect.isclass(value) and value.__module__ == module.__name__
        )
    found.update(
        value
        for key, value in keras.saving.get_custom_objects().items()
        if key.startswith("keras_recae>") and inspect.isclass(value)
    )
    return {cls for cls in found if issubclass(cls, (Recommender, EmbeddingRefiner))}


def test_every_model_class_has_a_row():
    classes = {cls for cls in zoo_classes() if cls.__name__ not in BASE_CLASSES}
    assert len(classes) >= 12, classes
    rows = {row.cls for row in ZOO}
    missing = sorted(cls.__qualname__ for cls in classes - rows)
    assert not missing, f"Model classes without a row in ZOO: {missing}"
    unregistered = sorted(
        cls.__qualname__
        for cls in classes
        if keras.saving.get_registered_name(cls) != f"keras_recae>{cls.__name__}"
    )
    assert not unregistered, f"Not registered under package 'keras_recae': {unregistered}"
