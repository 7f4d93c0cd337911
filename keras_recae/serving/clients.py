"""One client for one model source: an export directory, a REST root or a gRPC address."""

from __future__ import annotations

from keras_recae.serving.grpc_client import GrpcClient
from keras_recae.serving.rest_client import RestClient
from keras_recae.serving.saved_model_client import SavedModelClient


def open_client(
    export_dir=None,
    url: str | None = None,
    grpc: str | None = None,
    model_name: str = "recommender",
    version: int | None = None,
):
    """The client of whichever one source is given.

    Args:
        export_dir: path | None. An export base directory or version directory, served in
            this process (`SavedModelClient`).
        url: str | None. TF Serving's REST root, e.g. `http://localhost:8501`.
        grpc: str | None. TF Serving's gRPC address, `HOST:PORT`.
        model_name: str. The model's name on the server. Defaults to `"recommender"`.
        version: int | None. A fixed model version; the latest by default.

    Raises:
        ValueError: when not exactly one source is given.
    """
    given = [source for source in (export_dir, url, grpc) if source]
    if len(given) != 1:
        raise ValueError("give one model: EXPORT_DIR, --url URL or --grpc HOST:PORT")
    if export_dir:
        return SavedModelClient(export_dir, version=version)
    if url:
        return RestClient(url, model_name, version=version)
    return GrpcClient(grpc, model_name, version=version)
