"""numpy helpers shared by the JSON and protobuf codecs.

Two array encodings live on the wire:

- Seldon's own `Tensor`: a shape and row-major float64 values;
- TensorFlow's `TensorProto` (`tftensor`): a dtype, a shape, and either raw
  little-endian bytes (`tensor_content`) or one typed repeated field whose name
  depends on the dtype.

Everything here is codec-neutral: callers hand in plain sequences or bytes and
the field label to name in error messages (camelCase for JSON, snake_case for
protobuf), so both codecs produce identical arrays and identical errors.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import chain
from typing import Any, NamedTuple

import numpy as np

from seldon_serving.protocol.errors import BadRequest


@dataclass(frozen=True, slots=True)
class TFType:
    """One TensorFlow dtype: its enum number, numpy dtype and the TensorProto field for its values."""

    name: str
    code: int
    dtype: np.dtype
    field: str  # snake_case TensorProto field, e.g. "float_val"
    json_field: str  # the proto3 JSON name of that field, e.g. "floatVal"


def _tf(name: str, code: int, dtype: Any, field: str) -> TFType:
    head, _, tail = field.partition("_")
    return TFType(name, code, np.dtype(dtype), field, head + tail.capitalize())


# TensorFlow stores the small integer types in int_val and float16 bit patterns in
# half_val (see tensorflow/core/framework/tensor.proto).  bfloat16 and the resource /
# variant types have no numpy equivalent and are refused.
TF_TYPES: dict[str, TFType] = {
    t.name: t
    for t in (
        _tf("DT_FLOAT", 1, np.float32, "float_val"),
        _tf("DT_DOUBLE", 2, np.float64, "double_val"),
        _tf("DT_INT32", 3, np.int32, "int_val"),
        _tf("DT_UINT8", 4, np.uint8, "int_val"),
        _tf("DT_INT16", 5, np.int16, "int_val"),
        _tf("DT_INT8", 6, np.int8, "int_val"),
        _tf("DT_STRING", 7, object, "string_val"),
        _tf("DT_COMPLEX64", 8, np.complex64, "scomplex_val"),
        _tf("DT_INT64", 9, np.int64, "int64_val"),
        _tf("DT_BOOL", 10, np.bool_, "bool_val"),
        _tf("DT_QINT8", 11, np.int8, "int_val"),
        _tf("DT_QUINT8", 12, np.uint8, "int_val"),
        _tf("DT_QINT32", 13, np.int32, "int_val"),
        _tf("DT_QINT16", 15, np.int16, "int_val"),
        _tf("DT_QUINT16", 16, np.uint16, "int_val"),
        _tf("DT_UINT16", 17, np.uint16, "int_val"),
        _tf("DT_COMPLEX128", 18, np.complex128, "dcomplex_val"),
        _tf("DT_HALF", 19, np.float16, "half_val"),
        _tf("DT_UINT32", 22, np.uint32, "uint32_val"),
        _tf("DT_UINT64", 23, np.uint64, "uint64_val"),
    )
}
TF_TYPES_BY_CODE: dict[int, TFType] = {t.code: t for t in TF_TYPES.values()}

# Every typed value field of TensorProto, snake_case -> camelCase.
VALUE_FIELDS: dict[str, str] = {t.field: t.json_field for t in TF_TYPES.values()}

# The dtype a numpy array is sent as when nothing else is asked for.  Quantized types
# are never inferred: they only appear when a request named them (tf_dtype).
_NATURAL: dict[np.dtype, str] = {}
for _t in TF_TYPES.values():
    if not _t.name.startswith("DT_Q") and _t.dtype != np.dtype(object):
        _NATURAL.setdefault(_t.dtype, _t.name)

_STRING_KINDS = frozenset("OUS")
_NUMERIC_KINDS = frozenset("biufc")


def fmt_shape(shape: Sequence[int]) -> str:
    """`[2,2]`: shapes in error messages look like the JSON the caller wrote."""
    return "[" + ",".join(str(d) for d in shape) + "]"


def tf_type(dtype: Any, where: str) -> TFType:
    """The TFType for a dtype given as an enum name or number (proto3 JSON allows both)."""
    if dtype is None or dtype in (0, "DT_INVALID"):
        raise BadRequest(f"{where} must name a TensorFlow dtype such as DT_FLOAT")
    found = None
    if isinstance(dtype, str):
        found = TF_TYPES.get(dtype)
    elif isinstance(dtype, int) and not isinstance(dtype, bool):
        found = TF_TYPES_BY_CODE.get(dtype)
    if found is None:
        raise BadRequest(f"{where} {dtype!r} is not a supported TensorFlow dtype")
    return found


def tf_type_for_array(arr: np.ndarray) -> TFType:
    """The dtype TensorFlow's make_tensor_proto would pick for this array."""
    if arr.dtype.kind in _STRING_KINDS:
        return TF_TYPES["DT_STRING"]
    name = _NATURAL.get(arr.dtype.newbyteorder("="))
    if name is None:
        raise ValueError(f"cannot send a numpy {arr.dtype} array as a TensorProto")
    return TF_TYPES[name]


MAX_DIMS = 32  # numpy 1.x's limit (2.x allows 64): the portable bound


# numpy's limit of 2**63 - 1 bytes over the widest element (16-byte complex), zero dimensions left out.
MAX_ELEMENTS = 2**58


def check_shape(shape: Sequence[int], where: str) -> tuple[int, ...]:
    dims = tuple(shape)
    if len(dims) > MAX_DIMS:
        raise BadRequest(f"{where} has {len(dims)} dimensions; at most {MAX_DIMS} are supported")
    if any(d < 0 for d in dims):
        raise BadRequest(f"{where} {fmt_shape(dims)} has a negative size")
    # numpy refuses such a shape even with a zero dimension in it ([2**40, 0, 2**40]); without
    # one, the values given (or the fill limit) already refuse it
    if 0 in dims and math.prod(d for d in dims if d) > MAX_ELEMENTS:
        raise BadRequest(f"{where} {fmt_shape(dims)} is larger than any array can be")
    return dims


# --- Seldon Tensor ---------------------------------------------------------------------


def reshape_values(flat: np.ndarray, shape: Sequence[int], where: str) -> np.ndarray:
    """`flat` (1-D) reshaped to `shape`, row-major.

    An empty shape is read leniently: one value is a scalar (what numpy's reshape to
    `()` gives), any other count a 1-D array, so `{"values": [1, 2, 3]}` works.
    """
    if not shape:
        return flat.reshape(()) if flat.size == 1 else flat
    dims = check_shape(shape, where + ".shape")
    if math.prod(dims) != flat.size:
        raise BadRequest(f"{where}.shape {fmt_shape(dims)} does not match {flat.size} values")
    try:
        return flat.reshape(dims)
    except ValueError as exc:  # anything numpy still refuses is the caller's shape, not our fault
        raise BadRequest(f"{where}.shape {fmt_shape(dims)} cannot be used: {exc}") from None


def array_to_tensor(arr: np.ndarray) -> tuple[list[int], np.ndarray]:
    """Shape and flat C-contiguous float64 values of `arr` (ValueError/TypeError if not numeric)."""
    # object arrays of numbers still convert; strings and complex do not belong in a Tensor
    if arr.dtype.kind not in "biufO":
        raise ValueError(f"a numpy {arr.dtype} array is not numeric")
    values = np.ascontiguousarray(arr, dtype=np.float64).reshape(-1)
    return list(arr.shape), values


# --- ndarray (ListValue) ---------------------------------------------------------------


def check_ndarray(data: Any, where: str) -> None:
    """Refuse what numpy cannot turn into a rectangular array.

    Only the list levels are walked (a handful of rows, not every number): rows of
    unequal length and lists mixed with scalars at the same level are caught here;
    a list hidden among the innermost scalars is left for numpy to refuse later.
    """
    if type(data) is not list:
        raise BadRequest(f"{where} must be a list")
    level: list[Any] = data
    while level and type(level[0]) is list:
        width = len(level[0])
        for row in level:
            if type(row) is not list or len(row) != width:
                raise BadRequest(f"{where} is ragged: its rows differ in length or nesting")
        if width == 0 or type(level[0][0]) is not list:
            return
        level = [item for row in level for item in row]


# Rows from which `rows_to_array` converts at decode time; fewer are left to np.array when
# (and if) the array is asked for, where they cost a microsecond or two.
FAST_ROWS = 64


def rows_to_array(data: list[Any]) -> np.ndarray | None:
    """`np.array(data)` for a list of equally long rows of plain floats, or of plain ints that
    fit int64 (what large requests are), in about half its time; None for anything else,
    which is left to np.array and `check_ndarray` as before.

    np.array discovers the dtype and shape element by element through the nested lists;
    here the rows are flattened in C, the element types checked as a set, and np.fromiter
    converts.  One type only: a float64 array written back as JSON then has the very bytes
    of the list it came from (an int among floats would come back as `1.0`).
    """
    rows = len(data)
    if rows < FAST_ROWS or type(data[0]) is not list:
        return None
    width = len(data[0])
    if width == 0 or set(map(type, data)) != {list} or set(map(len, data)) != {width}:
        return None
    flat = list(chain.from_iterable(data))
    kinds = set(map(type, flat))
    if kinds == {float}:
        dtype: Any = np.float64
    elif kinds == {int}:
        dtype = np.int64
    else:
        return None
    try:
        values = np.fromiter(flat, dtype, count=len(flat))
    except OverflowError:  # an int beyond int64: np.array picks uint64 or object
        return None
    return values.reshape(rows, width)


# --- TensorFlow TensorProto ------------------------------------------------------------

# The most values a TensorProto filled from zero or one value may expand to (128 MiB of
# float64).  Tensors given in full are already bounded by the message size limit.
MAX_FILL = 2**24


class TensorFields(NamedTuple):
    """What a TensorProto needs for one array: dtype name, shape, and raw bytes or strings."""

    dtype: str
    shape: tuple[int, ...]
    content: bytes  # little-endian raw values; b"" for DT_STRING
    strings: list[bytes] | None  # string_val for DT_STRING, else None


def tensor_to_array(
    tf: TFType,
    shape: Sequence[int],
    content: bytes,
    values: Sequence[Any] | np.ndarray,
    where: str,
    values_label: str,
) -> np.ndarray:
    """The numpy array a TensorProto holds (TensorFlow's make_ndarray rules).

    `values` is the typed field that belongs to `tf` (already base64-decoded for
    strings); `values_label` names it in errors.  With no values at all the array is
    zeros; a single value fills the whole shape.  Anything else must match exactly.
    """
    dims = check_shape(shape, where + ".tensorShape")
    size = math.prod(dims)
    if content:
        if tf.dtype.kind == "O":
            raise BadRequest(f"{where}.tensorContent cannot carry {tf.name}; use stringVal")
        need = size * tf.dtype.itemsize
        if len(content) != need:
            raise BadRequest(
                f"{where}.tensorContent has {len(content)} bytes but {tf.name} "
                f"of shape {fmt_shape(dims)} needs {need}"
            )
        # astype copies: the caller gets a writable array in native byte order
        return np.frombuffer(content, dtype=tf.dtype.newbyteorder("<")).astype(tf.dtype).reshape(dims)
    flat = _typed_values(tf, values, where + "." + values_label)
    count = flat.size
    if count == size:
        return flat.reshape(dims)
    if count <= 1 and size > MAX_FILL:
        # With zero or one value TensorFlow fills the whole shape: a few bytes could ask for
        # gigabytes (or more than numpy can address at all), so refuse before allocating.
        raise BadRequest(
            f"{where}.tensorShape {fmt_shape(dims)} asks for {size} values filled from {count} given; "
            f"a filled tensor may hold at most {MAX_FILL}"
        )
    if count == 0:
        return np.full(dims, b"", dtype=object) if tf.dtype.kind == "O" else np.zeros(dims, tf.dtype)
    if count == 1:
        return np.full(dims, flat[0], dtype=tf.dtype)
    raise BadRequest(
        f"{where}.{values_label} has {count} values but tensorShape {fmt_shape(dims)} needs {size}"
    )


def _typed_values(tf: TFType, values: Sequence[Any] | np.ndarray, where: str) -> np.ndarray:
    try:
        if tf.field == "string_val":
            flat = np.empty(len(values), dtype=object)
            flat[:] = list(values)
            return flat
        if tf.field == "half_val":
            # half_val carries the float16 bit patterns widened to int32
            return np.asarray(values, dtype=np.int32).astype(np.uint16).view(np.float16)
        if tf.field in ("scomplex_val", "dcomplex_val"):
            parts = np.asarray(values, dtype=np.float32 if tf.field == "scomplex_val" else np.float64)
            if parts.size % 2:
                raise BadRequest(f"{where} must hold (real, imaginary) pairs, got {parts.size} numbers")
            return parts.view(tf.dtype)
        return np.asarray(values, dtype=tf.dtype)
    except (ValueError, TypeError, OverflowError) as exc:
        raise BadRequest(f"{where} does not hold valid {tf.name} values ({exc})") from None


def array_to_tensor_fields(arr: np.ndarray, tf_dtype: str | None = None) -> TensorFields:
    """Split an array into TensorProto fields.

    The dtype follows the array, except that the dtype a request arrived with
    (`tf_dtype`) is echoed when the array converts to it without changing kind
    (float64 answers to a DT_FLOAT request go back as DT_FLOAT; probabilities are never
    truncated to an integer dtype).
    """
    tf = tf_type_for_array(arr)
    wanted = TF_TYPES.get(tf_dtype) if tf_dtype else None
    if wanted is not None and wanted is not tf:
        both_strings = wanted.dtype.kind == "O" and tf.dtype.kind == "O"
        numeric = wanted.dtype.kind in _NUMERIC_KINDS and arr.dtype.kind in _NUMERIC_KINDS
        if both_strings or (numeric and np.can_cast(arr.dtype, wanted.dtype, casting="same_kind")):
            tf = wanted
    shape = tuple(arr.shape)
    if tf.dtype.kind == "O":
        strings = [s if isinstance(s, bytes) else str(s).encode("utf-8") for s in np.ravel(arr).tolist()]
        return TensorFields(tf.name, shape, b"", strings)
    content = np.ascontiguousarray(arr, dtype=tf.dtype.newbyteorder("<")).tobytes()
    return TensorFields(tf.name, shape, content, None)
