"""Turning what a user's method returned into the data part of a SeldonMessage.

Rule (Seldon v1 `construct_response`): dict -> jsonData, bytes -> binData, str -> strData,
list/ndarray -> DefaultData.  A numeric array keeps the request's array form (tensor stays
tensor, tftensor stays tftensor, ndarray stays ndarray); a non-numeric one is always ndarray;
when the request carried no array, numeric -> tensor, else ndarray.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from seldon_serving.protocol.arrays import tf_type_for_array
from seldon_serving.protocol.errors import BadRequest, InvalidRouting, RequestTooLarge
from seldon_serving.protocol.message import (
    BIN_DATA,
    CUSTOM_DATA,
    JSON_DATA,
    NDARRAY,
    STR_DATA,
    TENSOR,
    TFTENSOR,
    V2,
    SeldonMessage,
)

__all__ = [
    "ComponentResponse",
    "branch_of",
    "data_message",
    "default_names",
    "tf_dtype_of",
    "unwrap_response",
    "v2_message",
    "v2_raw_answer",
]


@dataclass(slots=True)
class ComponentResponse:
    """What a method may return to attach per-request tags and metrics to its answer, and
    (an addition of ours) the output `names` of this answer, instead of `class_names`.

    Seldon's `SeldonResponse(data, tags=None, metrics=None)` is accepted the same way (by its
    attributes), so classes written for seldon-core need no change.
    """

    data: Any
    tags: dict[str, Any] | None = None
    metrics: list[dict[str, Any]] | None = None
    names: list[str] | None = None


class Unwrapped(NamedTuple):
    data: Any
    tags: dict[str, Any] | None = None
    metrics: list[dict[str, Any]] | None = None
    names: list[str] | None = None


# Plain payload types never count as a response wrapper, even if they grow such attributes
# (an ndarray has a `.data` attribute, for one).
_PAYLOAD_TYPES = (np.ndarray, list, tuple, dict, str, bytes, bytearray, int, float)


def unwrap_response(result: Any) -> Unwrapped:
    """(data, runtime tags, runtime metrics, output names) from a plain value or a response wrapper."""
    if isinstance(result, ComponentResponse):
        return Unwrapped(result.data, result.tags, result.metrics, result.names)
    if (
        not isinstance(result, _PAYLOAD_TYPES)
        and result is not None
        and hasattr(result, "data")
        and hasattr(result, "tags")
        and hasattr(result, "metrics")
    ):
        return Unwrapped(result.data, result.tags, result.metrics)
    return Unwrapped(result)


# More `t:i` names (>= 5 bytes each on the wire) than fit in a 4 MiB answer, named in well under a second.
MAX_DEFAULT_NAMES = 2**20


def default_names(array: np.ndarray) -> list[str]:
    """Seldon's output names when the class declares none: one `t:i` per column of a >= 2-D array."""
    if array.ndim < 2:
        return []
    # An empty array may declare any width (a tftensor of shape [0, 2**40]): naming every column
    # would hang the server, and that many names could never fit in an answer anyway.
    if array.shape[1] > MAX_DEFAULT_NAMES:
        raise RequestTooLarge(
            f"the answer has {array.shape[1]} columns, more than the {MAX_DEFAULT_NAMES} "
            "this server names t:0, t:1, ..."
        )
    return [f"t:{i}" for i in range(array.shape[1])]


def tf_dtype_of(array: np.ndarray) -> str:
    """The TensorFlow dtype name `tf.make_tensor_proto` would give this array."""
    try:
        return tf_type_for_array(array).name
    except ValueError as exc:
        raise BadRequest(f"cannot answer a tftensor request with this array: {exc}") from None


def _as_array(result: list[Any] | np.ndarray) -> np.ndarray:
    if isinstance(result, np.ndarray):
        return result
    try:
        return np.array(result)
    except ValueError:
        # A ragged list: still a valid ndarray (ListValue) payload, just not a rectangular one.
        ragged = np.empty(len(result), dtype=object)
        ragged[:] = result
        return ragged


def _array_form(request: SeldonMessage | None, numeric: bool) -> str:
    if not numeric:
        return NDARRAY
    if request is not None and request.is_array:
        return request.form  # type: ignore[return-value]  # is_array implies a str form
    if request is not None and request.form is None and request.names:
        return NDARRAY  # `{"data": {"names": [...]}}` was DefaultData without a payload
    return TENSOR


def data_message(
    result: Any,
    request: SeldonMessage | None,
    names_for: Callable[[np.ndarray], list[str]] = default_names,
) -> SeldonMessage:
    """A SeldonMessage (no meta yet) holding `result` in the form the rule above picks
    (a V2 request's answer is V2: `v2_message`).

    `names_for` gives the output names of an array answer (the class-names rule).
    """
    if request is not None and request.form == V2:
        return v2_message(result, request)
    if isinstance(result, dict):
        return SeldonMessage(form=JSON_DATA, payload=result)
    if isinstance(result, bytes | bytearray):
        return SeldonMessage(form=BIN_DATA, payload=bytes(result))
    if isinstance(result, str):
        return SeldonMessage(form=STR_DATA, payload=result)
    if isinstance(result, list | np.ndarray):
        array = _as_array(result)
        if array.ndim == 0:
            raise BadRequest("Unknown data type returned as payload: a 0-d array (return a list or array)")
        numeric = array.dtype.kind in "iufc"  # np.number, without issubdtype's cost (bool is not)
        form = _array_form(request, numeric)
        names = names_for(array)
        if numeric:
            tf_dtype = tf_dtype_of(array) if form == TFTENSOR else None
            return SeldonMessage(form=form, payload=array, names=names, tf_dtype=tf_dtype)
        # Non-numeric: keep the user's own list (strings, dicts, None...) as the ListValue.
        payload = result if isinstance(result, list) else array.tolist()
        return SeldonMessage(form=NDARRAY, payload=payload, names=names)
    if _is_proto_any(result):
        from google.protobuf import json_format  # only users of customData pay for this import

        return SeldonMessage(form=CUSTOM_DATA, payload=json_format.MessageToDict(result))
    raise BadRequest(
        f"Unknown data type returned as payload (must be list or np array): {type(result).__name__}"
    )


def _is_proto_any(value: Any) -> bool:
    descriptor = getattr(value, "DESCRIPTOR", None)
    return getattr(descriptor, "full_name", None) == "google.protobuf.Any"


def v2_message(result: Any, request: SeldonMessage | None, names: list[str] | None = None) -> SeldonMessage:
    """The V2 answer (no meta yet) of what a user's method returned for a V2 request.

    Output names: a dict's keys; else one output, named by `names` when that holds exactly one
    name (a ComponentResponse's), else "output-0".  An InferPayload is answered as it is.
    """
    from seldon_serving.protocol import v2  # only V2 answers pay for the codec

    if isinstance(result, v2.InferPayload):
        payload = result
    else:
        if isinstance(result, dict):
            tensors = [v2.tensor_from_value(str(key), value) for key, value in result.items()]
        elif result is None:
            raise BadRequest("the method returned None, which is no V2 output")
        else:
            name = names[0] if names is not None and len(names) == 1 else "output-0"
            tensors = [v2.tensor_from_value(name, result)]
        payload = v2.InferPayload(tensors)
    if request is not None and request.form == V2 and payload.id is None:
        payload.id = request.payload.id
    return SeldonMessage(form=V2, payload=payload, names=payload.names())


def v2_raw_answer(result: Any, raw_name: str) -> SeldonMessage | None:
    """A raw method's answer to a V2 request when it is a V2 response dict (has "outputs");
    None for anything else (a SeldonMessage dict, read the usual way)."""
    if not isinstance(result, dict) or "outputs" not in result:
        return None
    from seldon_serving.protocol import v2
    from seldon_serving.protocol.errors import SeldonError, UserCodeError

    try:
        payload = v2.decode_json(result, response=True)
    except SeldonError as exc:
        raise UserCodeError(f"{raw_name}() returned an invalid V2 response: {exc.info}") from exc
    return SeldonMessage(form=V2, payload=payload, names=payload.names())


def branch_of(answer: SeldonMessage, node: str) -> int:
    """The branch a /route answer chose: element [0][0] of a 2-D array (Seldon's rule)."""
    if answer.form == V2 and answer.payload.tensors:  # a V2 request's route: its first output
        answer = SeldonMessage(form=TENSOR, payload=answer.payload.tensors[0].data)
    if not answer.is_array:
        raise InvalidRouting(f"router '{node}' answered no array (got {answer.form})", node=node)
    array = np.asarray(answer.array())
    if array.ndim != 2 or array.size == 0:
        raise InvalidRouting(f"router '{node}' must answer a 1x1 array, got shape {array.shape}", node=node)
    value = array.flat[0]
    try:
        return int(value)
    except (TypeError, ValueError):
        raise InvalidRouting(f"router '{node}' answered a non-integer branch {value!r}", node=node) from None
