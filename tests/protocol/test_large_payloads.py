"""Large ndarray requests take a faster road (rows converted at decode time, the parse with the
garbage collector paused): the array a model gets and the bytes a client gets back must be
exactly what the general road gives."""

from __future__ import annotations

import gc
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from seldon_serving.protocol import arrays
from seldon_serving.protocol import json_codec as jc
from seldon_serving.protocol.errors import BadRequest
from seldon_serving.protocol.message import NDARRAY, SeldonMessage

ROWS = arrays.FAST_ROWS

scalars = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.integers(min_value=2**63, max_value=2**64 - 1),  # orjson reads larger ones as floats
    st.booleans(),
    st.sampled_from(["1.5", "a", None]),
)


def body_of(rows: list[list[Any]]) -> bytes:
    return jc.dumps({"data": {"names": ["a", "b"], "ndarray": rows}})


def general_array(rows: list[list[Any]]) -> np.ndarray:
    """What the lazy road (SeldonMessage.array() on the list) gives."""
    return np.array(rows)


def answer_bytes(msg: SeldonMessage) -> bytes:
    return jc.dumps(jc.encode_message(msg), wrapper_style=True)


@settings(max_examples=30, deadline=None)
@given(
    st.integers(min_value=ROWS, max_value=ROWS + 4).flatmap(
        lambda n: st.integers(min_value=1, max_value=3).flatmap(
            lambda w: st.one_of(
                # one type throughout (the fast road), or a mix (the general road)
                st.lists(st.lists(st.floats(allow_nan=False, allow_infinity=False), min_size=w, max_size=w),
                         min_size=n, max_size=n),
                st.lists(st.lists(st.integers(-(2**63), 2**63 - 1), min_size=w, max_size=w),
                         min_size=n, max_size=n),
                st.lists(st.lists(scalars, min_size=w, max_size=w), min_size=n, max_size=n),
            )
        )
    )
)  # fmt: skip
def test_a_large_request_gives_the_model_the_same_array_and_the_client_the_same_bytes(
    rows: list[list[Any]],
) -> None:
    try:
        expected = general_array(rows)
    except (ValueError, TypeError, OverflowError):
        return  # numpy refuses it: covered by the error tests below
    msg = jc.decode_request(jc.loads(body_of(rows)))
    got = msg.array()
    assert got.dtype == expected.dtype
    assert got.shape == expected.shape
    if expected.dtype.kind == "f":
        assert np.array_equal(got, expected, equal_nan=True)
    else:
        assert got.tolist() == expected.tolist()
    # echoed back (an identity transformer answers the payload it got): the client's bytes
    echoed = SeldonMessage(form=NDARRAY, payload=msg.payload, names=msg.names)
    as_list = SeldonMessage(form=NDARRAY, payload=rows, names=msg.names)
    assert answer_bytes(echoed) == answer_bytes(as_list)


def test_rows_of_plain_floats_become_a_float64_array_at_decode_time() -> None:
    rows = [[float(i), i + 0.5, -1e300] for i in range(ROWS)]
    msg = jc.decode_request(jc.loads(body_of(rows)))
    assert isinstance(msg.payload, np.ndarray) and msg.payload.dtype == np.float64
    assert msg.payload.shape == (ROWS, 3)
    assert msg.payload.flags.writeable  # a model may scale its input in place, as before


@pytest.mark.parametrize(
    "rows",
    [
        [[1.0, 2.0]] * (ROWS - 1),  # small: the lazy road, a list as before
        [[1.0, 2]] * ROWS,  # mixed int and float: "1" must not come back as "1.0"
        [[1.0, 2.0]] * ROWS + [[1.0]],  # ragged
        [[2**64, 1]] * ROWS,  # beyond int64
    ],
)
def test_what_the_fast_road_does_not_take_stays_a_list(rows: list[list[Any]]) -> None:
    obj = jc.loads(body_of(rows))
    try:
        msg = jc.decode_request(obj)
    except BadRequest as exc:
        assert "ragged" in exc.info
        return
    assert msg.payload is obj["data"]["ndarray"]


def test_a_ragged_large_request_is_refused_naming_the_field() -> None:
    rows: list[list[Any]] = [[1.0, 2.0]] * ROWS + [[1.0]]
    with pytest.raises(BadRequest, match=r"data\.ndarray is ragged"):
        jc.decode_request(jc.loads(body_of(rows)))


def test_a_large_body_is_parsed_with_the_collector_paused_and_left_running() -> None:
    rows = [[float(i)] * 3 for i in range(20_000)]
    body = body_of(rows)
    assert len(body) > jc.GC_PAUSE_BYTES
    before = gc.get_stats()[0]["collections"]
    obj = jc.loads(body)
    assert gc.get_stats()[0]["collections"] == before  # 20,000 lists and not one collection
    assert gc.isenabled()
    assert obj["data"]["ndarray"] == rows
    with pytest.raises(BadRequest, match="Invalid JSON"):
        jc.loads(body[:-1])
    assert gc.isenabled()


def test_a_collector_paused_by_someone_else_stays_paused() -> None:
    body = body_of([[1.0, 2.0]] * 10_000)
    gc.disable()
    try:
        jc.loads(body)
        assert not gc.isenabled()
    finally:
        gc.enable()
