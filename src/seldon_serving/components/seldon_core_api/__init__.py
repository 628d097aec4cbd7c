"""The part of seldon-core's Python API that user code calls, for classes written against it
(`from seldon_core.user_model import SeldonComponent, SeldonResponse`, Seldon's custom-metrics
example, gRPC hooks using `seldon_core.utils` and `seldon_core.proto`).

`install()` makes `import seldon_core` find the package below only when the real seldon-core
is not installed: the finder is consulted after every other one, so a real `seldon_core`
always wins and users never get two.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

_HERE = str(Path(__file__).resolve().parent)


class _Fallback(importlib.abc.MetaPathFinder):
    """Finds `seldon_core` here, last; its submodules follow from the package's own path."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None = None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != "seldon_core":
            return None
        return importlib.machinery.PathFinder.find_spec(fullname, [_HERE])


def install() -> None:
    """Let user code import `seldon_core` (ours, unless the real one is installed); idempotent."""
    if not any(isinstance(finder, _Fallback) for finder in sys.meta_path):
        sys.meta_path.append(_Fallback())
