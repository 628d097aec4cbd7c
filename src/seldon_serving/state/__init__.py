"""State stores: router/detector state and OAuth tokens that survive restarts and are
shared by every worker process serving a node.

`open_store` picks the backend from one string, as given on a command line or
in an environment variable.
"""

from __future__ import annotations

import os

from seldon_serving.protocol.errors import ServingError

from .base import JSON, StateHandle, StateStore, Updater
from .memory import MemoryStore
from .sqlite import SqliteStore

__all__ = [
    "JSON",
    "MemoryStore",
    "RedisStore",
    "SqliteStore",
    "StateHandle",
    "StateStore",
    "StateStoreError",
    "Updater",
    "open_store",
]

_REDIS_SCHEMES = ("redis://", "rediss://", "unix://")


class StateStoreError(ServingError, ValueError):
    """A state store named by a string we cannot read."""


def open_store(url_or_path: str | os.PathLike[str] | None) -> StateStore:
    """Open the store named by `url_or_path`.

    - None, "", "memory" or "memory://": a `MemoryStore` (this process only);
    - "sqlite:///relative/path.db", "sqlite:////absolute/path.db" (SQLAlchemy's
      convention) or any plain filesystem path: a `SqliteStore`;
    - "redis://…", "rediss://…", "unix://…": a `RedisStore` (needs the `redis` extra).
    """
    if url_or_path is None:
        return MemoryStore()
    target = os.fspath(url_or_path)
    if target in ("", "memory", "memory://"):
        return MemoryStore()
    if target.startswith("sqlite://"):
        path = target.removeprefix("sqlite://")
        if not path.startswith("/") or path == "/":
            raise StateStoreError(f"expected sqlite:///<path> (three slashes, then the path), got {target!r}")
        return SqliteStore(path[1:])
    if target.startswith(_REDIS_SCHEMES):
        from .redis import RedisStore  # lazy: the redis package is optional

        return RedisStore(target)
    if "://" in target:
        raise StateStoreError(
            f"unknown state store {target!r}: use memory, sqlite:///<path>, a path, or redis://"
        )
    return SqliteStore(target)


def __getattr__(name: str) -> object:
    # `from seldon_serving.state import RedisStore` works without importing redis up front.
    if name == "RedisStore":
        from .redis import RedisStore

        return RedisStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
