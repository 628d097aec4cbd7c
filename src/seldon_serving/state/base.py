"""The state store interface: deployments, router/detector state and OAuth tokens.

Values are JSON-shaped (dict/list/str/float/int/bool/None).  Every backend
(SQLite default, in-memory for single-process use and tests, Redis optional)
gives the same guarantees:

- `update` is an atomic read-modify-write across threads AND processes, so two
  workers serving one router never lose or double count a feedback;
- a write that returned is durable (it survives a crash of the process);
- `update(..., once=token)` applies `fn` at most once per (namespace, key, token):
  a feedback delivered twice for the same (puid, node) is counted once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

JSON = Any
Updater = Callable[[JSON | None], JSON]


@runtime_checkable
class StateStore(Protocol):
    def get(self, namespace: str, key: str) -> JSON | None:
        """The stored value, or None."""
        ...

    def put(self, namespace: str, key: str, value: JSON) -> None: ...

    def delete(self, namespace: str, key: str) -> bool:
        """Remove a key; True if it existed."""
        ...

    def items(self, namespace: str) -> dict[str, JSON]:
        """Every key of a namespace with its value."""
        ...

    def update(self, namespace: str, key: str, fn: Updater, *, once: str | None = None) -> JSON:
        """Atomically store fn(current) and return it.

        With `once`, a token already applied to this key is skipped and the
        current value is returned unchanged.
        """
        ...

    def version(self, namespace: str, key: str) -> int:
        """A number that grows with every write of the key (0 if absent): lets readers
        cache a value and re-read it only when another process changed it."""
        ...

    def close(self) -> None: ...


class StateHandle:
    """One key of a store, handed to a component that keeps state (a router, a detector)."""

    __slots__ = ("key", "namespace", "store")

    def __init__(self, store: StateStore, namespace: str, key: str) -> None:
        self.store = store
        self.namespace = namespace
        self.key = key

    def get(self) -> JSON | None:
        return self.store.get(self.namespace, self.key)

    def put(self, value: JSON) -> None:
        self.store.put(self.namespace, self.key, value)

    def update(self, fn: Updater, *, once: str | None = None) -> JSON:
        return self.store.update(self.namespace, self.key, fn, once=once)

    def version(self) -> int:
        return self.store.version(self.namespace, self.key)
