"""A stand-in for TF Serving's model server, for testing the clients on loopback.

No TF Serving binary can be installed on the test machines, so this server answers
the way `tensorflow_model_server` documents it: the gRPC `PredictionService`
(`Predict`, `GetModelMetadata`) from the official `tensorflow-serving-api` service
definitions, and the REST API (`/v1/models/<name>[/versions/<v>]:predict` in the row
and columnar JSON formats, `.../metadata`, `{"error": ...}` bodies on failure). The
models are the SavedModels of a base directory, loaded with `tf.saved_model.load`,
as TF Serving loads them: no code of `keras_recae` runs in here.
"""

from __future__ import annotations

import json
import re
import threading
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import grpc
import numpy as np
import tensorflow as tf
from google.protobuf import json_format
from tensorflow.core.protobuf import saved_model_pb2
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    predict_pb2,
    prediction_service_pb2_grpc,
)

_MODEL_PATH = re.compile(r"^/v1/models/(?P<name>[^/:]+)(?:/versions/(?P<version>\d+))?")
_JSON_TYPES = {
    tf.int64: (int,),
    tf.int32: (int,),
    tf.float32: (int, float),
    tf.string: (str,),
}


class RequestError(Exception):
    """A refused request: a gRPC status code name and TF Serving's style of message."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


class StandInModelServer:
    """Serves every version of one model over REST and gRPC on 127.0.0.1.

    Args:
        model_base_path: path. The model's base directory (integer-named versions).
        model_name: str. The name clients ask for.

    Use as a context manager; ports are chosen by the OS.
    """

    def __init__(self, model_base_path, model_name: str, poll_seconds: float | None = None):
        self.model_name = model_name
        self.base_dir = Path(model_base_path)
        self.models = {}
        self.signature_defs = {}
        self.poll_seconds = poll_seconds
        self._polling = threading.Event()
        self.load_new_versions()
        if not self.models:
            raise FileNotFoundError(f"{self.base_dir}: no version to serve")
        self._http = None
        self._grpc = None

    def load_new_versions(self) -> list[int]:
        """Loads the integer-named versions not loaded yet, as TF Serving's file system
        source does when it polls the base directory; the latest serves once loaded."""
        loaded = []
        for path in sorted(self.base_dir.iterdir()):
            if not (path.name.isdigit() and (path / "saved_model.pb").is_file()):
                continue
            version = int(path.name)
            if version in self.models:
                continue
            saved_model = saved_model_pb2.SavedModel.FromString(
                (path / "saved_model.pb").read_bytes()
            )
            model = tf.saved_model.load(str(path))
            # Signatures first: a request may pick the version as soon as it is in `models`.
            self.signature_defs[version] = saved_model.meta_graphs[0].signature_def
            self.models[version] = model
            loaded.append(version)
        return loaded

    def _poll(self) -> None:
        while not self._polling.wait(self.poll_seconds):
            self.load_new_versions()

    # -- life cycle ---------------------------------------------------------------------

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc_info):
        self.stop()

    def start(self) -> None:
        server = self

        class Handler(_RestHandler):
            standin = server

        self._http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._http.daemon_threads = True
        threading.Thread(target=self._http.serve_forever, daemon=True).start()
        self._grpc = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
        prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
            _PredictionServicer(self), self._grpc
        )
        self.grpc_port = self._grpc.add_insecure_port("127.0.0.1:0")
        self._grpc.start()
        if self.poll_seconds:
            self._polling.clear()
            threading.Thread(target=self._poll, daemon=True).start()

    def stop(self) -> None:
        self._polling.set()
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
            self._http = None
        if self._grpc is not None:
            self._grpc.stop(grace=None).wait(5)
            self._grpc = None

    @property
    def rest_url(self) -> str:
        return f"http://127.0.0.1:{self._http.server_address[1]}"

    @property
    def grpc_target(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    # -- serving ------------------------------------------------------------------------

    def resolve(self, name: str, version: int | None) -> int:
        """The version a request names, or NOT_FOUND as TF Serving words it."""
        if name != self.model_name or (version is not None and version not in self.models):
            wanted = f"Latest({name})" if version is None else f"Specific({name}, {version})"
            raise RequestError("NOT_FOUND", f"Servable not found for request: {wanted}")
        return max(self.models) if version is None else version

    def signature(self, version: int, signature_name: str):
        signature_name = signature_name or "serving_default"
        if signature_name not in self.signature_defs[version]:
            raise RequestError(
                "INVALID_ARGUMENT",
                f'Serving signature name: "{signature_name}" not found in signature def',
            )
        return signature_name, self.models[version].signatures[signature_name]

    def predict(self, version: int, signature_name: str, inputs: dict) -> dict:
        """Runs a signature on numpy inputs; refusals raise `RequestError`."""
        signature_name, function = self.signature(version, signature_name)
        expected = function.structured_input_signature[1]
        if set(inputs) != set(expected):
            raise RequestError(
                "INVALID_ARGUMENT",
                f"input size does not match signature: {len(inputs)}!={len(expected)} "
                f"len({{{','.join(sorted(inputs))}}}) != len({{{','.join(sorted(expected))}}}). "
                f"Sent extra: {{{','.join(sorted(set(inputs) - set(expected)))}}}. "
                f"Missing but required: {{{','.join(sorted(set(expected) - set(inputs)))}}}.",
            )
        tensors = {}
        for position, (name, spec) in enumerate(sorted(expected.items())):
            tensor = tf.constant(inputs[name])
            if tensor.dtype != spec.dtype:
                raise RequestError(
                    "INVALID_ARGUMENT",
                    f"Expects arg[{position}] to be {spec.dtype.name} but "
                    f"{tensor.dtype.name} is provided",
                )
            tensors[name] = tensor
        try:
            outputs = function(**tensors)
        except tf.errors.OpError as error:
            raise RequestError("INVALID_ARGUMENT", error.message) from None
        return {name: tensor.numpy() for name, tensor in outputs.items()}


class _PredictionServicer(prediction_service_pb2_grpc.PredictionServiceServicer):
    def __init__(self, standin: StandInModelServer):
        self.standin = standin

    def _version(self, spec, context) -> int:
        version = spec.version.value if spec.HasField("version") else None
        try:
            return self.standin.resolve(spec.name, version)
        except RequestError as error:
            context.abort(getattr(grpc.StatusCode, error.code), error.message)

    def Predict(self, request, context):
        version = self._version(request.model_spec, context)
        inputs = {name: tf.make_ndarray(proto) for name, proto in request.inputs.items()}
        try:
            outputs = self.standin.predict(version, request.model_spec.signature_name, inputs)
        except RequestError as error:
            context.abort(getattr(grpc.StatusCode, error.code), error.message)
        response = predict_pb2.PredictResponse()
        response.model_spec.name = self.standin.model_name
        response.model_spec.version.value = version
        response.model_spec.signature_name = request.model_spec.signature_name or "serving_default"
        for name, value in outputs.items():
            response.outputs[name].CopyFrom(tf.make_tensor_proto(value))
        return response

    def GetModelMetadata(self, request, context):
        version = self._version(request.model_spec, context)
        if list(request.metadata_field) != ["signature_def"]:
            context.abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"Metadata field {','.join(request.metadata_field)} is not supported",
            )
        signature_map = get_model_metadata_pb2.SignatureDefMap()
        for name, signature in self.standin.signature_defs[version].items():
            signature_map.signature_def[name].CopyFrom(signature)
        response = get_model_metadata_pb2.GetModelMetadataResponse()
        response.model_spec.name = self.standin.model_name
        response.model_spec.version.value = version
        response.metadata["signature_def"].Pack(signature_map)
        return response


class _RestHandler(BaseHTTPRequestHandler):
    standin: StandInModelServer

    def log_message(self, *args):
        pass

    def do_GET(self):
        self._answer(self._get)

    def do_POST(self):
        self._answer(self._post)

    def _answer(self, handler):
        try:
            status, body = 200, handler()
        except RequestError as error:
            status = 404 if error.code == "NOT_FOUND" else 400
            body = {"error": error.message}
        data = json.dumps(body).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _route(self, suffix: str):
        match = _MODEL_PATH.match(self.path)
        if match is None or self.path[match.end() :] != suffix:
            raise RequestError("NOT_FOUND", f"Malformed request: {self.command} {self.path}")
        version = match.group("version")
        return self.standin.resolve(match.group("name"), None if version is None else int(version))

    def _get(self) -> dict:
        version = self._route("/metadata")
        signatures = self.standin.signature_defs[version]
        return {
            "model_spec": {
                "name": self.standin.model_name,
                "signature_name": "",
                "version": str(version),
            },
            "metadata": {
                "signature_def": {
                    "signature_def": {
                        name: json_format.MessageToDict(
                            signature,
                            preserving_proto_field_name=True,
                            always_print_fields_with_no_presence=True,
                        )
                        for name, signature in signatures.items()
                    }
                }
            },
        }

    def _post(self) -> dict:
        version = self._route(":predict")
        length = int(self.headers.get("Content-Length", 0))
        try:
            body = json.loads(self.rfile.read(length).decode("utf-8"))
        except ValueError as error:
            raise RequestError("INVALID_ARGUMENT", f"JSON Parse error: {error}") from None
        if not isinstance(body, dict) or ("instances" in body) == ("inputs" in body):
            raise RequestError(
                "INVALID_ARGUMENT", "Missing 'inputs' or 'instances' keys, or both are present"
            )
        signature_name, function = self.standin.signature(version, body.get("signature_name", ""))
        specs = function.structured_input_signature[1]
        if "instances" in body:
            columns = _rows_to_columns(body["instances"], specs)
        else:
            columns = body["inputs"]
            if not isinstance(columns, dict):
                if len(specs) != 1:
                    raise RequestError(
                        "INVALID_ARGUMENT", "'inputs' should be an object for several inputs"
                    )
                columns = {next(iter(specs)): columns}
        inputs = {name: _from_json(name, value, specs.get(name)) for name, value in columns.items()}
        outputs = self.standin.predict(version, signature_name, inputs)
        values = {name: _to_json(value) for name, value in outputs.items()}
        if "inputs" in body:
            return {"outputs": next(iter(values.values())) if len(values) == 1 else values}
        if len(values) == 1:
            return {"predictions": next(iter(values.values()))}
        batch = len(next(iter(values.values())))
        return {
            "predictions": [
                {name: value[i] for name, value in values.items()} for i in range(batch)
            ]
        }


def _rows_to_columns(instances, specs) -> dict:
    if not isinstance(instances, list):
        raise RequestError("INVALID_ARGUMENT", "'instances' should be a list")
    if instances and all(isinstance(row, dict) for row in instances):
        names = set(instances[0])
        for i, row in enumerate(instances):
            if set(row) != names:
                raise RequestError(
                    "INVALID_ARGUMENT",
                    f"Failed to process element: {i} of 'instances' list. JSON object: "
                    f"{json.dumps(row)} keys do not match the first instance's keys",
                )
        return {name: [row[name] for row in instances] for name in sorted(names)}
    if len(specs) != 1:
        raise RequestError(
            "INVALID_ARGUMENT",
            "Expecting object as the elements of 'instances' list: the signature has "
            f"{len(specs)} inputs",
        )
    return {next(iter(specs)): instances}


def _from_json(name: str, value, spec) -> np.ndarray:
    """A JSON value as a numpy array of the signature's dtype, or TF Serving's refusal."""
    if spec is None:
        return np.asarray(value)  # `predict` refuses unknown names.
    allowed = _JSON_TYPES[spec.dtype]
    for leaf in _leaves(value):
        if isinstance(leaf, bool) or not isinstance(leaf, allowed):
            kind = {str: "String", int: "Int", float: "Double", bool: "Bool"}.get(
                type(leaf), type(leaf).__name__
            )
            raise RequestError(
                "INVALID_ARGUMENT",
                f"JSON Value: {json.dumps(leaf)} Type: {kind} is not of expected type: "
                f"{spec.dtype.name}",
            )
    try:
        array = np.array(
            value, dtype=object if spec.dtype == tf.string else spec.dtype.as_numpy_dtype
        )
    except ValueError:
        raise RequestError(
            "INVALID_ARGUMENT",
            f"Expecting tensors of the same shape for input {name}: the rows differ in length",
        ) from None
    return array


def _leaves(value):
    if isinstance(value, list):
        for item in value:
            yield from _leaves(item)
    else:
        yield value


def _to_json(array: np.ndarray):
    if array.dtype.kind in "SO":
        flat = [v.decode("utf-8") if isinstance(v, bytes) else v for v in array.ravel()]
        return np.array(flat, dtype=object).reshape(array.shape).tolist()
    return array.tolist()
