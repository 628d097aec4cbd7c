"""Fixtures for the state store tests: one store per backend, and a real redis-server."""

from __future__ import annotations

import importlib.util
import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from seldon_serving.state import MemoryStore, SqliteStore, StateStore

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
HAVE_REDIS = os.access(REDIS_SERVER, os.X_OK) and importlib.util.find_spec("redis") is not None
BACKENDS = ["memory", "sqlite", "redis"]

# A store factory: same arguments -> same underlying data (a "reopen").
StoreFactory = Callable[..., StateStore]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start_redis(workdir: Path) -> tuple[subprocess.Popen[bytes], str]:
    import redis

    for _ in range(3):  # the free port may be taken between probing and binding
        port = _free_port()
        proc = subprocess.Popen(
            [REDIS_SERVER, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(workdir), "--loglevel", "warning"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        url = f"redis://127.0.0.1:{port}/0"
        client = redis.Redis.from_url(url)
        deadline = time.monotonic() + 5
        while proc.poll() is None and time.monotonic() < deadline:
            try:
                client.ping()
                client.close()
                return proc, url
            except redis.ConnectionError:
                time.sleep(0.02)
        client.close()
        _stop(proc)
    raise RuntimeError("redis-server did not start")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if not HAVE_REDIS:
        pytest.skip("needs /usr/bin/redis-server and the redis package (extra 'redis')")
    proc, url = _start_redis(tmp_path_factory.mktemp("redis"))
    try:
        yield url
    finally:
        _stop(proc)


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
