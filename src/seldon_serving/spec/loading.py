"""Reading manifests: YAML or JSON, one document, several (`---`), or a `kind: List`."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import yaml
from pydantic import ValidationError

from seldon_serving.spec.enums import KIND
from seldon_serving.spec.errors import ManifestError, loc_to_path
from seldon_serving.spec.models import SeldonDeployment


@dataclass
class LoadResult:
    deployments: list[SeldonDeployment] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # one line per non-Seldon item


# --- YAML without surprises -------------------------------------------------------------------

_BaseLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Loader(_BaseLoader):  # type: ignore[misc,valid-type]
    """Safe loader that leaves timestamps as strings: Kubernetes (and JSON) has no date type,
    and a datetime would not survive the round trip back to the manifest."""


_Loader.yaml_implicit_resolvers = {
    key: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for key, resolvers in _BaseLoader.yaml_implicit_resolvers.items()
}


def parse_text(text: str, source: str | None) -> list[Any]:
    """The documents in `text`; JSON is tried first when it looks like JSON (much faster)."""
    stripped = text.lstrip()
    if stripped.startswith(("{", "[")) or (source or "").endswith(".json"):
        try:
            return [orjson.loads(text)]
        except orjson.JSONDecodeError:
            pass  # YAML flow style also starts with "{"; let the YAML parser have its say
    try:
        return [doc for doc in yaml.load_all(text, Loader=_Loader) if doc is not None]
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = exc.problem or exc.context or "unreadable"
        raise ManifestError("", f"not valid YAML or JSON{where}: {problem}", source=source) from None
    except yaml.YAMLError as exc:
        raise ManifestError("", f"not valid YAML or JSON: {exc}", source=source) from None


def _looks_like_path(text: str) -> bool:
    return "\n" not in text and not text.lstrip().startswith(("{", "[")) and len(text) < 4096


def _read(source: str | Path | bytes, filename: str | None) -> tuple[str, str | None]:
    if isinstance(source, bytes):
        try:
            return source.decode("utf-8-sig"), filename
        except UnicodeDecodeError as exc:
            raise ManifestError("", f"not UTF-8 text ({exc.reason})", source=filename) from None
    if isinstance(source, str) and not _looks_like_path(source):
        return source, filename
    path = Path(source)
    name = filename or str(source)
    try:
        return path.read_text(encoding="utf-8-sig"), name
    except FileNotFoundError:
        raise ManifestError("", "no such file", source=name) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ManifestError("", f"cannot read it ({exc})", source=name) from None


# --- pydantic errors -> one sentence ------------------------------------------------------------


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _choices(expected: str) -> str:
    # pydantic writes "'A', 'B' or 'C'"; we list them plainly: "A, B, C"
    return expected.replace(" or ", ", ").replace("'", "")


_TYPE_WORDS = {
    "string_type": "a string",
    "int_type": "an integer",
    "int_parsing": "an integer",
    "int_from_float": "a whole number",
    "float_type": "a number",
    "float_parsing": "a number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "list_type": "a list",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
}


def _reason(error: Any) -> str:
    kind, value, ctx = error["type"], error.get("input"), error.get("ctx") or {}
    if kind in ("enum", "literal_error"):
        return f"{_show(value)} is not one of {_choices(str(ctx.get('expected', '')))}"
    if kind == "missing":
        return "required field is missing"
    if kind in _TYPE_WORDS:
        return f"expected {_TYPE_WORDS[kind]}, got {_show(value)}"
    if kind == "too_short":
        return f"must have at least {ctx.get('min_length', 1)} item(s)"
    if kind in ("greater_than_equal", "greater_than", "less_than_equal", "less_than"):
        bound = next(iter(ctx.values()), "")
        sign = {"greater_than_equal": ">=", "greater_than": ">", "less_than_equal": "<=", "less_than": "<"}
        return f"must be {sign[kind]} {bound}, got {_show(value)}"
    return f"{str(error['msg'])[:1].lower()}{str(error['msg'])[1:]} (got {_show(value)})"


def from_validation_error(exc: ValidationError, *, source: str | None = None) -> ManifestError:
    """The first problem pydantic found, as one sentence; the count of the others is appended."""
    errors = exc.errors()
    first = errors[0]
    reason = _reason(first)
    if len(errors) > 1:
        reason += f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})"
    return ManifestError(loc_to_path(first["loc"]), reason, source=source)


# --- public entry points --------------------------------------------------------------------------


def parse_deployment(doc: Any, *, source: str | None = None, context: str | None = None) -> SeldonDeployment:
    """One SeldonDeployment from its dict form (model rules only; see `validate`)."""
    if not isinstance(doc, dict):
        raise ManifestError("", f"expected a mapping, got {_show(doc)}", source=source, context=context)
    try:
        sdep = SeldonDeployment.model_validate(doc)
    except ValidationError as exc:
        raise from_validation_error(exc).located(source=source, context=context) from None
    sdep.locate(source=source, context=context)
    return sdep


def _name_of(item: dict[str, Any]) -> str | None:
    meta = item.get("metadata")
    name = meta.get("name") if isinstance(meta, dict) else None
    if not name and isinstance(item.get("spec"), dict):
        name = item["spec"].get("name")
    return name if isinstance(name, str) and name else None


def _describe(item: dict[str, Any]) -> str:
    kind, name = item.get("kind") or "item without kind", _name_of(item)
    return f"{kind} {name}" if name else str(kind)


def _is_list(doc: dict[str, Any]) -> bool:
    kind = doc.get("kind")
    return isinstance(kind, str) and kind.endswith("List") and "items" in doc


def _entries(doc: Any, source: str | None, document: str | None) -> list[tuple[str, Any]]:
    """(context, item) for a document: its List items, or the document itself."""
    if not isinstance(doc, dict):
        raise ManifestError("", f"expected a mapping, got {_show(doc)}", source=source, context=document)
    if not _is_list(doc):
        return [(document or "", doc)]
    items = doc["items"] or []
    if not isinstance(items, list):
        raise ManifestError("items", f"expected a list, got {_show(items)}", source=source, context=document)
    where = f"{document}, " if document else ""
    return [(f"{where}items[{i}]", item) for i, item in enumerate(items)]


def load_documents(source: str | Path | bytes, *, filename: str | None = None) -> LoadResult:
    """Parse every SeldonDeployment in a file or text; other kinds are listed in `skipped`.

    A `str` without a newline that does not start with "{" or "[" is taken as a file path;
    any other `str` or `bytes` is the manifest text itself (`filename` names it in errors).
    Only the models' rules are checked here; call `validate` for the cross-field rules.
    """
    text, name = _read(source, filename)
    docs = parse_text(text, name)
    entries: list[tuple[str, Any]] = []
    for index, doc in enumerate(docs):
        entries += _entries(doc, name, f"document {index + 1}" if len(docs) > 1 else None)
    seldon = [(where, item) for where, item in entries if isinstance(item, dict) and item.get("kind") == KIND]
    result = LoadResult()
    for where, item in entries:
        if not isinstance(item, dict):
            raise ManifestError("", f"expected a mapping, got {_show(item)}", source=name, context=where)
        if item.get("kind") != KIND:
            result.skipped.append(f"{_describe(item)}: not a SeldonDeployment, skipped")
            continue
        # Say which deployment is meant only when the file holds several of them.
        context = (_describe(item) if _name_of(item) else where) if len(seldon) > 1 else None
        result.deployments.append(parse_deployment(item, source=name, context=context))
    return result
