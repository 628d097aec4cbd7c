"""Hypothesis strategies for what the OpenAPI schema cannot express: well-formed numeric
messages (shape and values agree) that reach the model, with the floats that break
arithmetic (1e308, subnormals, -0.0, and NaN/Infinity in proto3 JSON's string form),
and feedback for them carrying routing."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

# Floats that break arithmetic: overflow when squared or summed, subnormals, signed zero.
EXTREME = st.sampled_from([1.7976931348623157e308, -1e308, 1e200, -1e155, 1e154, 5e-324, -0.0])
FINITE = st.one_of(st.floats(allow_nan=False, allow_infinity=False), EXTREME)
NON_FINITE = st.sampled_from(["NaN", "Infinity", "-Infinity"])  # JSON has no literals for them


@st.composite
def numeric_message(
    draw: st.DrawFn, max_rows: int = 4, max_cols: int = 5, cols: int | None = None
) -> dict[str, Any]:
    """A numeric message of up to `max_rows` rows, of `cols` columns (or any up to `max_cols`:
    a stateful model such as the outlier detector keeps the width it saw first)."""
    rows = draw(st.integers(0, max_rows))
    if cols is None:
        cols = draw(st.integers(0, max_cols))
    form = draw(st.sampled_from(["ndarray", "tensor", "tftensor"]))
    # ndarray is a ListValue: a "NaN" there is a string, not a number, so only finite values
    element = FINITE if form == "ndarray" else st.one_of(FINITE, FINITE, FINITE, NON_FINITE)
    values = draw(st.lists(element, min_size=rows * cols, max_size=rows * cols))
    data: dict[str, Any] = {}
    if draw(st.booleans()):
        data["names"] = [f"f{i}" for i in range(cols)]
    if form == "ndarray":
        data["ndarray"] = [values[r * cols : (r + 1) * cols] for r in range(rows)]
    elif form == "tensor":
        data["tensor"] = {"shape": [rows, cols], "values": values}
    else:
        dtype = draw(st.sampled_from(["DT_FLOAT", "DT_DOUBLE"]))
        field = "floatVal" if dtype == "DT_FLOAT" else "doubleVal"
        dims = [{"size": str(rows)}, {"size": str(cols)}]
        data["tftensor"] = {"dtype": dtype, "tensorShape": {"dim": dims}, field: values}
    message: dict[str, Any] = {"data": data}
    if draw(st.booleans()):
        message["meta"] = {"puid": draw(st.text(max_size=20)), "tags": {"k": draw(FINITE)}}
    return message


@st.composite
def numeric_feedback(draw: st.DrawFn, nodes: list[str], cols: int | None = None) -> dict[str, Any]:
    """Feedback whose response routes through `nodes` (so routers learn from it)."""
    request = draw(numeric_message(cols=cols))
    response = draw(numeric_message(cols=1))
    if nodes:
        routing = {node: draw(st.integers(-1, 2)) for node in draw(st.lists(st.sampled_from(nodes)))}
        response["meta"] = {"routing": routing}
    feedback: dict[str, Any] = {"request": request, "response": response}
    reward = draw(st.one_of(st.none(), FINITE, NON_FINITE, st.floats(0.0, 1.0)))
    if reward is not None:
        feedback["reward"] = reward
    return feedback
