"""Finding the user's class from Seldon's `<InterfaceName>` argument, and building it.

Accepted names (as `seldon-core-microservice`): `MyModel` (class MyModel in MyModel.py) and
`pkg.module.Class`.  Also `pkg.MyModel` where pkg/MyModel.py defines class MyModel, which
Seldon itself mishandles (it would pick the submodule instead of the class).

A module that is a file of the searched directory (`MyModel.py`, Seldon's s2i layout) is
loaded under a name of its own, made from its path: two deployments from different
directories whose classes share a file name (`projA/Model.py`, `projB/Model.py`) each run
their own code, never the first one's from a shared `sys.modules` entry.

A re-applied deployment runs the code as it is now, as a fresh process would: when the
content of a directory's code files (`code_files`: its *.py files and those of its packages)
changed since a class was last loaded from it, every module loaded from those files is
dropped and imported again, so an edited helper module is seen too, not only the class's.
"""

from __future__ import annotations

import ast
import contextlib
import hashlib
import importlib
import importlib.machinery
import importlib.util
import inspect
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import CodeType, ModuleType
from typing import Any

from seldon_serving.components import seldon_core_api
from seldon_serving.protocol.errors import ServingError

__all__ = [
    "ComponentLoadError",
    "code_digests",
    "code_files",
    "find_user_class",
    "instantiate",
    "load_user_class",
    "takes_state",
]


class ComponentLoadError(ServingError):
    """The user's component could not be found, imported or constructed (a start-up error)."""


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _search_dirs(search_dirs: Sequence[str | Path] | None) -> list[Path]:
    return [Path.cwd()] if search_dirs is None else [Path(d).resolve() for d in search_dirs]


def _add_to_path(dirs: list[Path]) -> None:
    for directory in dirs:
        # Appended, like Seldon: the user's files must not shadow the stdlib or installed
        # packages, and their own sibling modules (`import helpers`) must be found.
        if str(directory) not in sys.path:
            sys.path.append(str(directory))


def _split(interface_name: str) -> str:
    name = interface_name.strip()
    if name.endswith(".py"):  # "MyModel.py" typed for "MyModel"
        name = name[: -len(".py")]
    if not name or any(not part.isidentifier() for part in name.split(".")):
        raise ComponentLoadError(f"'{interface_name}' is not a valid module or module.Class name")
    return name


def _file_in(dirs: list[Path], module_name: str) -> Path | None:
    """The file of a top-level module `module_name` in one of `dirs` (a package's __init__.py)."""
    for directory in dirs:
        for candidate in (directory / f"{module_name}.py", directory / module_name / "__init__.py"):
            if candidate.is_file():
                return candidate.resolve()
    return None


# --- the code files of a directory, and noticing that they changed ---------------------------------


def code_files(directory: str | Path) -> list[Path]:
    """The files a class loaded from `directory` may run: every *.py file in it and in its
    packages (subdirectories with an __init__.py, at any depth), sorted.  Hidden entries and
    __pycache__ are skipped; other subdirectories (a virtualenv, data) are not code of ours."""
    found: list[Path] = []
    seen: set[Path] = set()
    pending = [Path(directory)]
    while pending:
        current = pending.pop()
        try:
            real = current.resolve()
            entries = list(current.iterdir())
        except OSError:
            continue
        if real in seen:  # a symlinked package pointing back up must not loop
            continue
        seen.add(real)
        for entry in entries:
            if entry.name.startswith(".") or entry.name == "__pycache__":
                continue
            if entry.suffix == ".py" and entry.is_file():
                found.append(entry)
            elif entry.is_dir() and (entry / "__init__.py").is_file():
                pending.append(entry)
    return sorted(found)


def _content_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def code_digests(directory: str | Path) -> dict[Path, str]:
    """Each of `code_files(directory)` -> a digest of its content (unreadable files are left
    out).  Contents, not modification times: a `touch`, or an editor saving the same text,
    changes nothing."""
    digests: dict[Path, str] = {}
    for path in code_files(directory):
        try:
            digests[path] = _content_digest(path)
        except OSError:
            continue
    return digests


# directory -> the digests of its code files when a class was last loaded from it
_DIRECTORY_CODE: dict[Path, dict[Path, str]] = {}


def _forget_changed_code(dirs: list[Path]) -> None:
    """Drop every module loaded from a directory whose code changed since we last loaded from
    it, so the imports that follow run the files as they are now."""
    for directory in dirs:
        current = code_digests(directory)
        previous = _DIRECTORY_CODE.get(directory)
        _DIRECTORY_CODE[directory] = current
        if previous is None or previous == current:
            continue
        changed = set(previous) | set(current)
        # Modules know their file by the path they were found at, or by its resolved form.
        stale = changed | {path.resolve() for path in changed}
        for path in stale:
            _FILE_MODULES.pop(path, None)
            if previous.get(path) != current.get(path):
                # Bytecode is trusted by the source's mtime (in seconds) and size: an edit within
                # the same second that keeps the size would otherwise run the old code.
                with contextlib.suppress(OSError, ValueError, NotImplementedError):
                    Path(importlib.util.cache_from_source(str(path))).unlink(missing_ok=True)
        for name, module in list(sys.modules.items()):
            file = getattr(module, "__file__", None)
            if file and not name.startswith("seldon_serving") and Path(file) in stale:
                del sys.modules[name]  # modules still referenced by running graphs live on there


# --- loading a user file under a name unique to its path ------------------------------------------

# path -> (digest of the content it was executed from, module)
_FILE_MODULES: dict[Path, tuple[str, ModuleType]] = {}


def _unique_name(path: Path, module_name: str) -> str:
    digest = hashlib.sha1(str(path).encode()).hexdigest()[:12]
    return f"seldon_user_{digest}_{module_name}"


class _SourceLoader(importlib.machinery.SourceFileLoader):
    """Compiles the file itself, never a cached .pyc: the file's current text is what runs."""

    def get_code(self, fullname: str) -> CodeType:
        path = self.get_filename(fullname)
        return self.source_to_code(self.get_data(path), path)


def _load_file(path: Path, module_name: str) -> ModuleType:
    """The module in `path`, executed once per version of the file's content."""
    try:
        digest = _content_digest(path)
    except OSError as exc:
        raise ComponentLoadError(f"cannot read module '{module_name}' ({path}): {_describe(exc)}") from exc
    cached = _FILE_MODULES.get(path)
    if cached is not None and cached[0] == digest:
        return cached[1]
    unique = _unique_name(path, module_name)
    is_package = path.name == "__init__.py"
    spec = importlib.util.spec_from_file_location(
        unique,
        path,
        loader=_SourceLoader(unique, str(path)),
        submodule_search_locations=[str(path.parent)] if is_package else None,
    )
    if spec is None or spec.loader is None:
        raise ComponentLoadError(f"cannot load module '{module_name}' from {path}")
    module = importlib.util.module_from_spec(spec)
    # Registered (under its own name) for the duration of the import and after: dataclasses,
    # pickle and typing look a class's module up in sys.modules.
    sys.modules[unique] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:  # SyntaxError, the module's own errors at import time, ...
        sys.modules.pop(unique, None)
        raise ComponentLoadError(f"importing module '{module_name}' failed: {_describe(exc)}") from exc
    _FILE_MODULES[path] = (digest, module)
    return module


# --- importing an installed (or dotted) module --------------------------------------------------

_LOADED_MTIME: dict[str, float] = {}


def _changed_on_disk(module: ModuleType) -> bool:
    """Whether a user module's file changed since we last imported it (installed packages never
    count: only files we load from the user's directories are tracked by their mtime)."""
    path = getattr(module, "__file__", None)
    if not path or "site-packages" in path:
        return False
    try:
        mtime = os.stat(path).st_mtime
    except OSError:
        return False
    seen = _LOADED_MTIME.get(module.__name__)
    _LOADED_MTIME[module.__name__] = mtime
    return seen is not None and seen != mtime


def _is_missing_module(exc: ModuleNotFoundError, module_name: str) -> bool:
    """True when the module itself (or a parent package) is absent, not one of its imports."""
    missing = exc.name or ""
    return missing == module_name or module_name.startswith(missing + ".")


def _expected_file(dirs: list[Path], module_name: str) -> Path | None:
    """Where `pkg.module` would be found in `dirs`, if it is there at all."""
    parts = module_name.split(".")
    for directory in dirs:
        base = directory.joinpath(*parts)
        for candidate in (base.with_suffix(".py"), base / "__init__.py"):
            if candidate.is_file():
                return candidate.resolve()
    return None


def _import(module_name: str, dirs: list[Path]) -> ModuleType | None:
    """The module, or None when it does not exist; a module that fails while importing raises."""
    if "." not in module_name:
        path = _file_in(dirs, module_name)
        if path is not None:
            return _load_file(path, module_name)
    try:
        module = importlib.import_module(module_name)
        if _changed_on_disk(module):
            # A re-applied deployment must run the edited file, not the copy imported before.
            module = importlib.reload(module)
    except ModuleNotFoundError as exc:
        if _is_missing_module(exc, module_name):
            return None
        raise ComponentLoadError(f"importing module '{module_name}' failed: {_describe(exc)}") from exc
    except Exception as exc:  # SyntaxError, the module's own errors at import time, ...
        raise ComponentLoadError(f"importing module '{module_name}' failed: {_describe(exc)}") from exc
    expected = _expected_file(dirs, module_name)
    loaded = getattr(module, "__file__", None)
    if expected is not None and loaded is not None and Path(loaded).resolve() != expected:
        # A package module is shared by the whole process: one dotted name, one file.
        raise ComponentLoadError(
            f"module '{module_name}' is already loaded from {loaded}, so {expected} cannot be used: "
            "give the module another name, or run the node in its own process"
        )
    return module


def _class_in(module: ModuleType, class_name: str, shown_as: str) -> type:
    found = getattr(module, class_name, None)
    where = getattr(module, "__file__", None) or shown_as
    if found is None:
        raise ComponentLoadError(f"module '{shown_as}' ({where}) has no class '{class_name}'")
    if not inspect.isclass(found):
        raise ComponentLoadError(f"'{shown_as}.{class_name}' is a {type(found).__name__}, not a class")
    return found


def load_user_class(interface_name: str, search_dirs: Sequence[str | Path] | None = None) -> type:
    """The class named by `interface_name`; `search_dirs` (default: the working directory) go on sys.path.

    Raises ComponentLoadError with a one-sentence reason (the module's own exception message,
    never a traceback) when the module or class is missing or the import fails.
    """
    name = _split(interface_name)
    dirs = _search_dirs(search_dirs)
    _add_to_path(dirs)
    _forget_changed_code(dirs)
    seldon_core_api.install()  # classes written against seldon-core import its API
    importlib.invalidate_caches()  # files written after start-up (tests, notebooks) must be seen
    looked_in = ", ".join(str(d) for d in dirs)

    module_name, _, class_name = name.rpartition(".")
    if not module_name:  # "MyModel": the class of that name in module MyModel
        module = _import(name, dirs)
        if module is None:
            raise ComponentLoadError(f"no module named '{name}' (looked in {looked_in})")
        return _class_in(module, name, name)

    module = _import(module_name, dirs)
    if module is not None:
        found = getattr(module, class_name, None)
        if found is not None and not inspect.ismodule(found):
            return _class_in(module, class_name, module_name)
    # "pkg.MyModel" naming a module that holds class MyModel.
    submodule = _import(name, dirs)
    if submodule is not None:
        return _class_in(submodule, class_name, name)
    if module is None:
        raise ComponentLoadError(f"no module named '{module_name}' (looked in {looked_in})")
    return _class_in(module, class_name, module_name)


# --- checking without running any of the user's code ----------------------------------------------


def _defines(source: str, class_name: str) -> bool:
    """Whether a module's top level defines (or imports) `class_name`, read without running it."""
    tree = ast.parse(source)
    pending: list[ast.stmt] = list(tree.body)
    while pending:
        node = pending.pop()
        if (
            isinstance(node, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
            and node.name == class_name
        ):
            return True
        if isinstance(node, ast.Import | ast.ImportFrom):
            for alias in node.names:
                if alias.name == "*" or (alias.asname or alias.name.split(".")[0]) == class_name:
                    return True
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(isinstance(t, ast.Name) and t.id == class_name for t in targets):
                return True
        elif isinstance(node, ast.If | ast.Try | ast.With):
            for block in ("body", "orelse", "finalbody", "handlers"):
                for item in getattr(node, block, []):
                    pending.extend(item.body if isinstance(item, ast.ExceptHandler) else [item])
    return False


def _module_file(module_name: str, dirs: list[Path]) -> tuple[bool, Path | None]:
    """(exists, its source file when we can read one) for a module, without importing it."""
    found = _expected_file(dirs, module_name)
    if found is not None:
        return True, found
    try:
        spec = importlib.util.find_spec(module_name)
    except (ImportError, ValueError):  # a parent package is missing or broken
        return False, None
    if spec is None:
        return False, None
    origin = spec.origin
    return True, Path(origin) if origin and origin.endswith(".py") else None


def find_user_class(interface_name: str, search_dirs: Sequence[str | Path] | None = None) -> str | None:
    """Why `interface_name` cannot be loaded, found by reading files only (no user code runs),
    or None when its module is there and appears to define the class."""
    try:
        name = _split(interface_name)
    except ComponentLoadError as exc:
        return str(exc)
    dirs = _search_dirs(search_dirs)
    module_name, _, class_name = name.rpartition(".")
    # "MyModel" is class MyModel of module MyModel; "a.b.C" is class C of a.b, or of a.b.C.
    candidates = [(name, name)] if not module_name else [(module_name, class_name), (name, class_name)]
    problems: list[str] = []
    for module, cls in candidates:
        exists, source = _module_file(module, dirs)
        if not exists:
            continue
        if source is None:
            return None  # a compiled or namespace module: only importing it would tell
        try:
            if _defines(source.read_text(encoding="utf-8"), cls):
                return None
        except (OSError, UnicodeDecodeError, SyntaxError, ValueError) as exc:
            return f"module '{module}' ({source}) cannot be read: {_describe(exc)}"
        problems.append(f"module '{module}' ({source}) has no class '{cls}'")
    if problems:
        return problems[0]
    looked_in = ", ".join(str(d) for d in dirs)
    return f"no module named '{module_name or name}' (looked in {looked_in})"


# --- building the object -----------------------------------------------------------------------


def takes_state(user_class: type) -> bool:
    """Whether `user_class(...)` accepts a `state=` keyword (the built-in routers and detectors)."""
    try:
        parameters = inspect.signature(user_class).parameters
    except (TypeError, ValueError):
        return False
    param = parameters.get("state")
    return param is not None and param.kind in (param.POSITIONAL_OR_KEYWORD, param.KEYWORD_ONLY)


def instantiate(user_class: type, parameters: Mapping[str, Any] | None = None, state: Any = None) -> Any:
    """`user_class(**parameters)` (plus `state=state` when given and the class takes it), with a
    constructor failure turned into a ComponentLoadError."""
    kwargs = dict(parameters or {})
    if state is not None and takes_state(user_class):
        kwargs["state"] = state
    try:
        return user_class(**kwargs)
    except ServingError:
        raise  # already one sentence (a built-in's parameter error names its parameter)
    except Exception as exc:
        raise ComponentLoadError(
            f"creating {user_class.__name__}({', '.join(kwargs)}) failed: {_describe(exc)}"
        ) from exc
