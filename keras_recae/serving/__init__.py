"""SavedModel export for TF Serving, and REST, gRPC and in-process clients.

The gRPC client and the warm-up records need the `serving` extra
(`tensorflow-serving-api`, `grpcio`); they are imported when used.
"""

from keras_recae.serving.clients import open_client
from keras_recae.serving.errors import ServingError
from keras_recae.serving.export import export
from keras_recae.serving.grpc_client import GrpcClient
from keras_recae.serving.refiner_module import RefinerModule
from keras_recae.serving.rest_client import RestClient
from keras_recae.serving.saved_model_client import SavedModelClient
from keras_recae.serving.serving_client import ServingClient
from keras_recae.serving.serving_module import ServingModule
from keras_recae.serving.signatures import (
    ENCODE,
    MISSING_SCORE,
    RECOMMEND,
    RECOMMEND_FOR_USER,
    REFINE,
    SCORE,
    SERVING_DEFAULT,
    SIMILAR_ITEMS,
)
from keras_recae.serving.versions import next_version, version_dir
from keras_recae.serving.warmup import read_warmup_requests, write_warmup_requests

__all__ = [
    "ENCODE",
    "MISSING_SCORE",
    "RECOMMEND",
    "RECOMMEND_FOR_USER",
    "REFINE",
    "SCORE",
    "SIMILAR_ITEMS",
    "SERVING_DEFAULT",
    "GrpcClient",
    "RefinerModule",
    "RestClient",
    "SavedModelClient",
    "ServingClient",
    "ServingError",
    "ServingModule",
    "export",
    "open_client",
    "next_version",
    "read_warmup_requests",
    "version_dir",
    "write_warmup_requests",
]
