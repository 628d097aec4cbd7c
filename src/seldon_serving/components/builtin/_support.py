"""What every built-in component shares: its errors, parameter coercion, input checks
and the private in-memory state used when no store is handed in.

Parameters normally arrive already typed (INT/FLOAT/BOOL/STRING -> Python), but a
user may also construct a class by hand or pass `--parameters` with strings, so each
value is read here by the one parameter parser (`spec.params`) and checked against its
range, or refused with a message naming the parameter.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from seldon_serving.protocol.errors import BadParameter, BadRequest
from seldon_serving.spec.enums import ParameterType
from seldon_serving.spec.params import NotOfType, parse_value
from seldon_serving.state.base import StateHandle
from seldon_serving.state.memory import MemoryStore

# Namespace used by the private store of a component constructed without a handle.
LOCAL_NAMESPACE = "builtin"


class BuiltinInputError(BadRequest, ValueError):
    """A request or feedback a built-in component cannot use.

    Also a ValueError so that plain Python callers (standalone use, notebooks) can
    catch it the usual way, while the servers map it to a 400 like any BadRequest.
    """


class BuiltinParameterError(BadParameter, ValueError):
    """A graph-node parameter with a missing or invalid value.

    `parameter` names it, so a manifest check can point at `parameters[i].value` (or at
    `parameters` when it is `missing`).
    """

    def __init__(self, info: str, *, parameter: str | None = None, missing: bool = False) -> None:
        super().__init__(info)
        self.parameter = parameter
        self.missing = missing


def required(name: str, value: Any, what: str) -> Any:
    """`value`, or BuiltinParameterError saying the parameter is needed and what it means."""
    if value is None:
        raise BuiltinParameterError(f"parameter {name} is required ({what})", parameter=name, missing=True)
    return value


@dataclass(frozen=True, slots=True)
class Children:
    """How many child nodes a built-in router or combiner needs (checked when a graph is planned)."""

    minimum: int = 0
    maximum: int | None = None

    def problem(self, what: str, count: int) -> str | None:
        """Why `count` children do not suit `what` (e.g. "RANDOM_ABTEST"), or None."""
        if self.maximum == self.minimum and count != self.minimum:
            return f"{what} needs exactly {self.minimum} children, has {count}"
        if count < self.minimum:
            needed = "one child" if self.minimum == 1 else f"{self.minimum} children"
            return f"{what} needs at least {needed}, has {count}"
        if self.maximum is not None and count > self.maximum:
            return f"{what} takes at most {self.maximum} children, has {count}"
        return None


def local_handle(key: str) -> StateHandle:
    """A handle on a fresh private in-memory store: standalone use and benchmarks."""
    return StateHandle(MemoryStore(), LOCAL_NAMESPACE, key)


def _typed(name: str, value: Any, kind: ParameterType) -> Any:
    try:
        return parse_value(kind, value)
    except NotOfType:
        what = {ParameterType.INT: "an integer", ParameterType.BOOL: "a boolean"}.get(kind, "a number")
        raise BuiltinParameterError(
            f"parameter {name} must be {what}, got {value!r}", parameter=name
        ) from None


def as_int(name: str, value: Any, *, minimum: int | None = None) -> int:
    result: int = _typed(name, value, ParameterType.INT)
    if minimum is not None and result < minimum:
        raise BuiltinParameterError(f"parameter {name} must be >= {minimum}, got {result}", parameter=name)
    return result


def as_float(name: str, value: Any, *, low: float | None = None, high: float | None = None) -> float:
    result: float = _typed(name, value, ParameterType.FLOAT)
    if not math.isfinite(result):
        raise BuiltinParameterError(
            f"parameter {name} must be a finite number, got {value!r}", parameter=name
        )
    if (low is not None and result < low) or (high is not None and result > high):
        bounds = (
            f"in [{low}, {high}]"
            if low is not None and high is not None
            else (f">= {low}" if low is not None else f"<= {high}")
        )
        raise BuiltinParameterError(f"parameter {name} must be {bounds}, got {result}", parameter=name)
    return result


def as_bool(name: str, value: Any) -> bool:
    result: bool = _typed(name, value, ParameterType.BOOL)
    return result


def as_seed(value: Any) -> int | None:
    # 0 is a valid seed (Seldon's `if seed:` silently ignored it).
    return None if value is None else as_int("seed", value, minimum=0)


def numeric_2d(component: str, X: Any) -> np.ndarray:
    """X as a float 2-D array, or a clear BadRequest naming what was wrong."""
    try:
        array = np.asarray(X, dtype=np.float64)
    except (TypeError, ValueError):
        raise BuiltinInputError(f"{component} needs numeric data, got {type(X).__name__}") from None
    if array.ndim != 2:
        raise BuiltinInputError(
            f"{component} needs a 2-D array (rows x features), got shape {list(array.shape)}"
        )
    return array
