"""Exports shared by the serving tests: each model is trained and exported once."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
from background_checks import launch
from fixture_models import (
    K,
    explicit_fixture_model,
    train_zoo_model,
    user_fixture_model,
)

from keras_recae.serving import export

ZOO = [
    ("mult_vae", "int"),
    ("mult_vae", "str"),
    ("mult_dae", "int"),
    ("mult_dae", "str"),
    ("ease", "int"),
    ("ease", "str"),
    ("rec_vae", "int"),
    ("cdae", "str"),
    ("autoencoder", "int"),
    ("denoising_autoencoder", "str"),
    ("auto_rec_item", "int"),
    ("auto_rec_item", "str"),
    ("auto_rec_user", "str"),
    ("deep_rec", "int"),
    ("deep_rec_item", "str"),
]


@dataclass
class Exported:
    name: str
    model: object
    base_dir: Path
    path: Path
    k: int = K


@pytest.fixture(scope="session")
def exports(tmp_path_factory, request) -> dict:
    """Name -> `Exported` for every zoo model (int and str ids) and the two fixtures.

    When test_standalone.py is to run, its subprocesses start here, to run alongside
    the in-process tests.
    """
    root = tmp_path_factory.mktemp("exports")
    models = {f"{name}_{vocabulary}": train_zoo_model(name, vocabulary) for name, vocabulary in ZOO}
    models["explicit_fixture"] = explicit_fixture_model()
    models["user_fixture"] = user_fixture_model()
    exported = {}
    for name, model in models.items():
        base = root / name
        exported[name] = Exported(name, model, base, export(model, base, k=K))
    if any(item.path.name == "test_standalone.py" for item in request.session.items):
        _launched["checks"] = launch(exported, tmp_path_factory.mktemp("standalone"))
        request.addfinalizer(_launched["checks"].stop)
    return exported


_launched = {}


@pytest.fixture(scope="session")
def launched(exports, tmp_path_factory):
    """The subprocess checks (`background_checks.launch`), started with the exports."""
    if "checks" not in _launched:
        _launched["checks"] = launch(exports, tmp_path_factory.mktemp("standalone"))
    yield _launched["checks"]
    _launched.pop("checks").stop()
