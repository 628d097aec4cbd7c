"""Comparison helpers and hypothesis strategies shared by the protocol tests."""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from seldon_serving.protocol import arrays, json_codec
from seldon_serving.protocol.message import (
    ARRAY_FORMS,
    BIN_DATA,
    JSON_DATA,
    NDARRAY,
    STR_DATA,
    TENSOR,
    TFTENSOR,
    Feedback,
    SeldonMessage,
)


def wire_json(obj: Any) -> Any:
    """What a client receives: the dict after serialization (numpy arrays become lists)."""
    return orjson.loads(json_codec.dumps(obj))


def assert_same_message(a: SeldonMessage, b: SeldonMessage) -> None:
    """Equal as a user sees them: same form, names, meta, status, and payload values."""
    assert a.form == b.form
    assert a.names == b.names
    assert a.meta == b.meta
    assert a.status == b.status
    if a.form in ARRAY_FORMS:
        left, right = np.asarray(a.payload), np.asarray(b.payload)
        assert left.shape == right.shape
        if a.form != NDARRAY:
            assert left.dtype == right.dtype
            assert a.tf_dtype == b.tf_dtype
        np.testing.assert_array_equal(left, right)
    else:
        assert a.payload == b.payload


def assert_same_feedback(a: Feedback, b: Feedback) -> None:
    assert a.reward == b.reward
    for key in ("request", "response", "truth"):
        left, right = getattr(a, key), getattr(b, key)
        assert (left is None) == (right is None)
        if left is not None:
            assert_same_message(left, right)


# --- strategies ------------------------------------------------------------------------

# Protobuf strings and orjson both refuse lone surrogates.
text = st.text(alphabet=st.characters(exclude_categories=("Cs",)), max_size=12)
finite = st.floats(allow_nan=False, allow_infinity=False)
float32 = st.floats(allow_nan=False, allow_infinity=False, width=32)
int32 = st.integers(-(2**31), 2**31 - 1)

# JSON values whose numbers survive a trip through google.protobuf.Value (a double).
json_scalar = st.none() | st.booleans() | text | finite | st.integers(-(2**53), 2**53)
json_value = st.recursive(
    json_scalar,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(text, inner, max_size=4),
    max_leaves=12,
)

metric = st.builds(
    lambda key, kind, value, tags: (
        {"key": key, "type": kind, "value": value} | ({"tags": tags} if tags else {})
    ),
    text,
    st.sampled_from(["COUNTER", "GAUGE", "TIMER"]),
    float32,
    st.dictionaries(text, text, max_size=2),
)


@st.composite
def metas(draw: st.DrawFn) -> dict[str, Any]:
    candidates = {
        "puid": draw(text.filter(bool)),
        "tags": draw(st.dictionaries(text, json_value, min_size=1, max_size=3)),
        "routing": draw(st.dictionaries(text, int32, min_size=1, max_size=3)),
        "requestPath": draw(st.dictionaries(text, text, min_size=1, max_size=3)),
        "metrics": draw(st.lists(metric, min_size=1, max_size=3)),
    }
    keep = draw(st.lists(st.sampled_from(sorted(candidates)), unique=True))
    return {k: candidates[k] for k in keep}


statuses = st.none() | st.builds(
    lambda code, info, reason, flag: {"code": code, "info": info, "reason": reason, "status": flag},
    int32,
    text,
    text,
    st.sampled_from(["SUCCESS", "FAILURE"]),
)

shapes = hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4)
float_arrays = hnp.arrays(np.float64, shapes, elements=finite)

# Everything a tftensor can carry, with values that compare equal after a round trip.
_tf_dtypes = [
    np.float32,
    np.float64,
    np.int8,
    np.int16,
    np.int32,
    np.int64,
    np.uint8,
    np.uint16,
    np.uint32,
    np.uint64,
    np.bool_,
    np.float16,
    np.complex64,
    np.complex128,
]


@st.composite
def tf_arrays(draw: st.DrawFn) -> np.ndarray:
    shape = draw(shapes)
    if draw(st.booleans()):
        flat = draw(
            st.lists(st.binary(max_size=6), min_size=int(np.prod(shape)), max_size=int(np.prod(shape)))
        )
        arr = np.empty(len(flat), dtype=object)
        arr[:] = flat
        return arr.reshape(shape)
    dtype = np.dtype(draw(st.sampled_from(_tf_dtypes)))
    elements = None
    if dtype.kind == "f":
        elements = st.floats(allow_nan=False, allow_infinity=False, width=dtype.itemsize * 8)
    elif dtype.kind == "c":
        part = st.floats(allow_nan=False, allow_infinity=False, width=dtype.itemsize * 4)
        elements = st.builds(complex, part, part)
    return draw(hnp.arrays(dtype, shape, elements=elements))


@st.composite
def rect_lists(draw: st.DrawFn, leaves: st.SearchStrategy[Any]) -> list[Any]:
    """Rectangular nested lists (1 to 3 levels) such as a JSON ndarray."""
    dims = draw(st.lists(st.integers(1, 4), min_size=1, max_size=3))

    def build(level: int) -> list[Any]:
        if level == len(dims) - 1:
            return [draw(leaves) for _ in range(dims[level])]
        return [build(level + 1) for _ in range(dims[level])]

    return build(0)


@st.composite
def messages(draw: st.DrawFn, *, proto_safe: bool = False) -> SeldonMessage:
    """In-memory messages as a decoder yields them.

    `proto_safe` keeps ndarray leaves to floats (a ListValue turns every number into a
    double, so an int would come back as a float: equal, but a different JSON text).
    """
    form = draw(st.sampled_from([None, NDARRAY, TENSOR, TFTENSOR, STR_DATA, BIN_DATA, JSON_DATA]))
    msg = SeldonMessage(meta=draw(metas()), status=draw(statuses))
    if form in (None, *ARRAY_FORMS):
        msg.names = draw(st.lists(text, max_size=3))
    msg.form = form
    if form == NDARRAY:
        leaves = finite if proto_safe else (finite | text | st.booleans())
        msg.payload = draw(rect_lists(leaves))
    elif form == TENSOR:
        msg.payload = draw(float_arrays)
    elif form == TFTENSOR:
        msg.payload = draw(tf_arrays())
        msg.tf_dtype = arrays.tf_type_for_array(msg.payload).name
    elif form == STR_DATA:
        msg.payload = draw(text)
    elif form == BIN_DATA:
        msg.payload = draw(st.binary(max_size=20))
    elif form == JSON_DATA:
        msg.payload = draw(json_value)
    return msg


feedbacks = st.builds(
    Feedback,
    request=st.none() | messages(),
    response=st.none() | messages(),
    reward=float32,
    truth=st.none() | messages(),
)
