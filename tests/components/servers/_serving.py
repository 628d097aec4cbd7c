"""Driving a model server class the way every server does: through the component adapter,
with requests and answers as a REST client sends and reads them."""

from __future__ import annotations

from typing import Any

import numpy as np

from seldon_serving.components.adapter import ComponentAdapter
from seldon_serving.protocol.json_codec import decode_message
from tests.components._util import as_json, run


def adapter_for(server: Any) -> ComponentAdapter:
    """The server behind a loaded adapter (load() runs as the microservice runs it)."""
    adapter = ComponentAdapter(server)
    adapter.load()
    return adapter


def body(rows: np.ndarray, payload: str = "ndarray", names: list[str] | None = None) -> dict[str, Any]:
    """A Seldon request carrying `rows` as an ndarray or a tensor."""
    if payload == "ndarray":
        data: dict[str, Any] = {"ndarray": rows.tolist()}
    else:
        data = {"tensor": {"shape": list(rows.shape), "values": rows.ravel().tolist()}}
    if names is not None:
        data["names"] = names
    return {"data": data}


def ask(adapter: ComponentAdapter, body: dict[str, Any]) -> dict[str, Any]:
    """The JSON answer of a predict call."""
    return as_json(run(adapter.predict(decode_message(body))))


def values(answer: dict[str, Any]) -> np.ndarray:
    """The answer's data as an array."""
    return np.asarray(decode_message(answer).array())
