"""Which graph `implementation` names are model servers, the class behind each, and the
pip extra that installs its framework (what Seldon's `predictor_servers` ConfigMap said).

A server is named in a manifest by its implementation (SKLEARN_SERVER) and on the command
line by its short name (`seldon microservice --server sklearn`).  A user adds one with
`--server NAME=module:Class` or a config file (`load_server_config`); manifests may then name it.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from seldon_serving.components.loader import ComponentLoadError
from seldon_serving.protocol.errors import ServingError
from seldon_serving.spec.enums import add_implementation


class ServerRegistryError(ServingError):
    """A `--server NAME=module:Class` or server config file we cannot use (one sentence)."""


class ModelServerError(ComponentLoadError):
    """A saved model a built-in server cannot load; the sentence names the file at fault."""


class ServerParameterError(ModelServerError):
    """A built-in server's parameter it cannot use (model_uri missing, an unknown method)."""


@dataclass(frozen=True, slots=True)
class ModelServer:
    """One model server, as a manifest names it."""

    implementation: str  # the graph's `implementation` value: SKLEARN_SERVER
    short: str  # what `seldon microservice --server` takes: sklearn
    target: str  # the class, as module:Class
    extra: str | None = None  # the pip extra that installs its framework: sklearn
    requires: tuple[str, ...] = ()  # modules it imports (checked without importing them)
    builtin: bool = True  # False: registered by the user

    @property
    def dotted(self) -> str:
        """The class as `module.Class` (how `seldon microservice` and process nodes load it)."""
        module, _, cls = self.target.partition(":")
        return f"{module}.{cls}"

    def missing(self) -> str | None:
        """Why it cannot run in this interpreter (a framework is not installed), naming the pip
        command that fixes it, or None."""
        absent = [m for m in self.requires if not _importable(m)]
        if not absent:
            return None
        modules = ", ".join(absent)
        if self.extra:
            return (
                f"{self.implementation} needs {modules}, which is not installed: "
                f"pip install 'seldon-serving[{self.extra}]'"
            )
        return f"{self.implementation} needs {modules}, which is not installed"

    def load_class(self) -> type:
        """The server's class (imports its module); ServerRegistryError if it cannot be loaded."""
        problem = self.missing()
        if problem is not None:
            raise ServerRegistryError(problem)
        module_name, _, class_name = self.target.partition(":")
        try:
            module = importlib.import_module(module_name)
        except Exception as exc:  # a user's module may fail any way
            raise ServerRegistryError(
                f"server {self.implementation}: module {module_name!r} cannot be imported: {exc}"
            ) from None
        cls = getattr(module, class_name, None)
        if not isinstance(cls, type):
            raise ServerRegistryError(
                f"server {self.implementation}: module {module_name!r} has no class {class_name!r}"
            )
        return cls


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


_PACKAGE = "seldon_serving.components.servers"

SERVERS: tuple[ModelServer, ...] = (
    ModelServer(
        "SKLEARN_SERVER", "sklearn", f"{_PACKAGE}.sklearn:SKLearnServer", "sklearn", ("sklearn", "joblib")
    ),
    ModelServer("XGBOOST_SERVER", "xgboost", f"{_PACKAGE}.xgboost:XGBoostServer", "xgboost", ("xgboost",)),
    ModelServer(
        "LIGHTGBM_SERVER", "lightgbm", f"{_PACKAGE}.lightgbm:LightGBMServer", "lightgbm", ("lightgbm",)
    ),
    ModelServer("MLFLOW_SERVER", "mlflow", f"{_PACKAGE}.mlflow:MLFlowServer", "mlflow", ("mlflow", "pandas")),
)

_registered: dict[str, ModelServer] = {}
for _server in SERVERS:
    add_implementation(_server.implementation)

_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
_TARGET = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")


def server_for(name: str) -> ModelServer | None:
    """The server an implementation name (SKLEARN_SERVER) or short name (sklearn) stands for."""
    for server in known_servers():
        if name in (server.implementation, server.short) or name.lower() == server.short.lower():
            return server
    return None


def known_servers() -> list[ModelServer]:
    """Built-in servers first, then the registered ones."""
    return [*SERVERS, *_registered.values()]


def _make(name: str, target: str, extra: str | None, requires: tuple[str, ...], where: str) -> ModelServer:
    if not _NAME.match(name):
        raise ServerRegistryError(
            f"{where}: server name {name!r} must start with a letter and hold only letters, digits and _"
        )
    if not _TARGET.match(target):
        raise ServerRegistryError(
            f"{where}: {target!r} is not module:Class (e.g. mypackage.servers:MyServer)"
        )
    if any(name == s.implementation for s in SERVERS):
        raise ServerRegistryError(f"{where}: {name} is a built-in server; choose another name")
    short = name.lower().removesuffix("_server")
    return ModelServer(name, short, target, extra, requires, builtin=False)


def _add(server: ModelServer) -> ModelServer:
    _registered[server.implementation] = server
    add_implementation(server.implementation)
    return server


def register_server(spec: str) -> ModelServer:
    """Register `NAME=module:Class` (a custom implementation name); manifests may then name it."""
    name, sep, target = spec.partition("=")
    if not sep:
        raise ServerRegistryError(f"--server {spec!r} is not NAME=module:Class")
    return _add(_make(name.strip(), target.strip(), None, (), f"--server {spec!r}"))


def load_server_config(path: Path) -> list[ModelServer]:
    """Register every server a YAML or JSON file names; returns them.

    The file maps each implementation name to `module:Class`, or to a mapping with `class`
    (module:Class), optional `extra` (the pip extra to suggest) and `requires` (modules that
    must be importable)::

        MY_SERVER: mypackage.servers:MyServer
        OTHER_SERVER: {class: other.serve:Server, requires: [torch]}
    """
    try:
        text = path.read_text()
    except OSError as exc:
        raise ServerRegistryError(f"{path}: cannot read the server config: {exc.strerror}") from None
    try:
        doc: Any = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise ServerRegistryError(f"{path}: not valid {path.suffix.lstrip('.') or 'YAML'}: {exc}") from None
    if not isinstance(doc, dict):
        raise ServerRegistryError(f"{path}: must map server names to module:Class")
    servers = []
    for name, entry in doc.items():
        where = f"{path}: {name}"
        if isinstance(entry, str):
            servers.append(_make(str(name), entry, None, (), where))
            continue
        if not isinstance(entry, dict) or not isinstance(entry.get("class"), str):
            raise ServerRegistryError(f"{where}: give module:Class, or a mapping with class: module:Class")
        requires = entry.get("requires") or []
        if not isinstance(requires, list) or not all(isinstance(r, str) for r in requires):
            raise ServerRegistryError(f"{where}: requires must be a list of module names")
        extra = str(entry["extra"]) if entry.get("extra") else None
        servers.append(_make(str(name), entry["class"], extra, tuple(requires), where))
    return [_add(s) for s in servers]


def forget_registered() -> None:
    """Drop every registered server (tests; a fresh `seldon serve` starts with none)."""
    _registered.clear()
