"""The Open Inference Protocol (V2) in memory, and its two wire forms.

An `InferPayload` is a V2 request (its `tensors` are the inputs) or a V2 response (its
`tensors` are the outputs); each `Tensor` holds its data as a numpy array of its shape, so
the same object travels from either edge through the data plane (inside a SeldonMessage of
form "v2") to a user's `predict` and back.

Wire forms:
- JSON (REST): row-major `data`, nested or flat; Triton's binary-data extension (a body whose
  first `Inference-Header-Content-Length` bytes are the JSON, followed by the tensors named
  with a `binary_data_size` parameter, in order), and binary outputs on request
  (`binary_data_output` on the request, `binary_data` on a requested output);
- protobuf (gRPC, `inference.GRPCInferenceService`): the typed `contents`, or
  `raw_input_contents` / `raw_output_contents` (little-endian row-major bytes; BYTES
  elements each a 4-byte little-endian length and the bytes).

Element data: BOOL -> numpy bool, INT*/UINT*/FP* -> the numpy type of that width, BYTES -> an
object array of `bytes` (JSON carries them as UTF-8 strings).  Malformed input is a BadRequest
naming the tensor and what is wrong; sizes are bounded by the body limit and `check_dims`.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson

from seldon_serving.protocol.errors import BadRequest, UserCodeError

__all__ = [
    "DATATYPES",
    "InferPayload",
    "RequestedOutput",
    "Tensor",
    "datatype_of",
    "decode_json",
    "decode_proto_request",
    "decode_proto_response",
    "decode_rest_body",
    "encode_json",
    "encode_proto_request",
    "encode_proto_response",
    "encode_rest_body",
    "meta_from_parameters",
    "meta_to_parameters",
    "select_outputs",
    "tensor_from_value",
]

# V2 datatype -> numpy dtype (little-endian on the wire); BYTES is an object array of bytes.
DATATYPES: dict[str, np.dtype[Any]] = {
    "BOOL": np.dtype(np.bool_),
    "UINT8": np.dtype(np.uint8),
    "UINT16": np.dtype(np.uint16),
    "UINT32": np.dtype(np.uint32),
    "UINT64": np.dtype(np.uint64),
    "INT8": np.dtype(np.int8),
    "INT16": np.dtype(np.int16),
    "INT32": np.dtype(np.int32),
    "INT64": np.dtype(np.int64),
    "FP16": np.dtype(np.float16),
    "FP32": np.dtype(np.float32),
    "FP64": np.dtype(np.float64),
    "BYTES": np.dtype(object),
}
_BY_DTYPE = {dtype: name for name, dtype in DATATYPES.items() if name != "BYTES"}
# The typed `InferTensorContents` field of each datatype (FP16 has none: raw contents only).
CONTENTS_FIELD = {
    "BOOL": "bool_contents",
    "UINT8": "uint_contents",
    "UINT16": "uint_contents",
    "UINT32": "uint_contents",
    "UINT64": "uint64_contents",
    "INT8": "int_contents",
    "INT16": "int_contents",
    "INT32": "int_contents",
    "INT64": "int64_contents",
    "FP32": "fp32_contents",
    "FP64": "fp64_contents",
    "BYTES": "bytes_contents",
}

MAX_DIMS = 32  # numpy 1.x's limit, as the Seldon codecs bound it
# The most elements a shape may declare: more than any body we accept could fill, far less
# than numpy's own limit (a shape with a zero in it allocates nothing, however wide).
MAX_ELEMENTS = 2**40
_LENGTH = struct.Struct("<I")


@dataclass(slots=True)
class Tensor:
    """One named input or output; `data` has the tensor's shape."""

    name: str
    datatype: str
    data: np.ndarray
    parameters: dict[str, Any] = field(default_factory=dict)

    @property
    def shape(self) -> list[int]:
        return list(self.data.shape)


@dataclass(slots=True)
class RequestedOutput:
    name: str
    parameters: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class InferPayload:
    """A V2 request (tensors = inputs, `outputs` = the outputs asked for) or response."""

    tensors: list[Tensor]
    id: str | None = None
    parameters: dict[str, Any] = field(default_factory=dict)
    outputs: list[RequestedOutput] = field(default_factory=list)
    model_name: str = ""
    model_version: str = ""
    # The request came with binary (REST) or raw (gRPC) contents: answer the same way.
    binary: bool = False

    def user_value(self) -> Any:
        """What a user's method gets: the one input's array, else a dict of name -> array."""
        if len(self.tensors) == 1:
            return self.tensors[0].data
        return {t.name: t.data for t in self.tensors}

    def names(self) -> list[str]:
        return [t.name for t in self.tensors]


def quote(name: str) -> str:
    """A name a client sent, quoted for an error sentence (control characters escaped, so the
    sentence stays one line)."""
    text = name if name.isprintable() else name.encode("unicode_escape").decode("ascii")
    return f"'{text}'"


# --- shapes and elements --------------------------------------------------------------------


def check_dims(shape: Any, where: str) -> tuple[int, ...]:
    if not isinstance(shape, list | tuple) or not all(
        isinstance(d, int) and not isinstance(d, bool) for d in shape
    ):
        raise BadRequest(f"{where} has shape {shape!r}; a shape is a list of integers")
    if len(shape) > MAX_DIMS:
        raise BadRequest(f"{where} has {len(shape)} dimensions; at most {MAX_DIMS} are supported")
    if any(d < 0 for d in shape):
        raise BadRequest(f"{where} has shape {list(shape)} with a negative size")
    if math.prod(d for d in shape if d) > MAX_ELEMENTS:
        raise BadRequest(f"{where} has shape {list(shape)}, more than {MAX_ELEMENTS} elements")
    return tuple(shape)


def _dtype(datatype: Any, where: str) -> np.dtype[Any]:
    found = DATATYPES.get(datatype) if isinstance(datatype, str) else None
    if found is None:
        known = ", ".join(DATATYPES)
        raise BadRequest(f"{where} has datatype {datatype!r}, which is not one of {known}")
    return found


def datatype_of(array: np.ndarray) -> str:
    """The V2 datatype of a numpy array (strings and bytes: BYTES)."""
    found = _BY_DTYPE.get(array.dtype.newbyteorder("=")) if array.dtype.kind != "O" else None
    if found is not None:
        return found
    if array.dtype.kind in "OUS":
        return "BYTES"
    raise UserCodeError(f"a numpy {array.dtype} array has no V2 datatype (use bool, int, uint, float or str)")


def _as_bytes(value: Any, where: str) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode()
    if isinstance(value, bytearray | memoryview | np.bytes_):
        return bytes(value)
    if isinstance(value, np.str_):
        return str(value).encode()
    raise BadRequest(
        f"{where} is BYTES but holds {type(value).__name__} {value!r}; BYTES elements are strings"
    )


def _bytes_array(values: Sequence[Any], shape: tuple[int, ...], where: str) -> np.ndarray:
    out = np.empty(len(values), dtype=object)
    for i, value in enumerate(values):
        out[i] = _as_bytes(value, where)
    return out.reshape(shape)


def _flatten(data: Any) -> list[Any]:
    """Nested lists, row-major, into one list (for BYTES, where numpy must not guess a type)."""
    if not isinstance(data, list):
        return [data]
    if not data or not isinstance(data[0], list):
        return data
    flat: list[Any] = []
    for item in data:
        flat.extend(_flatten(item))
    return flat


def _check_size(count: int, shape: tuple[int, ...], where: str) -> None:
    expected = math.prod(shape)
    if count != expected:
        raise BadRequest(f"{where} has {count} elements but its shape {list(shape)} needs {expected}")


def _json_array(data: Any, datatype: str, shape: tuple[int, ...], where: str) -> np.ndarray:
    if datatype == "BYTES":
        flat = _flatten(data)
        _check_size(len(flat), shape, where)
        return _bytes_array(flat, shape, where)
    if not isinstance(data, list):
        data = [data]
    try:
        array = np.array(data, dtype=DATATYPES[datatype])
    except OverflowError:
        raise BadRequest(f"{where} data holds values out of the range of {datatype}") from None
    except (ValueError, TypeError) as exc:
        # numpy's own words run to several sentences: say it in ours
        what = (
            "is not a rectangular array"
            if "inhomogeneous" in str(exc)
            else f"holds values that are not {datatype}"
        )
        raise BadRequest(f"{where} data {what}") from None
    if datatype == "BOOL" and not _all_bools(data):
        raise BadRequest(f"{where} is BOOL but its data holds values other than true and false")
    _check_size(array.size, shape, where)
    return array.reshape(shape)


def _all_bools(data: Any) -> bool:
    if isinstance(data, list):
        return all(_all_bools(item) for item in data)
    return isinstance(data, bool)


def from_raw(buffer: bytes, datatype: str, shape: tuple[int, ...], where: str) -> np.ndarray:
    """A tensor from its raw little-endian row-major bytes."""
    count = math.prod(shape)
    if datatype == "BYTES":
        values: list[bytes] = []
        at = 0
        while at < len(buffer):
            if at + 4 > len(buffer):
                raise BadRequest(f"{where} raw BYTES data ends inside an element's 4-byte length")
            (length,) = _LENGTH.unpack_from(buffer, at)
            at += 4
            if at + length > len(buffer):
                raise BadRequest(f"{where} raw BYTES data ends inside an element of {length} bytes")
            values.append(bytes(buffer[at : at + length]))
            at += length
            if len(values) > count:
                break
        _check_size(len(values), shape, where)
        return _bytes_array(values, shape, where)
    dtype = DATATYPES[datatype]
    expected = count * dtype.itemsize
    if len(buffer) != expected:
        raise BadRequest(
            f"{where} has {len(buffer)} bytes of {datatype} data but its shape {list(shape)} needs {expected}"
        )
    if datatype == "BOOL":
        return np.frombuffer(buffer, dtype=np.uint8).astype(np.bool_).reshape(shape)
    # A copy: frombuffer's array is read-only, and user code may write into its input.
    return np.frombuffer(buffer, dtype=dtype.newbyteorder("<")).astype(dtype).reshape(shape)


def to_raw(tensor: Tensor) -> bytes:
    data = tensor.data
    if tensor.datatype == "BYTES":
        parts: list[bytes] = []
        for value in data.ravel():
            item = _as_bytes(value, f"output '{tensor.name}'")
            parts.append(_LENGTH.pack(len(item)))
            parts.append(item)
        return b"".join(parts)
    dtype = DATATYPES[tensor.datatype]
    return np.ascontiguousarray(data, dtype=dtype.newbyteorder("<")).tobytes()


def tensor_from_value(name: str, value: Any) -> Tensor:
    """An output tensor from what a user's method returned for it (array, list, scalar, str, bytes)."""
    if isinstance(value, Tensor):
        return value
    if isinstance(value, str | bytes):
        array = np.empty(1, dtype=object)
        array[0] = value.encode() if isinstance(value, str) else value
        return Tensor(name, "BYTES", array)
    try:
        array = value if isinstance(value, np.ndarray) else np.asarray(value)
    except ValueError:
        raise UserCodeError(f"output '{name}' is not a rectangular array") from None
    if array.ndim == 0:
        array = array.reshape(1)
    datatype = datatype_of(array)
    if datatype == "BYTES":
        flat = array.ravel()
        converted = np.empty(flat.size, dtype=object)
        for i, item in enumerate(flat):
            try:
                converted[i] = _as_bytes(item, f"output '{name}'")
            except BadRequest as exc:
                raise UserCodeError(exc.info) from None
        array = converted.reshape(array.shape)
    return Tensor(name, datatype, array)


# --- parameters -------------------------------------------------------------------------------


def _parameters(value: Any, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise BadRequest(f"{where} parameters must be an object, got {type(value).__name__}")
    return value


_META_KEYS = ("puid", "tags", "routing", "requestPath", "metrics")


def meta_to_parameters(meta: Mapping[str, Any]) -> dict[str, Any]:
    """Seldon's meta as response parameters: `puid` a string, `tags`/`routing`/`requestPath`/
    `metrics` JSON values (JSON text over gRPC, whose parameters hold only scalars)."""
    return {key: meta[key] for key in _META_KEYS if meta.get(key)}


def meta_from_parameters(parameters: Mapping[str, Any]) -> dict[str, Any]:
    """The meta a request (or a node's answer) carries in its parameters."""
    meta: dict[str, Any] = {}
    for key in _META_KEYS:
        value = parameters.get(key)
        if isinstance(value, str) and key != "puid" and value[:1] in ("{", "["):
            try:
                value = orjson.loads(value)
            except orjson.JSONDecodeError:
                continue
        kind = str if key == "puid" else list if key == "metrics" else dict
        if isinstance(value, kind) and value:
            meta[key] = value
    return meta


# --- JSON (REST) ---------------------------------------------------------------------------


def decode_json(obj: Any, binary: bytes = b"", *, response: bool = False) -> InferPayload:
    """A V2 request (or, `response`, a V2 response) from its JSON; `binary` is what followed
    the JSON header of a binary-extension body."""
    kind = "response" if response else "request"
    if not isinstance(obj, dict):
        raise BadRequest(f"a V2 {kind} must be a JSON object, got {type(obj).__name__}")
    key = "outputs" if response else "inputs"
    items = obj.get(key)
    if not isinstance(items, list):
        raise BadRequest(f"the V2 {kind} has no '{key}' list")
    at = 0
    tensors: list[Tensor] = []
    seen: set[str] = set()
    for i, item in enumerate(items):
        where = f"{key[:-1]} {i}"
        if not isinstance(item, dict):
            raise BadRequest(f"{where} must be an object, got {type(item).__name__}")
        name = item.get("name")
        if not isinstance(name, str) or not name:
            raise BadRequest(f"{where} has no 'name' string")
        where = f"{key[:-1]} {quote(name)}"
        if name in seen:
            raise BadRequest(f"{where} is given twice")
        seen.add(name)
        datatype: str = item.get("datatype")  # type: ignore[assignment]  # checked next
        _dtype(datatype, where)
        shape = check_dims(item.get("shape"), where)
        parameters = _parameters(item.get("parameters"), where)
        size = parameters.get("binary_data_size")
        if size is not None:
            if not isinstance(size, int) or isinstance(size, bool) or size < 0:
                raise BadRequest(f"{where} has binary_data_size {size!r}; it must be a byte count")
            if at + size > len(binary):
                raise BadRequest(
                    f"{where} has binary_data_size {size} but only {len(binary) - at} bytes of binary "
                    "data follow the JSON header"
                )
            data = from_raw(binary[at : at + size], datatype, shape, where)
            at += size
            parameters = {k: v for k, v in parameters.items() if k != "binary_data_size"}
        else:
            if "data" not in item:
                raise BadRequest(f"{where} has no 'data' (and no binary_data_size parameter)")
            data = _json_array(item["data"], datatype, shape, where)
        tensors.append(Tensor(name, datatype, data, parameters))
    if at != len(binary):
        raise BadRequest(
            f"{len(binary) - at} bytes of binary data follow the JSON header that no tensor's "
            "binary_data_size claims"
        )
    payload = InferPayload(tensors, binary=bool(binary))
    request_id = obj.get("id")
    if request_id is not None:
        if not isinstance(request_id, str):
            raise BadRequest(f"the V2 {kind}'s id must be a string, got {type(request_id).__name__}")
        payload.id = request_id
    payload.parameters = _parameters(obj.get("parameters"), f"the V2 {kind}'s")
    if response:
        payload.model_name = str(obj.get("model_name") or "")
        payload.model_version = str(obj.get("model_version") or "")
    else:
        payload.outputs = _requested_outputs(obj.get("outputs"))
    return payload


def _requested_outputs(value: Any) -> list[RequestedOutput]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise BadRequest(f"the V2 request's outputs must be a list, got {type(value).__name__}")
    out: list[RequestedOutput] = []
    for i, item in enumerate(value):
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise BadRequest(f"requested output {i} must be an object with a 'name' string")
        out.append(
            RequestedOutput(
                item["name"], _parameters(item.get("parameters"), f"output {quote(item['name'])}")
            )
        )
    return out


def _json_data(tensor: Tensor) -> Any:
    data = tensor.data
    if tensor.datatype == "BYTES":
        values = []
        for value in data.ravel():
            item = _as_bytes(value, f"output '{tensor.name}'")
            try:
                values.append(item.decode())
            except UnicodeDecodeError:
                raise BadRequest(
                    f"output '{tensor.name}' holds bytes that are not UTF-8 text; ask for it as "
                    "binary data (parameter binary_data)"
                ) from None
        return values
    # orjson writes a contiguous numeric array directly (no Python list in between).
    return np.ascontiguousarray(data.reshape(-1))


def encode_json(
    payload: InferPayload, *, response: bool = True, binary: Sequence[str] = ()
) -> tuple[dict[str, Any], list[bytes]]:
    """The JSON of a V2 response (or request) and the binary sections of the tensors named in
    `binary`, in order (each gets a `binary_data_size` parameter instead of `data`)."""
    tensors: list[dict[str, Any]] = []
    sections: list[bytes] = []
    for tensor in payload.tensors:
        entry: dict[str, Any] = {"name": tensor.name, "datatype": tensor.datatype, "shape": tensor.shape}
        parameters = dict(tensor.parameters)
        parameters.pop("binary_data_size", None)  # only this body's own framing may say it
        if tensor.name in binary:
            section = to_raw(tensor)
            sections.append(section)
            parameters["binary_data_size"] = len(section)
        else:
            entry["data"] = _json_data(tensor)
        if parameters:
            entry["parameters"] = parameters
        tensors.append(entry)
    obj: dict[str, Any] = {}
    if response:
        obj["model_name"] = payload.model_name
        if payload.model_version:
            obj["model_version"] = payload.model_version
    if payload.id is not None:
        obj["id"] = payload.id
    if payload.parameters:
        obj["parameters"] = payload.parameters
    obj["outputs" if response else "inputs"] = tensors
    if not response and payload.outputs:
        obj["outputs"] = [
            {"name": o.name, **({"parameters": o.parameters} if o.parameters else {})}
            for o in payload.outputs
        ]
    return obj, sections


_DUMPS = orjson.OPT_SERIALIZE_NUMPY


def dumps(obj: Any) -> bytes:
    try:
        return orjson.dumps(obj, option=_DUMPS, default=_default)
    except orjson.JSONEncodeError as exc:
        raise UserCodeError(f"the V2 answer cannot be written as JSON: {exc}") from None


def _default(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    raise TypeError


HEADER_LENGTH = "inference-header-content-length"


def decode_rest_body(
    body: bytes, header_length: bytes | str | None, *, response: bool = False
) -> InferPayload:
    """A REST body: plain JSON, or (with Inference-Header-Content-Length) JSON then binary data."""
    binary = b""
    if header_length:
        text = header_length.decode("latin-1") if isinstance(header_length, bytes) else header_length
        try:
            length = int(text.strip())
        except ValueError:
            raise BadRequest(f"Inference-Header-Content-Length {text!r} is not a byte count") from None
        if not 0 <= length <= len(body):
            raise BadRequest(
                f"Inference-Header-Content-Length {length} does not fit a body of {len(body)} bytes"
            )
        body, binary = body[:length], body[length:]
    try:
        obj = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"Invalid JSON in the V2 request: {exc}") from None
    return decode_json(obj, binary, response=response)


def binary_outputs(request: InferPayload | None, answer: InferPayload) -> list[str]:
    """The outputs a REST request asked for as binary data (Triton's extension)."""
    if request is None:
        return []
    everything = request.parameters.get("binary_data_output") is True
    asked = {o.name: o.parameters.get("binary_data") for o in request.outputs}
    names = []
    for tensor in answer.tensors:
        wanted = asked.get(tensor.name)
        if wanted is True or (wanted is None and everything):
            names.append(tensor.name)
    return names


def encode_rest_body(
    payload: InferPayload, request: InferPayload | None = None, *, response: bool = True
) -> tuple[bytes, int | None]:
    """A REST body and, when binary sections follow the JSON, the JSON's length (the
    Inference-Header-Content-Length to send)."""
    if response:
        names = binary_outputs(request, payload)
    else:  # a request we send on: its inputs as binary when it came that way
        names = [t.name for t in payload.tensors] if payload.binary else []
    obj, sections = encode_json(payload, response=response, binary=names)
    head = dumps(obj)
    if not sections:
        return head, None
    return b"".join([head, *sections]), len(head)


def select_outputs(answer: InferPayload, request: InferPayload | None) -> InferPayload:
    """The outputs a request asked for, in its order (all when it named none).  A model with one
    unnamed output (`output-0`) asked for exactly one output gives it that name."""
    if request is None or not request.outputs:
        return answer
    wanted = [o.name for o in request.outputs]
    by_name = {t.name: t for t in answer.tensors}
    if len(wanted) == 1 and len(answer.tensors) == 1 and wanted[0] not in by_name:
        only = answer.tensors[0]
        if only.name == "output-0":
            by_name = {wanted[0]: Tensor(wanted[0], only.datatype, only.data, only.parameters)}
    missing = [name for name in wanted if name not in by_name]
    if missing:
        produced = ", ".join(t.name for t in answer.tensors) or "none"
        raise BadRequest(f"the model has no output named {quote(missing[0])} (its outputs: {produced})")
    return InferPayload(
        [by_name[name] for name in wanted],
        id=answer.id,
        parameters=answer.parameters,
        model_name=answer.model_name,
        model_version=answer.model_version,
        binary=answer.binary,
    )


# --- protobuf (gRPC) ----------------------------------------------------------------------------


def _param_value(parameter: Any) -> Any:
    which = parameter.WhichOneof("parameter_choice")
    return None if which is None else getattr(parameter, which)


def _params_from_proto(parameters: Any) -> dict[str, Any]:
    return {key: _param_value(value) for key, value in parameters.items()}


def _params_to_proto(target: Any, parameters: Mapping[str, Any]) -> None:
    for key, value in parameters.items():
        slot = target[key]
        if isinstance(value, bool):
            slot.bool_param = value
        elif isinstance(value, int):
            if value >= 2**63:
                slot.uint64_param = value
            else:
                slot.int64_param = value
        elif isinstance(value, float):
            slot.double_param = value
        elif isinstance(value, str):
            slot.string_param = value
        elif value is not None:  # objects and lists (Seldon's tags, routing...): their JSON text
            slot.string_param = orjson.dumps(value, option=_DUMPS, default=_default).decode()


def _tensor_from_proto(item: Any, raw: bytes | None, where: str) -> Tensor:
    datatype = item.datatype
    _dtype(datatype, where)
    shape = check_dims(list(item.shape), where)
    if raw is not None:
        data = from_raw(raw, datatype, shape, where)
    else:
        field_name = CONTENTS_FIELD.get(datatype)
        if field_name is None:
            raise BadRequest(f"{where} is {datatype}, which travels only in raw contents")
        values = getattr(item.contents, field_name)
        _check_size(len(values), shape, where)
        if datatype == "BYTES":
            data = _bytes_array(list(values), shape, where)
        else:
            try:
                data = np.array(values, dtype=DATATYPES[datatype]).reshape(shape)
            except OverflowError as exc:
                raise BadRequest(f"{where} data does not fit {datatype}: {exc}") from None
    parameters = _params_from_proto(item.parameters)
    parameters.pop("binary_data_size", None)  # a REST framing detail some gRPC clients set too
    return Tensor(item.name, datatype, data, parameters)


def _tensors_from_proto(items: Any, raws: Sequence[bytes], kind: str) -> list[Tensor]:
    if raws and len(raws) != len(items):
        raise BadRequest(f"the request has {len(items)} {kind}s but {len(raws)} raw contents entries")
    tensors = []
    seen: set[str] = set()
    for i, item in enumerate(items):
        if not item.name:
            raise BadRequest(f"{kind} {i} has no name")
        where = f"{kind} {quote(item.name)}"
        if item.name in seen:
            raise BadRequest(f"{where} is given twice")
        seen.add(item.name)
        tensors.append(_tensor_from_proto(item, raws[i] if raws else None, where))
    return tensors


def decode_proto_request(request: Any) -> InferPayload:
    """A ModelInferRequest as an InferPayload."""
    raws = list(request.raw_input_contents)
    payload = InferPayload(
        _tensors_from_proto(request.inputs, raws, "input"),
        id=request.id or None,
        parameters=_params_from_proto(request.parameters),
        outputs=[RequestedOutput(o.name, _params_from_proto(o.parameters)) for o in request.outputs],
        model_name=request.model_name,
        model_version=request.model_version,
        binary=bool(raws),
    )
    return payload


def decode_proto_response(response: Any) -> InferPayload:
    """A ModelInferResponse (a remote node's answer) as an InferPayload."""
    raws = list(response.raw_output_contents)
    return InferPayload(
        _tensors_from_proto(response.outputs, raws, "output"),
        id=response.id or None,
        parameters=_params_from_proto(response.parameters),
        model_name=response.model_name,
        model_version=response.model_version,
        binary=bool(raws),
    )


def _fill_tensor(target: Any, tensor: Tensor, raw: bool) -> bytes | None:
    target.name = tensor.name
    target.datatype = tensor.datatype
    target.shape.extend(tensor.shape)
    _params_to_proto(target.parameters, tensor.parameters)
    if raw:
        return to_raw(tensor)
    field_name = CONTENTS_FIELD[tensor.datatype]
    values = getattr(target.contents, field_name)
    if tensor.datatype == "BYTES":
        values.extend(_as_bytes(v, f"output '{tensor.name}'") for v in tensor.data.ravel())
    else:
        values.extend(tensor.data.ravel().tolist())
    return None


def _use_raw(payload: InferPayload) -> bool:
    # All tensors or none travel raw; FP16 has no typed field, so it decides for all.
    return payload.binary or any(t.datatype == "FP16" for t in payload.tensors)


def encode_proto_response(payload: InferPayload, response: Any) -> Any:
    """Fill a ModelInferResponse."""
    response.model_name = payload.model_name
    response.model_version = payload.model_version
    if payload.id is not None:
        response.id = payload.id
    _params_to_proto(response.parameters, payload.parameters)
    raw = _use_raw(payload)
    for tensor in payload.tensors:
        section = _fill_tensor(response.outputs.add(), tensor, raw)
        if section is not None:
            response.raw_output_contents.append(section)
    return response


def encode_proto_request(payload: InferPayload, request: Any, model_name: str) -> Any:
    """Fill a ModelInferRequest (a V2 message sent on to a remote node)."""
    request.model_name = model_name
    if payload.id is not None:
        request.id = payload.id
    _params_to_proto(request.parameters, payload.parameters)
    raw = _use_raw(payload)
    for tensor in payload.tensors:
        section = _fill_tensor(request.inputs.add(), tensor, raw)
        if section is not None:
            request.raw_input_contents.append(section)
    for output in payload.outputs:
        entry = request.outputs.add()
        entry.name = output.name
        _params_to_proto(entry.parameters, output.parameters)
    return request


def loads(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"Invalid JSON: {exc}") from None
