"""Typed graph-node parameters: the manifest always holds strings, `type` says how to read them."""

from __future__ import annotations

from typing import Any

from seldon_serving.spec.enums import ParameterType
from seldon_serving.spec.errors import ManifestError, join_path
from seldon_serving.spec.models import PredictiveUnit

_TRUE = frozenset({"y", "yes", "t", "true", "on", "1"})
_FALSE = frozenset({"n", "no", "f", "false", "off", "0"})


def parse_bool(text: str) -> bool:
    """strtobool semantics, as Seldon's wrapper uses: `bool("False")` would be True (Seldon #439)."""
    lowered = text.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ValueError(f"{text!r} is not a BOOL (use true/false, yes/no, on/off or 1/0)")


def parse_value(kind: ParameterType, text: str) -> Any:
    """The Python value of one parameter; ValueError with a one-line reason when it does not fit."""
    match kind:
        case ParameterType.INT:
            try:
                return int(text)
            except ValueError:
                raise ValueError(f"{text!r} is not an INT") from None
        case ParameterType.FLOAT | ParameterType.DOUBLE:
            try:
                return float(text)
            except ValueError:
                raise ValueError(f"{text!r} is not a {kind.value}") from None
        case ParameterType.BOOL:
            return parse_bool(text)
        case _:
            return text


def typed_parameters(unit: PredictiveUnit) -> dict[str, Any]:
    """name -> value converted by its declared type (INT->int, FLOAT/DOUBLE->float, BOOL, STRING).

    Raises ManifestError naming `parameters[i].value` (relative to the unit) on a bad value.
    """
    out: dict[str, Any] = {}
    for i, param in enumerate(unit.parameters):
        try:
            out[param.name] = parse_value(param.type, param.value)
        except ValueError as exc:
            raise ManifestError(join_path("parameters", i, "value"), str(exc)) from None
    return out
