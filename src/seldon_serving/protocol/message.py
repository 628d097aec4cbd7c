"""The one in-memory message type that every edge, the engine and the adapters share.

A `SeldonMessage` holds its payload in the form it arrived in (`form`) so that a
response can be encoded in the caller's form, and keeps `meta` and `status` as
plain dicts shaped like their proto3 JSON (the cheapest shape to merge and to
encode with orjson).  Codecs to and from JSON and protobuf live beside this
module (`json_codec`, `proto_codec`); numpy conversions in `arrays`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

# Data forms: the keys of DefaultData's oneof and of SeldonMessage's oneof.
NDARRAY = "ndarray"
TENSOR = "tensor"
TFTENSOR = "tftensor"
STR_DATA = "strData"
BIN_DATA = "binData"
JSON_DATA = "jsonData"
CUSTOM_DATA = "customData"
# An Open Inference Protocol (V2) request or answer: the payload is a `protocol.v2.InferPayload`.
V2 = "v2"

ARRAY_FORMS = (NDARRAY, TENSOR, TFTENSOR)
ALL_FORMS = (*ARRAY_FORMS, STR_DATA, BIN_DATA, JSON_DATA, CUSTOM_DATA)

Meta = dict[str, Any]
"""`{"puid": str, "tags": {...}, "routing": {node: int}, "requestPath": {node: str},
"metrics": [{"key", "type", "value", "tags"}]}`; every key optional."""

Status = dict[str, Any]
"""`{"code": int, "info": str, "reason": str, "status": "SUCCESS" | "FAILURE"}`."""


@dataclass(slots=True)
class SeldonMessage:
    """One SeldonMessage.

    `form` is one of the data forms above, or None when the message carries no
    data.  `payload` by form:

    - ndarray: a (nested) Python list, or a numpy array produced by a component
    - tensor / tftensor: a numpy array
    - strData: str; binData: bytes; jsonData: any JSON value
    - customData: the proto3 JSON dict of a `google.protobuf.Any`
      (`{"@type": ..., ...}`), kept opaque
    - v2: a `protocol.v2.InferPayload` (named tensors); `names` are its tensors' names
    """

    form: str | None = None
    payload: Any = None
    names: list[str] = field(default_factory=list)
    meta: Meta = field(default_factory=dict)
    status: Status | None = None
    # tftensor keeps the TensorFlow dtype name it came with (e.g. "DT_FLOAT"),
    # so an answer can echo it.
    tf_dtype: str | None = None
    # The JSON dict a component's raw method returned, which a microservice answers as it is
    # (as Seldon's wrapper does); None for every other message.
    verbatim: dict[str, Any] | None = None

    @property
    def is_array(self) -> bool:
        return self.form in ARRAY_FORMS

    def array(self) -> np.ndarray:
        """The payload as a numpy array (what a user's `predict` receives as X)."""
        if self.form in ARRAY_FORMS:
            payload = self.payload
            return payload if isinstance(payload, np.ndarray) else np.array(payload)
        if self.form is None:
            return np.array([])
        raise TypeError(f"message carries {self.form}, not an array")

    @property
    def is_v2(self) -> bool:
        return self.form == V2

    def user_payload(self) -> Any:
        """What a user's method receives: an array for DefaultData, the one input's array (or
        a dict of name -> array) for V2, else the raw value."""
        if self.form in ARRAY_FORMS or self.form is None:
            return self.array()
        if self.form == V2:
            return self.payload.user_value()
        return self.payload

    def copy_meta(self) -> Meta:
        """A copy of meta deep enough that merging into it never touches the original."""
        meta = dict(self.meta)
        for key in ("tags", "routing", "requestPath"):
            if key in meta:
                meta[key] = dict(meta[key])
        if "metrics" in meta:
            meta["metrics"] = list(meta["metrics"])
        return meta


@dataclass(slots=True)
class Feedback:
    """A Feedback message: the request, the response it got, a reward, and the truth."""

    request: SeldonMessage | None = None
    response: SeldonMessage | None = None
    reward: float = 0.0
    truth: SeldonMessage | None = None

    def routing(self) -> dict[str, int]:
        """The routing decisions recorded in the response's meta (empty if none)."""
        if self.response is None:
            return {}
        return self.response.meta.get("routing") or {}


def failure_status(code: int, info: str, reason: str) -> Status:
    return {"code": code, "info": info, "reason": reason, "status": "FAILURE"}
