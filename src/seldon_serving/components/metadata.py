"""The model metadata document (`GET /metadata`, Model.Metadata): defaults plus validation.

Same schema as seldon-core's `validate_model_metadata` (v1 SeldonMessage metadata and v2
tensor metadata for inputs/outputs), checked by hand so no jsonschema dependency is needed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

import yaml

from seldon_serving.protocol.errors import BadMetadata

__all__ = ["default_metadata", "parse_model_metadata", "split_image", "validate_metadata"]

log = logging.getLogger("seldon_serving.metadata")


def parse_model_metadata(text: str | None) -> Any:
    """The MODEL_METADATA environment variable (JSON or YAML), as Seldon's wrapper reads it:
    unreadable text is logged and ignored; what it holds is checked when /metadata is built."""
    if not text:
        return None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        log.error("MODEL_METADATA is not valid JSON or YAML, ignored: %s", exc)
        return None


_ARRAY_TYPES = frozenset({"tensor", "ndarray", "tftensor"})
_OTHER_TYPES = frozenset({"jsonData", "strData", "binData"})
_V2_DATATYPES = frozenset(
    {"BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64"}
    | {"FP16", "FP32", "FP64", "BYTES"}
)
_TOP_KEYS = frozenset({"name", "versions", "platform", "inputs", "outputs", "custom"})


def split_image(image: str | None) -> tuple[str, str]:
    """("repo/name", "tag") of an image reference; the version is what follows the last colon."""
    if not image:
        return "", ""
    name, sep, version = image.rpartition(":")
    if not sep or "/" in version:  # no tag at all (a registry port is not a tag)
        return image, ""
    return name, version


def default_metadata(image: str | None) -> dict[str, Any]:
    name, version = split_image(image)
    return {"name": name, "versions": [version], "platform": "", "inputs": [], "outputs": [], "custom": {}}


def _str_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def _int_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, int) and not isinstance(v, bool) for v in value)


def _seldon_io_problem(item: Mapping[str, Any]) -> str | None:
    """v1 form: {"messagetype": ..., "schema": {...}}."""
    messagetype = item["messagetype"]
    if not isinstance(messagetype, str):
        return "'messagetype' must be a string"
    extra = set(item) - {"messagetype", "schema"}
    if extra:
        return f"unknown field(s) {', '.join(sorted(extra))}"
    schema = item.get("schema")
    if messagetype in {"strData", "binData"}:
        return f"{messagetype} takes no schema" if "schema" in item else None
    if "schema" in item and not isinstance(schema, Mapping):
        return "'schema' must be an object"
    if messagetype in _ARRAY_TYPES and schema is not None:
        if set(schema) - {"names", "shape"}:
            return "an array schema holds only 'names' and 'shape'"
        if "names" in schema and not _str_list(schema["names"]):
            return "schema 'names' must be a list of strings"
        if "shape" in schema and not _int_list(schema["shape"]):
            return "schema 'shape' must be a list of integers"
    return None


def _v2_io_problem(item: Mapping[str, Any]) -> str | None:
    """v2 tensor form: {"name": str, "datatype": one of the v2 names, "shape": [int]}."""
    extra = set(item) - {"name", "datatype", "shape"}
    if extra:
        return f"unknown field(s) {', '.join(sorted(extra))}"
    if "name" in item and not isinstance(item["name"], str):
        return "'name' must be a string"
    if "datatype" in item and item["datatype"] not in _V2_DATATYPES:
        return f"'datatype' must be one of {', '.join(sorted(_V2_DATATYPES))}"
    if "shape" in item and not _int_list(item["shape"]):
        return "'shape' must be a list of integers"
    return None


def _io_problem(item: Any) -> str | None:
    if not isinstance(item, Mapping):
        return "each entry must be an object"
    if "messagetype" in item:
        return _seldon_io_problem(item)
    return _v2_io_problem(item)


def validate_metadata(document: Mapping[str, Any]) -> dict[str, Any]:
    """`document` as a plain dict if it fits the schema, else BadMetadata saying what is wrong."""
    extra = set(document) - _TOP_KEYS
    if extra:
        raise BadMetadata(f"Model metadata has unknown field(s): {', '.join(sorted(map(str, extra)))}")
    checks: tuple[tuple[str, Callable[[Any], bool], str], ...] = (
        ("name", lambda v: isinstance(v, str), "a string"),
        ("platform", lambda v: isinstance(v, str), "a string"),
        ("versions", _str_list, "a list of strings"),
        ("inputs", lambda v: isinstance(v, list), "a list"),
        ("outputs", lambda v: isinstance(v, list), "a list"),
        (
            "custom",
            lambda v: isinstance(v, Mapping) and all(isinstance(x, str) for x in v.values()),
            "an object of strings",
        ),
    )
    for key, ok, what in checks:
        if key in document and not ok(document[key]):
            raise BadMetadata(f"Model metadata '{key}' must be {what}, got {document[key]!r}")
    for key in ("inputs", "outputs"):
        for index, item in enumerate(document.get(key, [])):
            problem = _io_problem(item)
            if problem is not None:
                raise BadMetadata(f"Model metadata {key}[{index}] is invalid: {problem}")
    return dict(document)
