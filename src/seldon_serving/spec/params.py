"""Typed graph-node parameters: the one parser every layer uses.

A manifest writes every value as a string and `type` says how to read it; hand-written
manifests, `--parameters` JSON and Python callers may also give JSON numbers and booleans.
The rules are the same wherever a value comes from:

- INT: an integer, a whole float, or the text of an integer ("1.5" and True are refused);
- FLOAT / DOUBLE: any number or its text (True is refused);
- BOOL: strtobool's words (true/yes/on/1, false/no/off/0, any case) or a JSON boolean;
  Seldon 0.2 used `bool(text)`, so "false" was True (Seldon #439); anything else is refused;
- STRING: text as given; numbers and booleans in their JSON spelling.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from seldon_serving.spec.enums import ParameterType
from seldon_serving.spec.errors import ManifestError, join_path
from seldon_serving.spec.models import PredictiveUnit

_TRUE = frozenset({"y", "yes", "t", "true", "on", "1"})
_FALSE = frozenset({"n", "no", "f", "false", "off", "0"})

_ARTICLE = {ParameterType.INT: "an"}


class NotOfType(ValueError):
    """A value that cannot be read as its declared type; str() says so in one sentence."""

    def __init__(self, value: Any, kind: ParameterType, hint: str = "") -> None:
        self.value = value
        self.kind = kind
        article = _ARTICLE.get(kind, "a")
        super().__init__(f"{value!r} is not {article} {kind.value}{hint}")


def _int(value: Any) -> int:
    if isinstance(value, bool):  # bool is an int subclass, but True as an INT is a manifest mistake
        raise NotOfType(value, ParameterType.INT)
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            pass
    raise NotOfType(value, ParameterType.INT)


def _float(value: Any, kind: ParameterType) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            pass
    raise NotOfType(value, kind)


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        word = value.strip().lower()
        if word in _TRUE:
            return True
        if word in _FALSE:
            return False
    raise NotOfType(value, ParameterType.BOOL, " (use true/false, yes/no, on/off or 1/0)")


def _string(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):  # JSON spelling, not Python's "True"
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    raise NotOfType(value, ParameterType.STRING)


_PARSERS: dict[ParameterType, Callable[[Any], Any]] = {
    ParameterType.INT: _int,
    ParameterType.FLOAT: lambda value: _float(value, ParameterType.FLOAT),
    ParameterType.DOUBLE: lambda value: _float(value, ParameterType.DOUBLE),
    ParameterType.BOOL: _bool,
    ParameterType.STRING: _string,
}


def parse_value(kind: ParameterType | str, value: Any) -> Any:
    """The Python value of one parameter; NotOfType (a ValueError) when it does not fit."""
    return _PARSERS[ParameterType(kind)](value)


def parse_bool(value: Any) -> bool:
    """strtobool semantics (see the module doc); NotOfType for anything else."""
    return _bool(value)


def typed_parameters(unit: PredictiveUnit) -> dict[str, Any]:
    """name -> value converted by its declared type (later entries of one name win).

    Raises ManifestError naming `parameters[i].value` (relative to the unit) on a bad value.
    """
    out: dict[str, Any] = {}
    for i, param in enumerate(unit.parameters):
        try:
            out[param.name] = parse_value(param.type, param.value)
        except NotOfType as exc:
            raise ManifestError(join_path("parameters", i, "value"), str(exc)) from None
    return out
