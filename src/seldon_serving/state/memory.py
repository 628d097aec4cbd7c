"""In-process state store: the default for a standalone microservice and for tests.

Nothing survives the process and nothing is shared with other processes; use
`SqliteStore` (or Redis) when several workers serve one node or state must
outlive a restart.
"""

from __future__ import annotations

import threading

from ._codec import decode, encode
from .base import JSON, Updater

DEFAULT_ONCE_LIMIT = 100_000


class MemoryStore:
    """A thread-safe dict of encoded values with the same semantics as the durable backends."""

    def __init__(self, *, once_limit: int = DEFAULT_ONCE_LIMIT) -> None:
        if once_limit < 1:
            raise ValueError("once_limit must be >= 1")
        self._once_limit = once_limit
        # RLock: an updater that reads the store (e.g. another key) must not deadlock.
        self._lock = threading.RLock()
        self._data: dict[str, dict[str, tuple[bytes, int]]] = {}
        # Applied `once` tokens per (namespace, key), in insertion order so the
        # oldest are pruned first (dicts keep insertion order).
        self._tokens: dict[tuple[str, str], dict[str, None]] = {}
        # One sequence for the whole store: a key deleted then written again never
        # gets back a version a reader may have cached.
        self._seq = 0

    def get(self, namespace: str, key: str) -> JSON | None:
        with self._lock:
            entry = self._data.get(namespace, {}).get(key)
        return None if entry is None else decode(entry[0])

    def put(self, namespace: str, key: str, value: JSON) -> None:
        data = encode(value)
        with self._lock:
            self._write(namespace, key, data)

    def delete(self, namespace: str, key: str) -> bool:
        with self._lock:
            self._tokens.pop((namespace, key), None)
            keys = self._data.get(namespace)
            if keys is None or key not in keys:
                return False
            del keys[key]
            if not keys:
                del self._data[namespace]
            return True

    def items(self, namespace: str) -> dict[str, JSON]:
        with self._lock:
            snapshot = dict(self._data.get(namespace, {}))
        return {key: decode(data) for key, (data, _) in snapshot.items()}

    def update(self, namespace: str, key: str, fn: Updater, *, once: str | None = None) -> JSON:
        with self._lock:
            entry = self._data.get(namespace, {}).get(key)
            current = None if entry is None else decode(entry[0])
            tokens = self._tokens.get((namespace, key))
            if once is not None and tokens is not None and once in tokens:
                return current
            data = encode(fn(current))
            self._write(namespace, key, data)
            if once is not None:
                tokens = self._tokens.setdefault((namespace, key), {})
                tokens[once] = None
                if len(tokens) > self._once_limit:
                    del tokens[next(iter(tokens))]
        return decode(data)

    def version(self, namespace: str, key: str) -> int:
        with self._lock:
            entry = self._data.get(namespace, {}).get(key)
        return 0 if entry is None else entry[1]

    def close(self) -> None:
        """Nothing to release; the data stays readable (the store is only garbage)."""

    def _write(self, namespace: str, key: str, data: bytes) -> None:
        # Caller holds the lock.
        self._seq += 1
        self._data.setdefault(namespace, {})[key] = (data, self._seq)
