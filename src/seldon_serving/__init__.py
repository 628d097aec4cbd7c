"""Seldon Serving: Seldon Core compatible model serving in Python.

The public API for model code is small: a class with Seldon's methods needs nothing
from here; `ComponentResponse(data, tags=None, metrics=None)` attaches per-request
tags and metrics to an answer (Seldon's `SeldonResponse` works too).  Everything
else is reached through the `seldon` command.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["ComponentResponse", "__version__"]


def __getattr__(name: str) -> Any:
    # Lazy, so `seldon --help` does not pay for numpy.
    if name == "ComponentResponse":
        from seldon_serving.components.response import ComponentResponse

        return ComponentResponse
    raise AttributeError(f"module 'seldon_serving' has no attribute {name!r}")
