"""Fixtures for the state store tests: one store per backend, and a real redis-server."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from seldon_serving.state import MemoryStore, SqliteStore, StateStore

BACKENDS = ["memory", "sqlite", "redis"]

# A store factory: same arguments -> same underlying data (a "reopen").
StoreFactory = Callable[..., StateStore]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def make_store(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[StoreFactory]:
    """Opens stores of the current backend; every store it opened is closed at the end."""
    opened: list[StateStore] = []
    prefix = f"test-{uuid.uuid4().hex}"  # Redis: a fresh keyspace per test
    memory: dict[tuple[tuple[str, Any], ...], MemoryStore] = {}

    def make(**kwargs: Any) -> StateStore:
        store: StateStore
        if backend == "memory":
            # A memory store cannot be reopened: the same arguments give the same object.
            key = tuple(sorted(kwargs.items()))
            store = memory.setdefault(key, MemoryStore(**kwargs))
        elif backend == "sqlite":
            store = SqliteStore(tmp_path / "state.db", **kwargs)
        else:
            from seldon_serving.state.redis import RedisStore

            url = request.getfixturevalue("redis_url")
            store = RedisStore(url, prefix=prefix, **kwargs)
        opened.append(store)
        return store

    yield make
    for store in opened:
        store.close()


@pytest.fixture
def store(make_store: StoreFactory) -> StateStore:
    return make_store()
