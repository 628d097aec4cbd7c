"""JSON encoding shared by every backend.

All backends store the encoded bytes (the memory one included), so a value read
back is always a fresh copy with the same shape whatever the backend: a caller
mutating what `get` returned never changes the store, and a value that one
backend accepts the others accept too.
"""

from __future__ import annotations

import orjson

from .base import JSON

# numpy arrays/scalars are accepted because detector state (means, covariance
# matrices) is naturally numpy; they come back as plain lists/floats.
_OPTIONS = orjson.OPT_SERIALIZE_NUMPY


def encode(value: JSON) -> bytes:
    try:
        return orjson.dumps(value, option=_OPTIONS)
    except orjson.JSONEncodeError as exc:
        # JSONEncodeError is a TypeError: keep the type, add what was refused.
        raise TypeError(f"state values must be JSON-shaped: {exc}") from exc


def decode(data: bytes | str | None) -> JSON | None:
    return None if data is None else orjson.loads(data)
