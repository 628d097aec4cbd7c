"""SeldonMessage / Feedback <-> generated protobuf messages (the gRPC hot path).

Hand-written rather than json_format so that nothing on the request path builds
an intermediate JSON tree.  Decoding validates exactly as the JSON codec does and
yields equal in-memory messages (field paths in errors use the proto names, e.g.
`data.tftensor.float_val`).

Numeric arrays avoid per-element protobuf calls, which dominate otherwise:
`Tensor` values are written as one packed field and read with one numpy call,
and a numeric `ndarray` (a ListValue of ListValues of numbers) is written and read
as raw wire bytes with numpy; anything irregular falls back to the generic
recursive Value conversion.  As in Seldon, ndarray numbers are doubles on this
wire: `[[1, 2]]` comes back as `[[1.0, 2.0]]`.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from itertools import chain
from typing import Any, cast

import numpy as np
from google.protobuf import (
    any_pb2,
    duration_pb2,
    field_mask_pb2,
    json_format,
    struct_pb2,
    timestamp_pb2,
    wrappers_pb2,
)

from seldon_serving.protocol import arrays
from seldon_serving.protocol._pb import prediction_pb2 as pb
from seldon_serving.protocol._pb.tensorflow.core.framework import types_pb2
from seldon_serving.protocol.errors import BadMetadata, BadRequest
from seldon_serving.protocol.json_codec import METRIC_TYPES, STATUS_FLAGS, b64decode, b64encode
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

# Loaded so that customData holding a well-known type converts to JSON and back.
_WELL_KNOWN_TYPES = (duration_pb2, field_mask_pb2, timestamp_pb2, wrappers_pb2)


# --- google.protobuf.Value <-> Python ----------------------------------------------------


def value_to_python(value: struct_pb2.Value) -> Any:
    """The JSON value a Value holds (numbers are floats; an unset Value is None)."""
    kind = value.WhichOneof("kind")
    if kind == "number_value":
        return value.number_value
    if kind == "string_value":
        return value.string_value
    if kind == "list_value":
        return list_value_to_python(value.list_value)
    if kind == "struct_value":
        return struct_to_python(value.struct_value)
    if kind == "bool_value":
        return value.bool_value
    return None


def list_value_to_python(lv: struct_pb2.ListValue) -> list[Any]:
    return [value_to_python(v) for v in lv.values]


def struct_to_python(struct: struct_pb2.Struct) -> dict[str, Any]:
    return {k: value_to_python(v) for k, v in struct.fields.items()}


def python_to_value(obj: Any, value: struct_pb2.Value | None = None) -> struct_pb2.Value:
    """Fill `value` (or a new Value) with a JSON-like Python value; numpy values are fine."""
    if value is None:
        value = struct_pb2.Value()
    kind = type(obj)
    if kind is float or kind is int:
        value.number_value = obj
    elif kind is str:
        value.string_value = obj
    elif kind is bool:
        value.bool_value = obj
    elif obj is None:
        value.null_value = struct_pb2.NULL_VALUE
    elif kind is list or kind is tuple:
        python_to_list_value(obj, value.list_value)
    elif kind is dict:
        python_to_struct(obj, value.struct_value)
    elif isinstance(obj, np.ndarray):
        python_to_list_value(obj.tolist() if obj.ndim else [obj.item()], value.list_value)
    elif isinstance(obj, bool | np.bool_):
        value.bool_value = bool(obj)
    elif isinstance(obj, int | float | np.integer | np.floating):
        value.number_value = float(obj)
    elif isinstance(obj, str):
        value.string_value = str(obj)
    elif isinstance(obj, bytes | bytearray):
        value.string_value = bytes(obj).decode("utf-8", errors="replace")  # as json_codec.dumps
    elif isinstance(obj, dict):
        python_to_struct(obj, value.struct_value)
    elif isinstance(obj, Sequence):
        python_to_list_value(obj, value.list_value)
    else:
        raise TypeError(f"{type(obj).__name__} cannot be sent as a google.protobuf.Value")
    return value


def python_to_list_value(
    items: Iterable[Any], lv: struct_pb2.ListValue | None = None
) -> struct_pb2.ListValue:
    if lv is None:
        lv = struct_pb2.ListValue()
    lv.SetInParent()  # an empty list is still a list (presence inside a oneof)
    add = lv.values.add
    for item in items:
        python_to_value(item, add())
    return lv


def python_to_struct(obj: dict[Any, Any], struct: struct_pb2.Struct | None = None) -> struct_pb2.Struct:
    if struct is None:
        struct = struct_pb2.Struct()
    struct.SetInParent()
    fields = struct.fields
    for key, item in obj.items():
        python_to_value(item, fields[str(key)])
    return struct


# --- numeric ndarray as raw ListValue wire bytes -----------------------------------------
#
# ListValue{values=1: repeated Value}; Value{number_value=2: double, list_value=6: ListValue}.
# A number element is the 11 bytes 0A 09 11 <float64 LE>; a nested row is
# 0A <varint len(Value)> 32 <varint len(row)> <row>.  A rectangular array therefore has a
# fixed-size record at every level, so numpy can write and check a whole level at once.


def _varint(n: int) -> bytes:
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _read_varint(raw: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(raw):
            raise IndexError("truncated varint")
        byte = raw[pos]
        result |= (byte & 0x7F) << shift
        pos += 1
        if byte < 0x80:
            return result, pos
        shift += 7


# Below this many numbers numpy's fixed cost outweighs the per-element protobuf calls.
_FAST_MIN_VALUES = 64
# numpy caps an array at 64 dimensions; deeper lists are left to the generic path.
_MAX_FAST_DIMS = 32


def _frame(leaves: np.ndarray, header: Any) -> np.ndarray:
    """Lay `leaves` (shape dims + (8,)) out as ListValue bytes; `header(bytes)` makes headers.

    Used with uint8 data to build the wire bytes and with booleans to mark where
    the doubles sit.
    """
    dims = leaves.shape[:-1]
    rows = np.empty((*dims, 11), dtype=leaves.dtype)
    rows[..., :3] = header(b"\x0a\x09\x11")
    rows[..., 3:] = leaves
    width = 11 * dims[-1]
    cur = rows.reshape((*dims[:-1], width))
    for level in range(len(dims) - 2, -1, -1):
        head = b"\x0a" + _varint(1 + len(_varint(width)) + width) + b"\x32" + _varint(width)
        record = len(head) + width
        nxt = np.empty((*cur.shape[:-1], record), dtype=leaves.dtype)
        nxt[..., : len(head)] = header(head)
        nxt[..., len(head) :] = cur
        width = dims[level] * record
        cur = nxt.reshape((*dims[:level], width))
    return cur


def _wire_bytes(header: bytes) -> np.ndarray:
    return np.frombuffer(header, dtype=np.uint8)


def _wire_mask(header: bytes) -> np.ndarray:
    return np.zeros(len(header), dtype=bool)


@functools.lru_cache(maxsize=64)
def _layout(dims: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Expected bytes (zeros where the doubles go) and the mask of the doubles, per shape."""
    template = _frame(np.zeros((*dims, 8), dtype=np.uint8), _wire_bytes)
    mask = _frame(np.ones((*dims, 8), dtype=bool), _wire_mask)
    return template, mask


def _layout_for(dims: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    # shapes repeat from request to request; only small layouts are worth keeping
    if np.prod(dims) <= 65536:
        return _layout(dims)
    return _layout.__wrapped__(dims)


def numeric_to_list_value_bytes(arr: np.ndarray) -> bytes:
    """Wire bytes of a ListValue holding a real numeric array (ndim >= 1) as nested lists."""
    leaves = np.ascontiguousarray(arr, dtype="<f8").view(np.uint8).reshape((*arr.shape, 8))
    return _frame(leaves, _wire_bytes).tobytes()


def _list_value_dims(raw: bytes) -> tuple[int, ...] | None:
    """The shape a ListValue's bytes would have if rectangular, read off its first elements."""
    dims: list[int] = []
    pos, end = 0, len(raw)
    while True:
        if raw[pos] != 0x0A:
            return None
        size, body = _read_varint(raw, pos + 1)
        record = body - pos + size
        if (end - pos) % record:
            return None
        dims.append((end - pos) // record)
        tag = raw[body] if size else None
        if tag == 0x11 and size == 9:
            return tuple(dims)
        if tag != 0x32:
            return None
        width, start = _read_varint(raw, body + 1)
        if width == 0:
            dims.append(0)
            return tuple(dims)
        pos, end = start, start + width


def list_value_to_numeric(lv: struct_pb2.ListValue) -> np.ndarray | None:
    """A float64 array if `lv` is a non-empty rectangular list of numbers, else None."""
    raw = lv.SerializeToString()
    if len(raw) < 11 * _FAST_MIN_VALUES:
        return None
    try:
        dims = _list_value_dims(raw)
    except IndexError:
        return None
    if dims is None or len(dims) > _MAX_FAST_DIMS:
        return None
    template, mask = _layout_for(dims)
    if template.size != len(raw):
        return None
    buf = np.frombuffer(raw, dtype=np.uint8)
    if not np.array_equal(np.where(mask, 0, buf), template):
        return None
    values: np.ndarray = buf[mask].view("<f8").astype(np.float64).reshape(dims)
    return values


def _numeric_array(payload: Any) -> np.ndarray | None:
    """`payload` as a real numeric array if it is one (bools are not: they stay bools)."""
    if isinstance(payload, np.ndarray):
        arr = payload
    else:
        try:
            arr = np.array(payload)
        except (ValueError, TypeError):
            return None
        if arr.dtype.kind in "iuf" and arr.ndim:
            # numpy reads True as 1: a list mixing bools and numbers must keep its bools
            level: Any = payload
            for _ in range(arr.ndim - 1):
                level = chain.from_iterable(level)
            if bool in map(type, level):
                return None
    if arr.dtype.kind not in "iuf" or not 0 < arr.ndim <= _MAX_FAST_DIMS:
        return None
    return arr


def _fill_ndarray(lv: struct_pb2.ListValue, payload: Any) -> None:
    lv.SetInParent()
    arr = None if _small(payload) else _numeric_array(payload)
    if arr is not None:
        lv.MergeFromString(numeric_to_list_value_bytes(arr))
    elif isinstance(payload, np.ndarray):
        python_to_list_value(payload.tolist() if payload.ndim else [payload.item()], lv)
    else:
        python_to_list_value(payload, lv)


def _small(payload: Any) -> bool:
    if isinstance(payload, np.ndarray):
        return payload.size < _FAST_MIN_VALUES
    # a short outer list with short first row: cheap to tell, and what most requests look like
    if type(payload) is not list or len(payload) >= _FAST_MIN_VALUES:
        return False
    first = payload[0] if payload else None
    if type(first) is not list:
        return True
    return len(payload) * len(first) < _FAST_MIN_VALUES and not (first and type(first[0]) is list)


def _ndarray_from_proto(lv: struct_pb2.ListValue, where: str) -> Any:
    numeric = list_value_to_numeric(lv)
    if numeric is not None:
        return numeric
    data = list_value_to_python(lv)
    arrays.check_ndarray(data, where)
    return data


# --- messages: proto -> in-memory ---------------------------------------------------------


def message_from_proto(msg_pb: pb.SeldonMessage) -> SeldonMessage:
    return _from_proto(msg_pb, "")


def _from_proto(msg_pb: pb.SeldonMessage, p: str) -> SeldonMessage:
    msg = SeldonMessage()
    if msg_pb.HasField("status"):
        msg.status = status_from_proto(msg_pb.status)
    if msg_pb.HasField("meta"):
        msg.meta = meta_from_proto(msg_pb.meta)
    which = msg_pb.WhichOneof("data_oneof")
    if which is None:
        return msg
    if which == "data":
        _data_from_proto(msg, msg_pb.data, p + "data")
    elif which == STR_DATA:
        msg.form, msg.payload = STR_DATA, msg_pb.strData
    elif which == BIN_DATA:
        msg.form, msg.payload = BIN_DATA, msg_pb.binData
    elif which == JSON_DATA:
        msg.form, msg.payload = JSON_DATA, value_to_python(msg_pb.jsonData)
    else:
        msg.form, msg.payload = CUSTOM_DATA, any_to_dict(msg_pb.customData)
    return msg


def _data_from_proto(msg: SeldonMessage, data: pb.DefaultData, where: str) -> None:
    msg.names = list(data.names)
    which = data.WhichOneof("data_oneof")
    if which is None:
        return
    if which == TENSOR:
        tensor = data.tensor
        flat = np.array(tensor.values, dtype=np.float64)
        msg.payload = arrays.reshape_values(flat, list(tensor.shape), where + ".tensor")
    elif which == NDARRAY:
        msg.payload = _ndarray_from_proto(data.ndarray, where + ".ndarray")
    else:
        msg.payload, msg.tf_dtype = tensor_proto_to_array(data.tftensor, where + ".tftensor")
    msg.form = which


def tensor_proto_to_array(tensor: Any, where: str = "tftensor") -> tuple[np.ndarray, str]:
    """The array of a `tensorflow.TensorProto` and its dtype name."""
    tf = arrays.tf_type(tensor.dtype, where + ".dtype")
    for field in arrays.VALUE_FIELDS:
        if field != tf.field and len(getattr(tensor, field)):
            raise BadRequest(f"{where} holds {tf.name}, whose values belong in {tf.field}, not {field}")
    dims = [dim.size for dim in tensor.tensor_shape.dim]
    values = getattr(tensor, tf.field)
    array = arrays.tensor_to_array(tf, dims, tensor.tensor_content, values, where, tf.field)
    return array, tf.name


def status_from_proto(status: pb.Status) -> Status:
    flag = status.status
    return {
        "code": status.code,
        "info": status.info,
        "reason": status.reason,
        "status": STATUS_FLAGS[flag] if 0 <= flag < len(STATUS_FLAGS) else flag,
    }


def meta_from_proto(meta: pb.Meta) -> Meta:
    """Meta as the in-memory dict: only keys that carry something (as json_codec.decode_meta)."""
    out: Meta = {}
    if meta.puid:
        out["puid"] = meta.puid
    if meta.tags:
        out["tags"] = {k: value_to_python(v) for k, v in meta.tags.items()}
    if meta.routing:
        out["routing"] = dict(meta.routing)
    if meta.requestPath:
        out["requestPath"] = dict(meta.requestPath)
    if meta.metrics:
        out["metrics"] = [_metric_from_proto(m) for m in meta.metrics]
    return out


def _metric_from_proto(metric: pb.Metric) -> dict[str, Any]:
    kind = metric.type
    out: dict[str, Any] = {
        "key": metric.key,
        "type": METRIC_TYPES[kind] if 0 <= kind < len(METRIC_TYPES) else kind,
        "value": metric.value,
    }
    if metric.tags:
        out["tags"] = dict(metric.tags)
    if metric.bins:
        out["bins"] = list(metric.bins)
    return out


def any_to_dict(value: any_pb2.Any) -> dict[str, Any]:
    """customData as its proto3 JSON dict; a type unknown here keeps its raw bytes (base64)."""
    try:
        return json_format.MessageToDict(value)
    except (TypeError, KeyError, json_format.Error):
        return {"@type": value.type_url, "value": b64encode(value.value)}


def dict_to_any(obj: dict[str, Any], target: any_pb2.Any | None = None) -> any_pb2.Any:
    if target is None:
        target = any_pb2.Any()
    try:
        json_format.ParseDict(obj, target)
    except (TypeError, KeyError, json_format.Error):
        if set(obj) != {"@type", "value"}:
            raise BadRequest(
                f"customData of type {obj.get('@type')!r} is not known here and cannot be sent over gRPC"
            ) from None
        target.type_url = obj["@type"]
        target.value = b64decode(obj["value"], "customData.value")
    return target


def feedback_from_proto(fb_pb: pb.Feedback) -> Feedback:
    fb = Feedback(reward=fb_pb.reward)
    for key in ("request", "response", "truth"):
        if fb_pb.HasField(key):
            setattr(fb, key, _from_proto(getattr(fb_pb, key), key + "."))
    return fb


def message_list_from_proto(list_pb: pb.SeldonMessageList) -> list[SeldonMessage]:
    return [_from_proto(m, f"seldonMessages[{i}].") for i, m in enumerate(list_pb.seldonMessages)]


# --- messages: in-memory -> proto ---------------------------------------------------------


def message_to_proto(msg: SeldonMessage) -> pb.SeldonMessage:
    return fill_message(msg, pb.SeldonMessage())


def fill_message(msg: SeldonMessage, out: pb.SeldonMessage) -> pb.SeldonMessage:
    """Write `msg` into an (empty) generated message in place, e.g. a sub-field of Feedback."""
    if msg.status is not None:
        _fill_status(msg.status, out.status)
    if msg.meta:
        _fill_meta(msg.meta, out.meta)
    form = msg.form
    if form is None:
        if msg.names:
            out.data.names.extend(msg.names)
    elif form == NDARRAY:
        out.data.names.extend(msg.names)
        _fill_ndarray(out.data.ndarray, msg.payload)
    elif form == TENSOR:
        out.data.names.extend(msg.names)
        _fill_tensor(out.data, msg.payload)
    elif form == TFTENSOR:
        out.data.names.extend(msg.names)
        _fill_tftensor(out.data, msg.payload, msg.tf_dtype)
    elif form == STR_DATA:
        out.strData = msg.payload
    elif form == BIN_DATA:
        out.binData = bytes(msg.payload)
    elif form == JSON_DATA:
        python_to_value(msg.payload, out.jsonData)
    elif form == CUSTOM_DATA:
        dict_to_any(msg.payload, out.customData)
    else:
        raise ValueError(f"unknown data form {form!r}")
    return out


def _fill_tensor(data: pb.DefaultData, payload: Any) -> None:
    try:
        shape, values = arrays.array_to_tensor(np.asarray(payload))
    except (ValueError, TypeError):
        _fill_ndarray(data.ndarray, payload)  # not numeric: Seldon answers with ndarray
        return
    # Tensor{shape=1: packed int32, values=2: packed double}, written as one buffer
    # instead of one protobuf call per value.
    packed_shape = b"".join(_varint(d) for d in shape)
    raw = b"\x0a" + _varint(len(packed_shape)) + packed_shape if shape else b""
    if values.size:
        raw += b"\x12" + _varint(values.size * 8) + values.astype("<f8", copy=False).tobytes()
    tensor = data.tensor
    tensor.SetInParent()
    tensor.MergeFromString(raw)


def _fill_tftensor(data: pb.DefaultData, payload: Any, tf_dtype: str | None) -> None:
    try:
        fields = arrays.array_to_tensor_fields(np.asarray(payload), tf_dtype)
    except (ValueError, TypeError):
        _fill_ndarray(data.ndarray, payload)
        return
    tensor = data.tftensor
    tensor.SetInParent()
    tensor.dtype = cast(types_pb2.DataType, arrays.TF_TYPES[fields.dtype].code)
    tensor.tensor_shape.SetInParent()
    add_dim = tensor.tensor_shape.dim.add
    for size in fields.shape:
        add_dim(size=size)
    if fields.strings is not None:
        tensor.string_val.extend(fields.strings)
    else:
        tensor.tensor_content = fields.content


def _fill_status(status: Status, out: pb.Status) -> None:
    out.SetInParent()
    out.code = status.get("code", 0)
    out.info = status.get("info", "")
    out.reason = status.get("reason", "")
    flag = status.get("status", 0)
    out.status = cast(pb.Status.StatusFlag, STATUS_FLAGS.index(flag) if isinstance(flag, str) else flag)


def _fill_meta(meta: Meta, out: pb.Meta) -> None:
    out.SetInParent()
    puid = meta.get("puid")
    if puid:
        out.puid = puid
    tags = meta.get("tags")
    if tags:
        for key, value in tags.items():
            python_to_value(value, out.tags[key])
    routing = meta.get("routing")
    if routing:
        out.routing.update(routing)
    path = meta.get("requestPath")
    if path:
        out.requestPath.update(path)
    for metric in meta.get("metrics") or ():
        kind = metric.get("type", 0)
        added = out.metrics.add(
            key=metric.get("key", ""),
            type=METRIC_TYPES.index(kind) if isinstance(kind, str) else kind,
            value=metric.get("value", 0.0),
        )
        if metric.get("tags"):
            added.tags.update(metric["tags"])
        if metric.get("bins"):
            added.bins.extend(metric["bins"])


def feedback_to_proto(fb: Feedback) -> pb.Feedback:
    out = pb.Feedback(reward=fb.reward)
    for key in ("request", "response", "truth"):
        value = getattr(fb, key)
        if value is not None:
            target = getattr(out, key)
            target.SetInParent()  # an empty message is still a message (JSON sends {})
            fill_message(value, target)
    return out


def message_list_to_proto(msgs: Sequence[SeldonMessage]) -> pb.SeldonMessageList:
    out = pb.SeldonMessageList()
    add = out.seldonMessages.add
    for msg in msgs:
        fill_message(msg, add())
    return out


def model_metadata_to_proto(metadata: dict[str, Any]) -> pb.SeldonModelMetadata:
    """SeldonModelMetadata from the dict a model's init_metadata() returns (not a hot path)."""
    try:
        return json_format.ParseDict(metadata, pb.SeldonModelMetadata(), ignore_unknown_fields=True)
    except (json_format.ParseError, TypeError, ValueError) as exc:
        raise BadMetadata(f"Invalid metadata: {exc}") from None
