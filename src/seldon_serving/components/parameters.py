"""Typing of a graph node's `parameters` before they reach the user's `__init__(**parameters)`.

The list arrives as `--parameters '<json>'` or env `PREDICTIVE_UNIT_PARAMETERS`, each entry
`{"name": ..., "value": ..., "type": "INT|FLOAT|DOUBLE|STRING|BOOL"}`, each value read by
the one parameter parser (`spec.params`): normally strings (the operator writes them so), but
JSON numbers and booleans are accepted too because hand-written manifests often carry them.
"""

from __future__ import annotations

import json
from typing import Any

from seldon_serving.protocol.errors import BadParameter
from seldon_serving.spec.enums import ParameterType
from seldon_serving.spec.params import NotOfType, parse_value

__all__ = ["parse_parameters"]

_TYPES = ", ".join(t.value for t in ParameterType)


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
    if not isinstance(type_name, str) or type_name.upper() not in ParameterType.__members__:
        raise BadParameter(f"parameter '{name}' has unknown type {type_name!r} (valid: {_TYPES})")
    type_name = type_name.upper()
    try:
        return name, parse_value(type_name, value)
    except NotOfType:
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
