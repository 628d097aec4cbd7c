"""Finding the user's class from Seldon's `<InterfaceName>` argument and instantiating it.

Accepted names (as `seldon-core-microservice`): `MyModel` (class MyModel in MyModel.py) and
`pkg.module.Class`.  Also `pkg.MyModel` where pkg/MyModel.py defines class MyModel, which
Seldon itself mishandles (it would pick the submodule instead of the class).
"""

from __future__ import annotations

import importlib
import inspect
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

__all__ = ["ComponentLoadError", "instantiate", "load_user_class"]


class ComponentLoadError(Exception):
    """The user's component could not be found, imported or constructed (a start-up error)."""


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _add_search_dirs(search_dirs: list[str | Path] | None) -> list[str]:
    dirs = [os.getcwd()] if search_dirs is None else [str(Path(d).resolve()) for d in search_dirs]
    for directory in dirs:
        # Appended, like Seldon: the user's files must not shadow the stdlib or installed packages.
        if directory not in sys.path:
            sys.path.append(directory)
    return dirs


def _is_missing_module(exc: ModuleNotFoundError, module_name: str) -> bool:
    """True when the module itself (or a parent package) is absent, not one of its imports."""
    missing = exc.name or ""
    return missing == module_name or module_name.startswith(missing + ".")


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


def _import(module_name: str) -> ModuleType | None:
    """The module, or None when it does not exist; a module that fails while importing raises."""
    try:
        module = importlib.import_module(module_name)
        if _changed_on_disk(module):
            # A re-applied deployment must run the edited file, not the copy imported before.
            module = importlib.reload(module)
        return module
    except ModuleNotFoundError as exc:
        if _is_missing_module(exc, module_name):
            return None
        raise ComponentLoadError(f"importing module '{module_name}' failed: {_describe(exc)}") from exc
    except Exception as exc:  # SyntaxError, the module's own errors at import time, ...
        raise ComponentLoadError(f"importing module '{module_name}' failed: {_describe(exc)}") from exc


def _class_in(module: ModuleType, class_name: str) -> type:
    found = getattr(module, class_name, None)
    where = getattr(module, "__file__", None) or module.__name__
    if found is None:
        raise ComponentLoadError(f"module '{module.__name__}' ({where}) has no class '{class_name}'")
    if not inspect.isclass(found):
        raise ComponentLoadError(f"'{module.__name__}.{class_name}' is a {type(found).__name__}, not a class")
    return found


def load_user_class(interface_name: str, search_dirs: list[str | Path] | None = None) -> type:
    """The class named by `interface_name`; `search_dirs` (default: the working directory) go on sys.path.

    Raises ComponentLoadError with a one-sentence reason (the module's own exception message,
    never a traceback) when the module or class is missing or the import fails.
    """
    name = interface_name.strip()
    if name.endswith(".py"):  # "MyModel.py" typed for "MyModel"
        name = name[: -len(".py")]
    if not name or any(not part.isidentifier() for part in name.split(".")):
        raise ComponentLoadError(f"'{interface_name}' is not a valid module or module.Class name")
    dirs = _add_search_dirs(search_dirs)
    importlib.invalidate_caches()  # files written after start-up (tests, notebooks) must be seen

    module_name, _, class_name = name.rpartition(".")
    if not module_name:  # "MyModel": the class of that name in module MyModel
        module = _import(name)
        if module is None:
            raise ComponentLoadError(f"no module named '{name}' (looked in {', '.join(dirs)})")
        return _class_in(module, name)

    module = _import(module_name)
    if module is not None:
        found = getattr(module, class_name, None)
        if found is not None and not inspect.ismodule(found):
            return _class_in(module, class_name)
    # "pkg.MyModel" naming a module that holds class MyModel.
    submodule = _import(name)
    if submodule is not None:
        return _class_in(submodule, class_name)
    if module is None:
        raise ComponentLoadError(f"no module named '{module_name}' (looked in {', '.join(dirs)})")
    return _class_in(module, class_name)


def instantiate(user_class: type, parameters: Mapping[str, Any] | None = None) -> Any:
    """`user_class(**parameters)`, with a constructor failure turned into a ComponentLoadError."""
    try:
        return user_class(**(parameters or {}))
    except Exception as exc:
        raise ComponentLoadError(
            f"creating {user_class.__name__}(**parameters) failed: {_describe(exc)}"
        ) from exc
