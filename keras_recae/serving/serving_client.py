"""What every serving client shares: requests from histories, outputs as numpy arrays."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from keras_recae.data.ids import is_integer_kind, padding_of
from keras_recae.serving.signatures import ENCODE, RECOMMEND_FOR_USER, SCORE, SERVING_DEFAULT

_DTYPE_NAMES = {"DT_INT64": "int64", "DT_STRING": "string", "DT_FLOAT": "float32"}


class ServingClient:
    """Base class of the clients of an exported recommender.

    Subclasses send one Predict request (`_predict`) and read the model's metadata
    (`metadata`); this class turns users' histories into TF Serving inputs (raw ids
    padded to a rectangle with -1 or "") and the outputs back into numpy arrays
    (int64 or str ids, float32 scores).

    Every row of `item_ids` and `candidate_ids` starts with one padding id (and
    `ratings` with 0): TF Serving's batching (`pad_variable_length_inputs`) widens a
    request's tensors with their first element, which must then be padding, not the
    first user's first item.

    Args:
        model_name: str. The model's name on the server.
        version: int | None. A fixed model version; the newest by default.
    """

    def __init__(self, model_name: str, version: int | None = None):
        self.model_name = model_name
        self.version = version
        self._metadata = None

    # -- to implement -------------------------------------------------------------------

    def _predict(self, inputs: dict, signature_name: str) -> dict:
        raise NotImplementedError

    def metadata(self) -> dict:
        """The model's metadata, as TF Serving's REST API returns it (signature defs)."""
        raise NotImplementedError

    def close(self) -> None:
        """Releases the connection, if any."""

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    # -- requests -----------------------------------------------------------------------

    def predict(self, inputs: Mapping, signature_name: str = SERVING_DEFAULT) -> dict:
        """Runs a signature on tensors given as they are, for requests of any shape.

        Args:
            inputs: dict. Input name -> array-like, sent with its numpy dtype.
            signature_name: str. Defaults to `"serving_default"`.

        Returns:
            A dict output name -> numpy array (strings as `str`).
        """
        arrays = {name: _as_array(value) for name, value in inputs.items()}
        outputs = self._predict(arrays, signature_name)
        return {name: _as_output(value) for name, value in outputs.items()}

    def recommend(
        self,
        histories,
        ratings=None,
        k: int | None = None,
        user_ids=None,
    ) -> dict:
        """The top items of each history, the history itself left out.

        Args:
            histories: list of lists of raw item ids (or a padded 2-D array).
            ratings: list of lists of float | None. One rating per id, for
                explicit-rating models. Defaults to `None`.
            k: int | None. Keep the first `k` items; at most the `k` of the export.
                Defaults to `None` (all of them).
            user_ids: list | None. One user id per history: calls
                `recommend_for_user` (models conditioned on the user). Defaults to `None`.

        Returns:
            A dict with `item_ids` ([batch, k] int64 or str; the padding id where no
            item is left) and `scores` ([batch, k] float32).
        """
        inputs = self._history_inputs(histories, ratings)
        signature = SERVING_DEFAULT
        if user_ids is not None:
            inputs = {"user_id": _as_ids(user_ids, flat=True), **inputs}
            signature = RECOMMEND_FOR_USER
        outputs = self.predict(inputs, signature)
        if k is not None:
            available = outputs["item_ids"].shape[1]
            if not 1 <= k <= available:
                raise ValueError(
                    f"`k` should be in [1, {available}]: the model was exported with "
                    f"k={available}; export it again with a larger k. Received: k={k}"
                )
            outputs = {name: value[:, :k] for name, value in outputs.items()}
        return outputs

    def score(self, histories, candidates, ratings=None) -> np.ndarray:
        """The model's scores of candidate items (predicted ratings for explicit models).

        Args:
            histories: list of lists of raw item ids (or a padded 2-D array).
            candidates: list of lists of raw item ids to score, one list per history.
            ratings: list of lists of float | None. For explicit-rating models.

        Returns:
            A float32 array [batch, max candidates]; unknown and padding candidates
            score `MISSING_SCORE` (float32's lowest value).
        """
        inputs = self._history_inputs(histories, ratings)
        candidate_ids = _as_ids(candidates, dtype=inputs["item_ids"].dtype)
        inputs["candidate_ids"] = _lead_with_padding(candidate_ids)
        scores = self.predict(inputs, SCORE)["scores"]
        # Column 0 scores the leading padding; batching may add columns on the right.
        return scores[:, 1 : 1 + candidate_ids.shape[1]]

    def encode(self, histories, ratings=None) -> np.ndarray:
        """The user representation of each history (posterior mean for VAEs), [batch, d]."""
        return self.predict(self._history_inputs(histories, ratings), ENCODE)["embedding"]

    def item_id_dtype(self, signature_name: str = SERVING_DEFAULT) -> str:
        """`"int64"` or `"string"`: the raw item ids of the model, from its metadata."""
        return self.input_dtypes(signature_name)["item_ids"]

    def input_dtypes(self, signature_name: str = SERVING_DEFAULT) -> dict:
        """Input name -> dtype (`"int64"`, `"string"`, `"float32"`) of a signature."""
        if self._metadata is None:
            self._metadata = self.metadata()
        signatures = self._metadata["metadata"]["signature_def"]["signature_def"]
        if signature_name not in signatures:
            raise ValueError(
                f"The model has no signature {signature_name!r}. "
                f"Signatures: {', '.join(sorted(signatures))}"
            )
        inputs = signatures[signature_name]["inputs"]
        return {
            name: _DTYPE_NAMES.get(info["dtype"], info["dtype"]) for name, info in inputs.items()
        }

    def _history_inputs(self, histories, ratings) -> dict:
        dtype = None
        if not isinstance(histories, np.ndarray) and not any(len(h) for h in histories):
            # Nothing to tell int from string ids: ask the model.
            dtype = np.int64 if self.item_id_dtype() == "int64" else object
        item_ids = _as_ids(histories, dtype=dtype)
        inputs = {"item_ids": _lead_with_padding(item_ids)}
        if ratings is not None:
            ratings = _as_ratings(ratings, histories, item_ids.shape)
            inputs["ratings"] = _lead_with_padding(ratings)
        return inputs


def _as_array(value) -> np.ndarray:
    array = np.asarray(value)
    if array.dtype.kind == "U":
        array = array.astype(object)
    return array


def _as_output(value) -> np.ndarray:
    array = np.asarray(value)
    if array.dtype.kind in "SUO":
        texts = [_text(v) for v in array.ravel()]
        return np.array(texts, dtype=object).reshape(array.shape)
    if array.dtype.kind == "f":
        return array.astype(np.float32)
    if is_integer_kind(array):
        return array.astype(np.int64)
    return array


def _text(value) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def _as_ids(rows, dtype=None, flat: bool = False) -> np.ndarray:
    """Raw ids as an int64 or str array; ragged rows padded with -1 or ""."""
    if isinstance(rows, np.ndarray):
        return rows.astype(np.int64) if is_integer_kind(rows) else _as_array(rows)
    if isinstance(rows, (str, bytes)) or not isinstance(rows, Sequence):
        raise ValueError(f"Expected a list of ids per user. Received: {rows!r}")
    if flat:
        values = list(rows)
    else:
        if not all(map(_is_row, rows)):
            raise ValueError(
                "Expected one list of item ids per user, e.g. [[1, 2, 3]] for one user."
            )
        rows = [list(row) for row in rows]
        values = [value for row in rows for value in row]
    dtype = np.dtype(_id_dtype(values) if dtype is None else dtype)
    if flat:
        return np.array(values, dtype=dtype)
    width = max((len(row) for row in rows), default=0)
    array = np.empty((len(rows), width), dtype=dtype)
    array.fill(padding_of(array))
    for i, row in enumerate(rows):
        array[i, : len(row)] = row
    return array


def _lead_with_padding(array: np.ndarray) -> np.ndarray:
    """The array with one padding column in front (-1, "" or 0.0)."""
    if array.ndim != 2:
        return array
    fill = 0.0 if array.dtype.kind == "f" else padding_of(array)
    column = np.full((array.shape[0], 1), fill, dtype=array.dtype)
    return np.concatenate([column, array], axis=1)


def _is_row(row) -> bool:
    return isinstance(row, (Sequence, np.ndarray)) and not isinstance(row, (str, bytes))


def _id_dtype(values):
    if values and all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in values):
        return np.int64
    if values and all(isinstance(v, str) for v in values):
        return object
    kinds = sorted({type(v).__name__ for v in values})
    raise ValueError(
        f"Item ids should be all integers or all strings. Received values of type {kinds}"
    )


def _as_ratings(ratings, histories, shape) -> np.ndarray:
    """Ratings aligned with the padded ids: one per id, 0 under the padding."""
    if isinstance(ratings, np.ndarray):
        array = ratings.astype(np.float32)
    else:
        lengths = [len(row) for row in ratings]
        expected = (
            [len(row) for row in histories] if not isinstance(histories, np.ndarray) else None
        )
        if expected is not None and lengths != expected:
            raise ValueError(
                "`ratings` should hold one rating per item id of each history. "
                f"Received lengths {lengths} for histories of lengths {expected}"
            )
        array = np.zeros(shape, np.float32)
        for i, row in enumerate(ratings):
            array[i, : len(row)] = row
    if array.shape != tuple(shape):
        raise ValueError(
            f"`ratings` should have one rating per item id, shape {tuple(shape)}. "
            f"Received shape {array.shape}"
        )
    return array


def signature_defs_to_dict(signature_defs) -> dict:
    """A map of `SignatureDef` protos as TF Serving's REST metadata API shows it."""
    from google.protobuf import json_format

    return {
        "signature_def": {
            name: json_format.MessageToDict(
                signature,
                preserving_proto_field_name=True,
                always_print_fields_with_no_presence=True,
            )
            for name, signature in signature_defs.items()
        }
    }
