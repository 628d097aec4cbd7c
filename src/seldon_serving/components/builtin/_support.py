"""What every built-in component shares: its errors, parameter coercion, input checks
and the private in-memory state used when no store is handed in.

Parameters normally arrive already typed (INT/FLOAT/BOOL/STRING -> Python), but a
user may also construct a class by hand or pass `--parameters` with strings, so each
value is coerced once here and refused with a message naming the parameter.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from seldon_serving.protocol.errors import BadParameter, BadRequest
from seldon_serving.state.base import StateHandle
from seldon_serving.state.memory import MemoryStore

# Namespace used by the private store of a component constructed without a handle.
LOCAL_NAMESPACE = "builtin"

_TRUE = {"1", "true", "t", "yes", "y", "on"}
_FALSE = {"0", "false", "f", "no", "n", "off", ""}


class BuiltinInputError(BadRequest, ValueError):
    """A request or feedback a built-in component cannot use.

    Also a ValueError so that plain Python callers (standalone use, notebooks) can
    catch it the usual way, while the servers map it to a 400 like any BadRequest.
    """


class BuiltinParameterError(BadParameter, ValueError):
    """A graph-node parameter with a missing or invalid value."""


def local_handle(key: str) -> StateHandle:
    """A handle on a fresh private in-memory store: standalone use and benchmarks."""
    return StateHandle(MemoryStore(), LOCAL_NAMESPACE, key)


def as_int(name: str, value: Any, *, minimum: int | None = None) -> int:
    # bool is an int subclass; True as a branch count is a manifest mistake, not 1.
    if isinstance(value, bool):
        raise BuiltinParameterError(f"parameter {name} must be an integer, got {value!r}")
    try:
        result = int(value)
    except (TypeError, ValueError):
        raise BuiltinParameterError(f"parameter {name} must be an integer, got {value!r}") from None
    if isinstance(value, float) and result != value:
        raise BuiltinParameterError(f"parameter {name} must be an integer, got {value!r}")
    if minimum is not None and result < minimum:
        raise BuiltinParameterError(f"parameter {name} must be >= {minimum}, got {result}")
    return result


def as_float(name: str, value: Any, *, low: float | None = None, high: float | None = None) -> float:
    if isinstance(value, bool):
        raise BuiltinParameterError(f"parameter {name} must be a number, got {value!r}")
    try:
        result = float(value)
    except (TypeError, ValueError):
        raise BuiltinParameterError(f"parameter {name} must be a number, got {value!r}") from None
    if not np.isfinite(result):
        raise BuiltinParameterError(f"parameter {name} must be a finite number, got {value!r}")
    if (low is not None and result < low) or (high is not None and result > high):
        raise BuiltinParameterError(f"parameter {name} must be in [{low}, {high}], got {result}")
    return result


def as_bool(name: str, value: Any) -> bool:
    # strtobool semantics: Seldon 0.2's bool("False") == True was a bug (#439), not a contract.
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise BuiltinParameterError(f"parameter {name} must be a boolean, got {value!r}")


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
