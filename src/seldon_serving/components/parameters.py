"""Typing of a graph node's `parameters` before they reach the user's `__init__(**parameters)`.

The list arrives as `--parameters '<json>'` or env `PREDICTIVE_UNIT_PARAMETERS`, each entry
`{"name": ..., "value": ..., "type": "INT|FLOAT|DOUBLE|STRING|BOOL"}`.  Values are normally
strings (the operator writes them so), but JSON numbers and booleans are accepted too because
hand-written manifests often carry them.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from seldon_serving.protocol.errors import BadParameter

__all__ = ["parse_bool", "parse_parameters"]

# strtobool's vocabulary (Seldon v1).  Seldon 0.2.x used bool(str), so "false" was True (#439);
# anything outside these words is an error rather than a silent guess.
_TRUE_WORDS = frozenset({"y", "yes", "t", "true", "on", "1"})
_FALSE_WORDS = frozenset({"n", "no", "f", "false", "off", "0"})


class _NotOfType(ValueError):
    """A value that cannot be read as the declared type (turned into BadParameter by the caller)."""


def parse_bool(value: Any) -> bool:
    """`strtobool` semantics: true/yes/on/1 and false/no/off/0 (any case); anything else fails."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        word = value.strip().lower()
        if word in _TRUE_WORDS:
            return True
        if word in _FALSE_WORDS:
            return False
    raise _NotOfType(value)


def _parse_int(value: Any) -> int:
    if isinstance(value, bool):  # bool is an int subclass, but True as an INT is a manifest mistake
        raise _NotOfType(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        return int(value.strip())  # ValueError on "1.5" / "abc", as Seldon's int(value)
    raise _NotOfType(value)


def _parse_float(value: Any) -> float:
    if isinstance(value, bool):
        raise _NotOfType(value)
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        return float(value.strip())
    raise _NotOfType(value)


def _parse_string(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):  # JSON spelling, not Python's "True"
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    raise _NotOfType(value)


_PARSERS: dict[str, Callable[[Any], Any]] = {
    "INT": _parse_int,
    "FLOAT": _parse_float,
    "DOUBLE": _parse_float,
    "STRING": _parse_string,
    "BOOL": parse_bool,
}


def _parse_one(entry: Any, index: int) -> tuple[str, Any]:
    if not isinstance(entry, dict):
        raise BadParameter(f"parameter #{index} must be an object with name, value and type, got {entry!r}")
    name = entry.get("name")
    if not isinstance(name, str) or not name:
        raise BadParameter(f"parameter #{index} has no name: {entry!r}")
    if "value" not in entry or entry["value"] is None:
        raise BadParameter(f"parameter '{name}' has no value")
    value = entry["value"]
    type_name = entry.get("type") or "STRING"  # the CRD's default type
    if not isinstance(type_name, str) or type_name.upper() not in _PARSERS:
        raise BadParameter(
            f"parameter '{name}' has unknown type {type_name!r} (valid: INT, FLOAT, DOUBLE, STRING, BOOL)"
        )
    type_name = type_name.upper()
    try:
        return name, _PARSERS[type_name](value)
    except (ValueError, OverflowError):  # _NotOfType is a ValueError
        raise BadParameter(f"parameter '{name}' value '{value}' is not a {type_name}") from None


def parse_parameters(params: list[dict[str, Any]] | str | None) -> dict[str, Any]:
    """Typed keyword arguments for the user's `__init__` from a parameter list (or its JSON text).

    Later entries with the same name win, as in Seldon.  Raises BadParameter naming the parameter.
    """
    if params is None:
        return {}
    if isinstance(params, str):
        if not params.strip():
            return {}
        try:
            params = json.loads(params)
        except ValueError as exc:
            raise BadParameter(f"parameters are not valid JSON: {exc}") from None
        if params is None:
            return {}
    if not isinstance(params, list):
        raise BadParameter(
            f"parameters must be a JSON list of {{name, value, type}}, got {type(params).__name__}"
        )
    return dict(_parse_one(entry, i) for i, entry in enumerate(params))
