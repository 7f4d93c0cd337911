"""TF Serving warm-up records: `assets.extra/tf_serving_warmup_requests`."""

from __future__ import annotations

from pathlib import Path

WARMUP_DIR = "assets.extra"
WARMUP_FILE = "tf_serving_warmup_requests"


def warmup_path(version_dir) -> Path:
    """Where TF Serving looks for the warm-up records of a SavedModel."""
    return Path(version_dir) / WARMUP_DIR / WARMUP_FILE


def write_warmup_requests(version_dir, model_name: str, requests: dict) -> Path:
    """Writes one `PredictionLog` record per signature, which TF Serving replays on load.

    Args:
        version_dir: path. The SavedModel directory.
        model_name: str. The model name of the requests' `ModelSpec`.
        requests: dict. Signature name -> {input name -> numpy array}.

    Returns:
        The path of the records file.
    """
    import tensorflow as tf

    try:
        from tensorflow_serving.apis import model_pb2, predict_pb2, prediction_log_pb2
    except ImportError as error:
        raise ImportError(
            "Warm-up records need tensorflow-serving-api: pip install 'keras-recae[serving]', "
            "or export with warmup=False"
        ) from error

    path = warmup_path(version_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tf.io.TFRecordWriter(str(path)) as writer:
        for signature_name, inputs in requests.items():
            request = predict_pb2.PredictRequest(
                model_spec=model_pb2.ModelSpec(name=model_name, signature_name=signature_name)
            )
            for name, value in inputs.items():
                request.inputs[name].CopyFrom(tf.make_tensor_proto(value))
            log = prediction_log_pb2.PredictionLog(
                predict_log=prediction_log_pb2.PredictLog(request=request)
            )
            writer.write(log.SerializeToString())
    return path


def read_warmup_requests(version_dir) -> list:
    """The `PredictionLog` records of a SavedModel's warm-up file."""
    import tensorflow as tf
    from tensorflow_serving.apis import prediction_log_pb2

    path = warmup_path(version_dir)
    return [
        prediction_log_pb2.PredictionLog.FromString(record.numpy())
        for record in tf.data.TFRecordDataset(str(path))
    ]
