"""Serving signatures under random requests, in process and through the stand-in server's
REST and gRPC: a defined result or INVALID_ARGUMENT with a message, never a crash and never a
non-finite score."""

from __future__ import annotations

import contextlib
import io
import json
import os
import urllib.error
import urllib.request

import grpc
import numpy as np
import pytest
import tensorflow as tf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from standin_server import StandInModelServer
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

from keras_recae.data.spec import DataSpec
from keras_recae.serving import export
from keras_recae.serving.signatures import MISSING_SCORE
from keras_recae.training import RunConfig, train

K = 5
# A bounded run in the test suite; `bash benchmarks/fuzz.sh serving` (KERAS_RECAE_FUZZ=long)
# sends many more requests and counts them (the `fuzz_counts` fixture).
settings.register_profile("serving-suite", max_examples=40, deadline=None)
settings.register_profile("serving-long", max_examples=1500, deadline=None)
SETTINGS = settings(
    settings.get_profile(f"serving-{os.environ.get('KERAS_RECAE_FUZZ', 'suite')}"),
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    root = tmp_path_factory.mktemp("fuzzed")
    with contextlib.redirect_stdout(io.StringIO()):
        result = train(
            RunConfig(
                "mult-dae",
                DataSpec("synthetic"),
                {"hidden_dims": [8]},
                epochs=1,
                out=str(root / "run"),
                verbose=0,
            )
        )
    base = root / "models" / "rec"
    path = export(result.model, base, k=K)
    signatures = tf.saved_model.load(str(path)).signatures
    known = [int(i) for i in result.model.item_ids]
    with StandInModelServer(base, "rec") as server:
        yield signatures, server, known


def id_rows(known):
    """Rows of raw ids: known, unknown, negative, huge, padding, repeated; ragged lengths."""
    ids = st.one_of(
        st.sampled_from(known),
        st.integers(min_value=-(2**63), max_value=2**63 - 1),
        st.just(-1),
        st.integers(min_value=10**6, max_value=10**7),
    )
    return st.lists(st.lists(ids, max_size=12), max_size=5)


def rectangle(rows) -> np.ndarray:
    """Rows padded with -1 to one width; each row leads with -1 as the clients send it."""
    width = 1 + max((len(row) for row in rows), default=0)
    return np.array([[-1] + row + [-1] * (width - 1 - len(row)) for row in rows], np.int64).reshape(
        len(rows), width
    )


def check_recommendations(item_ids, outputs, known):
    returned, scores = np.asarray(outputs["item_ids"]), np.asarray(outputs["scores"])
    assert returned.shape == scores.shape == (item_ids.shape[0], K)
    assert np.isfinite(scores).all()
    for row, history in zip(returned, item_ids):
        real = [item for item in row if item != -1]
        assert len(set(real)) == len(real)
        assert not set(real) & set(history.tolist())
        assert set(real) <= set(known)
    assert ((returned == -1) == (scores == MISSING_SCORE)).all()


@SETTINGS
@given(data=st.data())
def test_recommend_in_process(served, fuzz_counts, data):
    signatures, _, known = served
    item_ids = rectangle(data.draw(id_rows(known)))
    outputs = signatures["serving_default"](item_ids=tf.constant(item_ids))
    check_recommendations(item_ids, outputs, known)
    fuzz_counts["recommend in process"]["answered"] += 1


@SETTINGS
@given(data=st.data())
def test_score_with_repeated_and_unknown_candidates(served, fuzz_counts, data):
    signatures, _, known = served
    item_ids = rectangle(data.draw(id_rows(known)))
    width = data.draw(st.integers(min_value=1, max_value=8))
    candidates = np.array(
        [
            data.draw(
                st.lists(st.sampled_from(known + [-1, 10**9]), min_size=width, max_size=width)
            )
            for _ in range(item_ids.shape[0])
        ],
        np.int64,
    ).reshape(item_ids.shape[0], width)
    scores = signatures["score"](
        item_ids=tf.constant(item_ids), candidate_ids=tf.constant(candidates)
    )["scores"].numpy()
    assert scores.shape == candidates.shape and np.isfinite(scores).all()
    for row, scored in zip(candidates, scores):
        for item in set(row.tolist()):
            values = scored[row == item]
            assert (values == values[0]).all()  # a repeated candidate scores the same
            assert (values[0] == MISSING_SCORE) == (item not in known)
    fuzz_counts["score in process"]["answered"] += 1


def rest(server, body: dict):
    request = urllib.request.Request(
        f"{server.rest_url}/v1/models/rec:predict",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


@SETTINGS
@given(data=st.data())
def test_recommend_over_rest_and_grpc(served, fuzz_counts, data):
    _, server, known = served
    item_ids = rectangle(data.draw(id_rows(known)))
    status, body = rest(server, {"inputs": {"item_ids": item_ids.tolist()}})
    if item_ids.shape[0] == 0:
        # JSON has no empty matrix: `[]` is a rank-1 tensor, refused with the shape.
        assert status == 400 and "expected shape [?,?]" in body["error"]
        fuzz_counts["recommend REST"]["refused"] += 1
    else:
        assert status == 200, body
        check_recommendations(item_ids, body["outputs"], known)
        fuzz_counts["recommend REST"]["answered"] += 1
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "rec"
    request.model_spec.signature_name = "serving_default"
    request.inputs["item_ids"].CopyFrom(tf.make_tensor_proto(item_ids, dtype=tf.int64))
    with grpc.insecure_channel(server.grpc_target) as channel:
        response = prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(request)
    outputs = {name: tf.make_ndarray(proto) for name, proto in response.outputs.items()}
    check_recommendations(item_ids, outputs, known)
    fuzz_counts["recommend gRPC"]["answered"] += 1
    if item_ids.shape[0]:
        np.testing.assert_array_equal(outputs["item_ids"], np.asarray(body["outputs"]["item_ids"]))


@pytest.mark.parametrize(
    "inputs, rest_message, grpc_message",
    [
        (
            {"item_ids": [["a", "b"]]},
            'JSON Value: "a" Type: String is not of expected type: int64',
            "Expects arg[0] to be int64 but string is provided",
        ),
        ({"item_ids": [1, 2, 3]}, "expected shape [?,?]", "expected shape [?,?]"),
        (
            {"item_ids": [[1, 2]], "ratings": [[5, 4]]},
            "input size does not match signature",
            "input size does not match signature",
        ),
    ],
)
def test_malformed_requests_are_invalid_arguments(served, inputs, rest_message, grpc_message):
    _, server, _ = served
    status, body = rest(server, {"inputs": inputs})
    assert status == 400 and rest_message in body["error"]
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "rec"
    for name, value in inputs.items():
        dtype = None if isinstance(value[0], list) and isinstance(value[0][0], str) else tf.int64
        request.inputs[name].CopyFrom(tf.make_tensor_proto(value, dtype=dtype))
    with grpc.insecure_channel(server.grpc_target) as channel:
        with pytest.raises(grpc.RpcError) as raised:
            prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(request)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert grpc_message in raised.value.details()


# Tensors of any dtype and rank, strings included (valid UTF-8 or not).
TENSORS = st.one_of(
    st.lists(st.binary(max_size=6), max_size=4).map(lambda v: np.array(v, dtype=object)),
    st.lists(st.integers(-(2**31), 2**31 - 1), max_size=6).map(lambda v: np.array(v, np.int32)),
    st.lists(st.floats(allow_nan=True, allow_infinity=True), max_size=6).map(
        lambda v: np.array(v, np.float32)
    ),
    st.lists(st.integers(-(2**63), 2**63 - 1), max_size=6).map(lambda v: np.array(v, np.int64)),
).flatmap(
    lambda flat: (
        st.sampled_from([(), (1,), (len(flat),), (1, len(flat)), (len(flat), 1, 1)])
        .filter(lambda shape: int(np.prod(shape)) == len(flat))
        .map(lambda shape: flat.reshape(shape))
    )
)


@SETTINGS
@given(tensor=TENSORS, signature=st.sampled_from(["serving_default", "score"]))
def test_any_tensor_over_grpc_is_answered_or_invalid_argument(
    served, fuzz_counts, tensor, signature
):
    """Wrong dtypes, ranks, non-UTF-8 strings: an answer with finite scores, or
    INVALID_ARGUMENT with a message; never another status, and the server keeps serving."""
    _, server, known = served
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "rec"
    request.model_spec.signature_name = signature
    request.inputs["item_ids"].CopyFrom(tf.make_tensor_proto(tensor))
    if signature == "score":
        request.inputs["candidate_ids"].CopyFrom(tf.make_tensor_proto(tensor))
    with grpc.insecure_channel(server.grpc_target) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        try:
            response = stub.Predict(request, timeout=60)
        except grpc.RpcError as error:
            assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, error.details()
            assert error.details()
            fuzz_counts["any tensor gRPC"]["refused"] += 1
        else:
            scores = tf.make_ndarray(response.outputs["scores"])
            assert np.isfinite(scores).all()
            fuzz_counts["any tensor gRPC"]["answered"] += 1
        # Still serving.
        good = predict_pb2.PredictRequest()
        good.model_spec.name = "rec"
        good.inputs["item_ids"].CopyFrom(tf.make_tensor_proto(np.array([[-1, known[0]]], np.int64)))
        assert tf.make_ndarray(stub.Predict(good, timeout=60).outputs["scores"]).shape == (1, K)
