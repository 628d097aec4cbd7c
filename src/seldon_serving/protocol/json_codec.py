"""SeldonMessage / Feedback <-> proto3-JSON dicts (as orjson parses and writes them).

This is the REST hot path, so it works on the dicts directly instead of going
through protobuf's json_format: validation is a few type checks per field and
numeric payloads go to numpy in one call.  Errors are `BadRequest`s whose text
names the field at fault (`data.tensor.values must be a list of numbers`), with a
prefix such as `request.` or `seldonMessages[1].` inside Feedback and lists.

Encoded dicts may hold numpy arrays (tensor values, ndarray payloads computed by a
component): `dumps` writes them natively, which is faster than `tolist()`.
"""

from __future__ import annotations

import base64
import binascii
import gc
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import orjson

from seldon_serving.protocol import arrays
from seldon_serving.protocol.errors import BadRequest
from seldon_serving.protocol.message import (
    BIN_DATA,
    CUSTOM_DATA,
    JSON_DATA,
    NDARRAY,
    STR_DATA,
    TENSOR,
    TFTENSOR,
    Feedback,
    Meta,
    SeldonMessage,
    Status,
)

METRIC_TYPES = ("COUNTER", "GAUGE", "TIMER", "HISTOGRAM")
STATUS_FLAGS = ("SUCCESS", "FAILURE")
_MESSAGE_ONEOF = ("data", BIN_DATA, STR_DATA, JSON_DATA, CUSTOM_DATA)
_DATA_ONEOF = (TENSOR, NDARRAY, TFTENSOR)
_METRIC_KEYS = ("key", "type", "value", "tags", "bins")
_INT32 = (-(2**31), 2**31 - 1)
_DUMPS_OPTIONS = orjson.OPT_SERIALIZE_NUMPY
# Seldon's Python wrapper answers through Flask's jsonify: keys sorted, a newline at the end.
_WRAPPER_OPTIONS = _DUMPS_OPTIONS | orjson.OPT_SORT_KEYS | orjson.OPT_APPEND_NEWLINE
_DATA_KEYS = frozenset(("names", *_DATA_ONEOF))


# --- bytes <-> JSON values ---------------------------------------------------------------


# Bodies from this size on are parsed with the cyclic garbage collector paused (see `loads`).
GC_PAUSE_BYTES = 64 * 1024


def loads(body: bytes | str) -> Any:
    """Parse a request body; malformed JSON is the caller's fault (400).

    A large body with many rows (an ndarray of 10,000 rows is 10,000 lists) would otherwise set
    off a collection every 700 new lists, and now and then a full one over the whole heap: most
    of the parse time, and the outliers of p99.  Parsed JSON holds no reference cycles, so the
    collector has nothing to find in it; it is paused for the parse (unless someone else
    paused it already).
    """
    try:
        if len(body) < GC_PAUSE_BYTES or not gc.isenabled():
            return orjson.loads(body)
        gc.disable()
        try:
            return orjson.loads(body)
        finally:
            gc.enable()
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"Invalid JSON: {exc}") from None


def _default(obj: Any) -> Any:
    # orjson hands over what it cannot write natively: non-contiguous or object/str
    # numpy arrays, numpy scalars of odd types, and bytes inside ndarray payloads.
    if isinstance(obj, np.ndarray):
        if obj.dtype.kind == "f" and obj.dtype.itemsize > 8:
            obj = obj.astype(np.float64)  # long double: tolist() would keep numpy scalars
        return obj.tolist()
    if isinstance(obj, np.generic):
        value = obj.item()
        return float(value) if isinstance(value, np.floating) else value
    if isinstance(obj, bytes | bytearray | memoryview):
        return bytes(obj).decode("utf-8", errors="replace")
    raise TypeError(f"{type(obj).__name__} cannot be written as JSON")


def dumps(obj: Any, *, wrapper_style: bool = False) -> bytes:
    """Serialize a JSON value; numpy arrays and scalars of any layout or dtype are fine.

    `wrapper_style`: as Seldon's Python wrapper writes it (sorted keys, trailing newline).
    """
    try:
        return orjson.dumps(
            obj, default=_default, option=_WRAPPER_OPTIONS if wrapper_style else _DUMPS_OPTIONS
        )
    except orjson.JSONEncodeError as exc:
        if exc.__cause__ is not None:  # _default refused an object: nothing can write it
            raise
        # orjson's own limits: nesting deeper than 254 levels (it reads 1024, so a client's
        # jsonData or tags echoed back can be that deep), integers beyond 64 bits,
        # non-string keys, lone surrogates.
        return _dumps_slow(obj)


class _Raw(str):
    """JSON text already written (punctuation), as opposed to a value still to write."""


def _dumps_slow(obj: Any) -> bytes:
    """What orjson refuses, written without recursion: containers from an explicit stack,
    leaves by orjson where it can."""
    out: list[str] = []
    stack: list[Any] = [obj]
    while stack:
        item = stack.pop()
        if type(item) is _Raw:
            out.append(item)
        elif isinstance(item, dict):
            stack.append(_Raw("}"))
            entries = list(item.items())
            for i in range(len(entries) - 1, -1, -1):
                key, value = entries[i]
                stack.append(value)
                stack.append(_Raw(("," if i else "") + _leaf(key if type(key) is str else str(key)) + ":"))
            stack.append(_Raw("{"))
        elif isinstance(item, list | tuple):
            stack.append(_Raw("]"))
            for i in range(len(item) - 1, -1, -1):
                stack.append(item[i])
                if i:
                    stack.append(_Raw(","))
            stack.append(_Raw("["))
        elif isinstance(item, np.ndarray) and item.dtype.kind == "O":
            stack.append(item.tolist())  # objects inside may be the deep part
        else:
            out.append(_leaf(item))
    return "".join(out).encode()


def _leaf(value: Any) -> str:
    try:
        return orjson.dumps(value, default=_default, option=_DUMPS_OPTIONS).decode()
    except orjson.JSONEncodeError:
        if isinstance(value, int):
            return str(int(value))  # beyond 64 bits
        if isinstance(value, str):
            # lone surrogates (not Unicode, so not JSON either) become U+FFFD
            return orjson.dumps(value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")).decode()
        raise


# --- scalar field readers (proto3 JSON accepts numbers as strings) -----------------------


def _as_int(value: Any, where: str, bounds: tuple[int, int] = _INT32) -> int:
    if type(value) is int:
        result = value
    elif type(value) is float and value.is_integer():
        result = int(value)
    elif type(value) is str:
        try:
            result = int(value)
        except ValueError:
            raise BadRequest(f"{where} must be an integer, got {value!r}") from None
    else:
        raise BadRequest(f"{where} must be an integer, got {value!r}")
    if not bounds[0] <= result <= bounds[1]:
        raise BadRequest(f"{where} {result} is out of range")
    return result


def _as_float(value: Any, where: str) -> float:
    if type(value) is float or type(value) is int:
        return float(value)
    if type(value) is str:
        try:
            return float(value)  # also "NaN", "Infinity", "-Infinity" as proto3 JSON writes them
        except ValueError:
            pass
    raise BadRequest(f"{where} must be a number, got {value!r}")


def _as_str(value: Any, where: str) -> str:
    if type(value) is not str:
        raise BadRequest(f"{where} must be a string, got {value!r}")
    return value


def _as_enum(value: Any, names: Sequence[str], where: str) -> str:
    if type(value) is str and value in names:
        return value
    if type(value) is int and 0 <= value < len(names):
        return names[value]
    raise BadRequest(f"{where} must be one of {', '.join(names)}, got {value!r}")


def _as_dict(value: Any, where: str) -> dict[str, Any]:
    if type(value) is not dict:
        raise BadRequest(f"{where} must be an object")
    return value


def b64decode(text: Any, where: str) -> bytes:
    """Standard or URL-safe base64, padding optional (as proto3 JSON parsers accept)."""
    if type(text) is not str:
        raise BadRequest(f"{where} must be a base64 string")
    # ValueError too: a non-ASCII character is refused before any base64 is read.
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        pass
    cleaned = "".join(text.split()).replace("-", "+").replace("_", "/")
    try:
        return base64.b64decode(cleaned + "=" * (-len(cleaned) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise BadRequest(f"{where} is not valid base64") from None


def b64encode(raw: bytes | bytearray | memoryview) -> str:
    return base64.b64encode(raw).decode("ascii")


# --- decode ------------------------------------------------------------------------------


def decode_message(obj: Any) -> SeldonMessage:
    """A SeldonMessage from its JSON dict.  Unknown top-level keys are ignored, as Seldon's
    engine does; unknown keys inside `data` (a typo such as `ndarry`) are refused."""
    return _decode_message(obj, "")


def decode_request(obj: Any) -> SeldonMessage:
    """A component's input: a message that carries data (or names).  Seldon's wrapper refuses
    anything else with this sentence (a typo such as `{"dta": ...}` would otherwise reach the
    model as an empty array)."""
    if type(obj) is dict and not any(key in obj for key in _MESSAGE_ONEOF):
        raise BadRequest(f"Invalid request data type: {obj}")
    return _decode_message(obj, "")


def _decode_message(obj: Any, p: str) -> SeldonMessage:
    if type(obj) is not dict:
        raise BadRequest(f"{p[:-1] or 'a SeldonMessage'} must be a JSON object, not {_json_type(obj)}")
    msg = SeldonMessage()
    status = obj.get("status")
    if status is not None:
        msg.status = decode_status(status, p + "status")
    meta = obj.get("meta")
    if meta is not None:
        msg.meta = decode_meta(meta, p + "meta")
    present = [k for k in _MESSAGE_ONEOF if k in obj and (obj[k] is not None or k == JSON_DATA)]
    if not present:
        return msg
    if len(present) > 1:
        raise BadRequest(f"{p}{' and '.join(present)} are set; a message carries only one of them")
    key = present[0]
    value = obj[key]
    if key == "data":
        _decode_data(msg, value, p + "data")
    elif key == STR_DATA:
        msg.form, msg.payload = STR_DATA, _as_str(value, p + STR_DATA)
    elif key == BIN_DATA:
        msg.form, msg.payload = BIN_DATA, b64decode(value, p + BIN_DATA)
    elif key == JSON_DATA:
        msg.form, msg.payload = JSON_DATA, value
    else:
        if type(value) is not dict or type(value.get("@type")) is not str:
            raise BadRequest(f'{p}customData must be an object with an "@type" string')
        msg.form, msg.payload = CUSTOM_DATA, value
    return msg


def _json_type(value: Any) -> str:
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null"}
    return names.get(type(value), "a number")


def _decode_data(msg: SeldonMessage, data: Any, where: str) -> None:
    data = _as_dict(data, where)
    for key in data:
        if key not in _DATA_KEYS:
            raise BadRequest(f"{where}.{key} is not a field of data (names, ndarray, tensor, tftensor)")
    names = data.get("names")
    if names is not None:
        if type(names) is not list or not all(type(n) is str for n in names):
            raise BadRequest(f"{where}.names must be a list of strings")
        msg.names = names
    present = [k for k in _DATA_ONEOF if data.get(k) is not None]
    if not present:
        return
    if len(present) > 1:
        raise BadRequest(f"{where}.{' and '.join(present)} are set; data carries only one of them")
    form = present[0]
    value = data[form]
    if form == NDARRAY:
        # Large rows of one number type become the array now (faster than np.array later, and
        # the same array); anything else is checked here and converted lazily in
        # SeldonMessage.array(), as before.
        converted = arrays.rows_to_array(value) if type(value) is list else None
        if converted is None:
            arrays.check_ndarray(value, f"{where}.ndarray")
        msg.payload = value if converted is None else converted
    elif form == TENSOR:
        msg.payload = _decode_tensor(value, f"{where}.tensor")
    else:
        msg.payload, msg.tf_dtype = _decode_tftensor(value, f"{where}.tftensor")
    msg.form = form


def _decode_tensor(tensor: Any, where: str) -> np.ndarray:
    tensor = _as_dict(tensor, where)
    values = tensor.get("values")
    if values is None:
        values = []
    elif type(values) is not list:
        raise BadRequest(f"{where}.values must be a list of numbers")
    try:
        flat = np.array(values, dtype=np.float64)
    except (ValueError, TypeError):
        raise BadRequest(f"{where}.values must be a list of numbers") from None
    # numpy turns null into NaN silently; only look for it when a NaN shows up
    if flat.ndim != 1 or (np.isnan(flat).any() and None in values):
        raise BadRequest(f"{where}.values must be a list of numbers")
    shape = tensor.get("shape")
    if shape is None:
        shape = []
    elif type(shape) is not list:
        raise BadRequest(f"{where}.shape must be a list of integers")
    elif not all(type(d) is int for d in shape):
        shape = [_as_int(d, f"{where}.shape[{i}]") for i, d in enumerate(shape)]
    return arrays.reshape_values(flat, shape, where)


# Element types each kind of TensorProto value field accepts in proto3 JSON.
_FLOAT_TYPES = frozenset((int, float, str))
_INT_TYPES = frozenset((int, str))


def _decode_tftensor(tensor: Any, where: str) -> tuple[np.ndarray, str]:
    tensor = _as_dict(tensor, where)
    tf = arrays.tf_type(tensor.get("dtype"), where + ".dtype")
    shape_obj = _first(tensor, "tensorShape", "tensor_shape")
    dims: list[int] = []
    if shape_obj is not None:
        dim_list = _as_dict(shape_obj, where + ".tensorShape").get("dim") or []
        if type(dim_list) is not list:
            raise BadRequest(f"{where}.tensorShape.dim must be a list")
        for i, dim in enumerate(dim_list):
            size = _as_dict(dim, f"{where}.tensorShape.dim[{i}]").get("size", 0)
            dims.append(_as_int(size, f"{where}.tensorShape.dim[{i}].size", (0, 2**63 - 1)))
    content_text = _first(tensor, "tensorContent", "tensor_content")
    content = b64decode(content_text, where + ".tensorContent") if content_text else b""
    values: Any = []
    for field, json_field in arrays.VALUE_FIELDS.items():
        given = _first(tensor, json_field, field)
        if not given:
            continue
        if field != tf.field:
            raise BadRequest(
                f"{where} holds {tf.name}, whose values belong in {tf.json_field}, not {json_field}"
            )
        values = _json_values(tf, given, f"{where}.{json_field}")
    array = arrays.tensor_to_array(tf, dims, content, values, where, tf.json_field)
    return array, tf.name


def _first(obj: dict[str, Any], camel: str, snake: str) -> Any:
    # proto3 JSON parsers accept the original snake_case field name as well
    value = obj.get(camel)
    return obj.get(snake) if value is None else value


def _json_values(tf: arrays.TFType, values: Any, where: str) -> Any:
    if type(values) is not list:
        raise BadRequest(f"{where} must be a list")
    kinds = set(map(type, values))
    if tf.field == "string_val":
        return [b64decode(v, where) for v in values]
    if tf.field == "bool_val":
        if kinds - {bool}:
            raise BadRequest(f"{where} must be a list of booleans")
        return values
    if tf.dtype.kind in "iu" or tf.field == "half_val":
        if float in kinds and not all(v.is_integer() for v in values if type(v) is float):
            raise BadRequest(f"{where} must be a list of integers")
        if kinds - _INT_TYPES - {float}:
            raise BadRequest(f"{where} must be a list of integers")
        return values  # numpy parses the strings int64 values come as in proto3 JSON
    if kinds - _FLOAT_TYPES:
        raise BadRequest(f"{where} must be a list of numbers")
    return values


def decode_status(status: Any, where: str = "status") -> Status:
    status = _as_dict(status, where)
    return {
        "code": _as_int(status.get("code", 0), where + ".code"),
        "info": _as_str(status.get("info", ""), where + ".info"),
        "reason": _as_str(status.get("reason", ""), where + ".reason"),
        "status": _as_enum(status.get("status", 0), STATUS_FLAGS, where + ".status"),
    }


def decode_meta(meta: Any, where: str = "meta") -> Meta:
    """Meta as in-memory dict: only keys that carry something (so JSON and proto agree)."""
    meta = _as_dict(meta, where)
    out: Meta = {}
    puid = meta.get("puid")
    if puid:
        out["puid"] = _as_str(puid, where + ".puid")
    tags = meta.get("tags")
    if tags:
        out["tags"] = _as_dict(tags, where + ".tags")
    routing = meta.get("routing")
    if routing:
        routing = _as_dict(routing, where + ".routing")
        if not all(type(v) is int and _INT32[0] <= v <= _INT32[1] for v in routing.values()):
            routing = {k: _as_int(v, f"{where}.routing.{k}") for k, v in routing.items()}
        out["routing"] = routing
    path = meta.get("requestPath")
    if path:
        path = _as_dict(path, where + ".requestPath")
        if not all(type(v) is str for v in path.values()):
            raise BadRequest(f"{where}.requestPath values must be strings")
        out["requestPath"] = path
    metrics = meta.get("metrics")
    if metrics:
        if type(metrics) is not list:
            raise BadRequest(f"{where}.metrics must be a list")
        out["metrics"] = [decode_metric(m, f"{where}.metrics[{i}]") for i, m in enumerate(metrics)]
    return out


def decode_metric(metric: Any, where: str) -> dict[str, Any]:
    metric = _as_dict(metric, where)
    out: dict[str, Any] = {
        "key": _as_str(metric.get("key", ""), where + ".key"),
        "type": _as_enum(metric.get("type", 0), METRIC_TYPES, where + ".type"),
        "value": _as_float(metric.get("value", 0.0), where + ".value"),
    }
    tags = metric.get("tags")
    if tags:
        if type(tags) is not dict or not all(type(v) is str for v in tags.values()):
            raise BadRequest(f"{where}.tags must be an object of strings")
        out["tags"] = tags
    bins = metric.get("bins")
    if bins:
        if type(bins) is not list:
            raise BadRequest(f"{where}.bins must be a list of numbers")
        out["bins"] = [_as_float(b, f"{where}.bins[{i}]") for i, b in enumerate(bins)]
    return out


def decode_feedback(obj: Any) -> Feedback:
    """A Feedback from its JSON dict; messages that are absent stay None."""
    if type(obj) is not dict:
        raise BadRequest(f"a Feedback must be a JSON object, not {_json_type(obj)}")
    fb = Feedback()
    for key in ("request", "response", "truth"):
        value = obj.get(key)
        if value is not None:
            setattr(fb, key, _decode_message(value, key + "."))
    reward = obj.get("reward")
    if reward is not None:
        fb.reward = _as_float(reward, "reward")
    return fb


def decode_message_list(obj: Any) -> list[SeldonMessage]:
    """The messages of a SeldonMessageList dict (`{"seldonMessages": [...]}`), or of a bare
    JSON list of messages (which Seldon's wrapper also takes)."""
    if type(obj) is list:
        return [_decode_message(m, f"[{i}].") for i, m in enumerate(obj)]
    if type(obj) is not dict:
        raise BadRequest(f"a SeldonMessageList must be a JSON object or a list, not {_json_type(obj)}")
    items = obj.get("seldonMessages")
    if items is None:
        return []
    if type(items) is not list:
        raise BadRequest("seldonMessages must be a list")
    return [_decode_message(m, f"seldonMessages[{i}].") for i, m in enumerate(items)]


# --- encode ------------------------------------------------------------------------------


def encode_message(msg: SeldonMessage) -> dict[str, Any]:
    """The JSON dict of a message, holding only schema fields (SeldonClient parses strictly).

    Serialize it with `dumps`: it may hold numpy arrays.
    """
    out: dict[str, Any] = {}
    if msg.status is not None:
        out["status"] = encode_status(msg.status)
    if msg.meta:
        meta = encode_meta(msg.meta)
        if meta:
            out["meta"] = meta
    form = msg.form
    if form is None:
        if msg.names:
            out["data"] = {"names": msg.names}
    elif form == NDARRAY:
        out["data"] = {"names": msg.names, NDARRAY: _ndarray_payload(msg.payload)}
    elif form == TENSOR:
        out["data"] = _encode_tensor(msg)
    elif form == TFTENSOR:
        out["data"] = _encode_tftensor(msg)
    elif form == BIN_DATA:
        out[BIN_DATA] = b64encode(msg.payload)
    elif form in (STR_DATA, JSON_DATA, CUSTOM_DATA):
        out[form] = msg.payload
    else:
        raise ValueError(f"unknown data form {form!r}")
    return out


def _ndarray_payload(payload: Any) -> Any:
    if isinstance(payload, np.ndarray) and payload.ndim == 0:
        return payload.reshape(1)  # a ListValue must be a list
    return payload


def _encode_tensor(msg: SeldonMessage) -> dict[str, Any]:
    try:
        shape, values = arrays.array_to_tensor(np.asarray(msg.payload))
    except (ValueError, TypeError):
        # Seldon's rule: a result that is not numeric goes back as ndarray
        return {"names": msg.names, NDARRAY: _ndarray_payload(msg.payload)}
    return {"names": msg.names, TENSOR: {"shape": shape, "values": json_doubles(values)}}


_NON_FINITE = {math.inf: "Infinity", -math.inf: "-Infinity"}


def json_double(value: float) -> float | str:
    """A double as proto3 JSON writes it: NaN and the infinities as strings."""
    if math.isfinite(value):
        return value
    return "NaN" if value != value else _NON_FINITE[value]


def json_doubles(values: np.ndarray) -> np.ndarray | list[float | str]:
    """Flat float64 values for a repeated double field.

    orjson writes NaN and infinities as null, which proto3 JSON parsers (SeldonClient's
    json_format) refuse inside a repeated field; they become "NaN", "Infinity",
    "-Infinity".  The common all-finite case costs one vectorized check (~1 us) and
    keeps the array, which orjson writes natively.
    """
    if np.isfinite(values).all():
        return values
    return [json_double(v) for v in values.tolist()]


def _encode_tftensor(msg: SeldonMessage) -> dict[str, Any]:
    try:
        fields = arrays.array_to_tensor_fields(np.asarray(msg.payload), msg.tf_dtype)
    except (ValueError, TypeError):
        return {"names": msg.names, NDARRAY: _ndarray_payload(msg.payload)}
    shape: dict[str, Any] = {"dim": [{"size": str(d)} for d in fields.shape]} if fields.shape else {}
    tensor: dict[str, Any] = {"dtype": fields.dtype, "tensorShape": shape}
    if fields.strings is not None:
        if fields.strings:
            tensor["stringVal"] = [b64encode(s) for s in fields.strings]
    elif fields.content:
        tensor["tensorContent"] = b64encode(fields.content)
    return {"names": msg.names, TFTENSOR: tensor}


def encode_status(status: Status) -> dict[str, Any]:
    flag = status.get("status", "SUCCESS")
    if type(flag) is int and 0 <= flag < len(STATUS_FLAGS):
        flag = STATUS_FLAGS[flag]
    return {
        "code": status.get("code", 0),
        "info": status.get("info", ""),
        "reason": status.get("reason", ""),
        "status": flag,
    }


def encode_meta(meta: Meta) -> dict[str, Any]:
    """Meta with empty keys dropped and only schema keys kept."""
    out: dict[str, Any] = {}
    puid = meta.get("puid")
    if puid:
        out["puid"] = puid
    for key in ("tags", "routing", "requestPath"):
        value = meta.get(key)
        if value:
            out[key] = value
    metrics = meta.get("metrics")
    if metrics:
        out["metrics"] = [_encode_metric(m) for m in metrics]
    return out


def _encode_metric(metric: dict[str, Any]) -> dict[str, Any]:
    out = {k: metric[k] for k in _METRIC_KEYS if metric.get(k) is not None}
    value = out.get("value")
    if isinstance(value, float) and not math.isfinite(value):
        out["value"] = json_double(value)  # proto3 JSON's "NaN", not null (which reads as 0)
    bins = out.get("bins")
    if bins and not all(math.isfinite(b) for b in bins if isinstance(b, float)):
        out["bins"] = [json_double(b) if isinstance(b, float) else b for b in bins]
    return out


def encode_feedback(fb: Feedback) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in ("request", "response"):
        value = getattr(fb, key)
        if value is not None:
            out[key] = encode_message(value)
    out["reward"] = fb.reward
    if fb.truth is not None:
        out["truth"] = encode_message(fb.truth)
    return out


def encode_message_list(msgs: Sequence[SeldonMessage]) -> dict[str, Any]:
    return {"seldonMessages": [encode_message(m) for m in msgs]}
