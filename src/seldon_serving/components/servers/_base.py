"""What the model servers share: the model_uri and method parameters, finding the model file
in a directory, importing the framework lazily, turning a framework's failure into one
sentence, and Seldon's `metadata.yaml` beside the model.

A server's `__init__` only checks its parameters; `load()` resolves the modelUri and loads the
model, once, in the process that will predict: xgboost and LightGBM boosters loaded before a
fork hang in the child's first predict (OpenMP), and `seldon microservice --workers N` forks.
"""

from __future__ import annotations

import importlib
import logging
import re
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any, ClassVar

import numpy as np
import yaml

from seldon_serving.components.storage import ModelUriError, resolve_model_uri
from seldon_serving.protocol.errors import BadRequest

from .registry import ModelServerError, ServerParameterError

log = logging.getLogger("seldon_serving.model_servers")

__all__ = ["ModelServerBase", "ModelServerError", "ServerParameterError", "bad_request", "exact", "reason"]


_NOISE = re.compile(r"^\[[\d:]+\]\s+(?:\S+:\d+:\s+)?")  # xgboost's "[11:08:25] /src/x.cc:12: "


def reason(exc: BaseException, limit: int = 240) -> str:
    """`Type: first line of the message`, without the frameworks' timestamps and source
    positions, and short: a framework's error may carry a stack trace or the whole input."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    text = _NOISE.sub("", lines[0]) if lines else ""
    if len(text) > limit:
        text = text[: limit - 3].rstrip() + "..."
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def bad_request(server: str, exc: BaseException) -> BadRequest:
    """A request the model refused (wrong number of features, wrong type): the caller's fault."""
    return BadRequest(f"{server} cannot predict on this request: {reason(exc)}")


def exact(result: Any) -> Any:
    """A float32 (or float16) answer widened to float64, which is exact: JSON would otherwise
    carry the shortest float32 text (0.1 for 0.100000001490116...), which a client reads back as a
    different number.  Anything else is returned as the framework gave it."""
    if isinstance(result, np.ndarray) and result.dtype.kind == "f" and result.dtype.itemsize < 8:
        return result.astype(np.float64)
    return result


class ModelServerBase:
    """A model server: an ordinary Seldon user class built from the node's `model_uri`
    (already a local path when the gateway or `seldon microservice --server` resolved it;
    otherwise resolved here, as a local path, file:// or a remote URI with storage's defaults)."""

    implementation: ClassVar[str]  # SKLEARN_SERVER, as a manifest names it
    framework: ClassVar[str]  # the module to import: sklearn, xgboost, ...
    extra: ClassVar[str]  # the pip extra that installs it
    model_files: ClassVar[tuple[str, ...]]  # looked for, in this order, in the model directory
    methods: ClassVar[tuple[str, ...]] = ("predict",)

    def __init__(self, model_uri: str | None = None, method: str | None = None) -> None:
        if model_uri is None or not str(model_uri).strip():
            raise ServerParameterError(
                f"{self.implementation} needs the parameter model_uri: where the saved model is "
                "(a directory holding " + " or ".join(self.model_files) + ", or the file itself)"
            )
        self.model_uri = str(model_uri)
        chosen = self.methods[0] if method is None else str(method)
        if chosen not in self.methods:
            raise ServerParameterError(
                f"{self.implementation} parameter method {chosen!r} is not one of {', '.join(self.methods)}"
            )
        self.method = chosen
        self.ready = False
        self.model_path: Path | None = None  # the local directory or file, once loaded
        # What the model raises for rows that do not fit it (a 400 naming the server, not a
        # 500); a server adds its framework's own error when it loads.
        self.input_errors: tuple[type[Exception], ...] = (ValueError, TypeError)

    # --- answering -----------------------------------------------------------------------

    def predict(self, X: Any, features_names: list[str] | None = None) -> Any:
        """The model's answer for the rows X (`exact`: float32 widened to float64)."""
        if not self.ready:
            self.load()
        try:
            result = self._answer(X, features_names)
        except self.input_errors as exc:  # wrong shape or type of input
            raise bad_request(self.implementation, exc) from None
        return exact(self._finish(result))

    def _answer(self, X: Any, features_names: list[str] | None) -> Any:
        """The framework's own call on the rows."""
        raise NotImplementedError

    def _finish(self, result: Any) -> Any:
        """The framework's answer as an array (a server whose answers are not one overrides it)."""
        return result

    # --- loading -------------------------------------------------------------------------

    def load(self) -> None:
        """Resolve the modelUri and load the model (once; later calls do nothing)."""
        if self.ready:
            return
        try:
            path = resolve_model_uri(self.model_uri)
        except ModelUriError as exc:
            raise ModelServerError(str(exc)) from None
        self.model_path = path
        self._load(path)
        self.ready = True

    def _load(self, path: Path) -> None:
        raise NotImplementedError

    def import_framework(self, module: str | None = None) -> ModuleType:
        """The framework's module; ModelServerError with the pip command when it is missing."""
        name = module or self.framework
        try:
            return importlib.import_module(name)
        except ImportError as exc:
            raise ModelServerError(
                f"{self.implementation} needs {name}, which cannot be imported ({reason(exc)}): "
                f"pip install 'seldon-serving[{self.extra}]'"
            ) from None

    def model_file(self, path: Path, names: Sequence[str] | None = None) -> Path:
        """The model file: `path` itself if it is a file, else the first of `names` (default:
        the server's `model_files`) in the directory `path`."""
        if not path.is_dir():
            return path
        wanted = tuple(names or self.model_files)
        for name in wanted:
            if (path / name).is_file():
                return path / name
        present = sorted(p.name for p in path.iterdir())[:8]
        holds = f"it holds {', '.join(present)}" if present else "it is empty"
        raise ModelServerError(
            f"{path} has no {' or '.join(wanted)}, the model file {self.implementation} loads ({holds})"
        )

    def unreadable(self, file: Path, what: str, exc: BaseException) -> ModelServerError:
        """The error for a model file the framework could not load."""
        if isinstance(exc, ModuleNotFoundError) and exc.name:
            return ModelServerError(
                f"{file} needs the Python module {exc.name!r} to load, which is not installed here"
            )
        if isinstance(exc, OSError) and exc.strerror:
            return ModelServerError(f"{file} cannot be read ({exc.strerror})")
        return ModelServerError(f"{file} is not a {what}, or it is truncated ({reason(exc)})")

    # --- what the adapter asks for -------------------------------------------------------

    def init_metadata(self) -> dict[str, Any]:
        """Seldon's servers: `metadata.yaml` in the model directory, if there is one."""
        return self.metadata_file() or {}

    def metadata_file(self) -> dict[str, Any] | None:
        """The model directory's metadata.yaml (None if absent; unreadable ones are logged and
        ignored, as Seldon's servers do)."""
        if self.model_path is None or not self.model_path.is_dir():
            return None
        file = self.model_path / "metadata.yaml"
        try:
            document = yaml.safe_load(file.read_text())
        except FileNotFoundError:
            return None
        except (OSError, yaml.YAMLError) as exc:
            log.warning("%s cannot be used as the model's metadata, ignored: %s", file, reason(exc))
            return None
        if not isinstance(document, dict):
            log.warning("%s does not hold a mapping of metadata fields, ignored", file)
            return None
        return document
