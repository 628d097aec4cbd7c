"""open_store's URL forms, and the SQLite and Redis specifics that the shared contract does not cover."""

from __future__ import annotations

import sqlite3
import sys
import threading
import time
from pathlib import Path

import pytest

from seldon_serving.state import MemoryStore, SqliteStore, open_store

NS = "routers"


@pytest.mark.parametrize("target", [None, "", "memory", "memory://"])
def test_open_memory(target: str | None) -> None:
    assert isinstance(open_store(target), MemoryStore)


def test_open_sqlite_forms(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    cases = {
        "sqlite:///relative.db": tmp_path / "relative.db",  # three slashes: relative (SQLAlchemy)
        f"sqlite:///{tmp_path}/absolute.db": tmp_path / "absolute.db",  # four slashes: absolute
        str(tmp_path / "plain.db"): tmp_path / "plain.db",
        "nested/dirs/created.db": tmp_path / "nested/dirs/created.db",
    }
    for target, path in cases.items():
        store = open_store(target)
        assert isinstance(store, SqliteStore)
        assert store.path == str(path)
        store.put(NS, "k", 1)
        store.close()
        assert path.exists()
    with open_store(tmp_path / "pathlike.db") as store:  # type: ignore[attr-defined]
        assert isinstance(store, SqliteStore)


@pytest.mark.parametrize("target", ["sqlite://", "sqlite:///", "sqlite://relative.db", "postgres://x/y"])
def test_open_refuses_malformed_targets(target: str) -> None:
    with pytest.raises(ValueError):
        open_store(target)


def test_open_redis(redis_url: str) -> None:
    from seldon_serving.state import RedisStore

    store = open_store(redis_url)
    assert isinstance(store, RedisStore)
    store.close()


def test_redis_without_the_package_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "redis", None)  # makes `import redis` fail
    with pytest.raises(ImportError, match=r"seldon-serving\[redis\]"):
        open_store("redis://127.0.0.1:1/0")


def test_sqlite_settings(tmp_path: Path) -> None:
    with SqliteStore(tmp_path / "a.db") as store:
        conn = store._conn()
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
        assert conn.execute("PRAGMA busy_timeout").fetchone()[0] == 30_000
    with SqliteStore(tmp_path / "b.db", synchronous="FULL", busy_timeout=2) as store:
        conn = store._conn()
        assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
        assert conn.execute("PRAGMA busy_timeout").fetchone()[0] == 2000
    with pytest.raises(ValueError):
        SqliteStore(tmp_path / "c.db", synchronous="OFF")  # type: ignore[arg-type]


def test_sqlite_refuses_a_newer_schema(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "new.db")
    conn.execute("PRAGMA user_version = 99")
    conn.close()
    with pytest.raises(RuntimeError, match="newer"):
        SqliteStore(tmp_path / "new.db")


def test_sqlite_closed_store_is_unusable(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "s.db")
    store.put(NS, "k", 1)
    store.close()
    store.close()  # idempotent
    with pytest.raises(RuntimeError, match="closed"):
        store.get(NS, "k")


def test_sqlite_waits_for_a_writer_of_another_connection(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "s.db", busy_timeout=5)
    other = sqlite3.connect(tmp_path / "s.db", isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")  # another process holds the write lock for a while
    other.execute("UPDATE seq SET n = n + 1000")
    timer = threading.Timer(0.2, lambda: other.execute("COMMIT"))
    timer.start()
    try:
        assert store.get(NS, "k") is None  # readers are never blocked by the writer
        started = time.monotonic()
        store.put(NS, "k", 1)  # blocked until the other commits, then goes through
        assert time.monotonic() - started >= 0.15
        assert store.version(NS, "k") > 1000
    finally:
        timer.join()
        other.close()
        store.close()


def test_sqlite_prunes_old_tokens(tmp_path: Path) -> None:
    with SqliteStore(tmp_path / "s.db", once_limit=500) as store:
        for i in range(1500):
            store.update(NS, "k", lambda v: (v or 0) + 1, once=f"t{i}")
        kept = store._conn().execute("SELECT count(*) FROM once").fetchone()[0]
        assert 500 <= kept <= 505  # the newest once_limit, plus at most one batch (1%)
        assert store.update(NS, "k", lambda v: v + 1, once="t1000") == 1500  # recent: remembered
        assert store.update(NS, "k", lambda v: v + 1, once="t0") == 1501  # old: forgotten


def test_sqlite_version_is_cheap(tmp_path: Path) -> None:
    """version() runs on routers' request path; typically ~8 us (one indexed SELECT)."""
    with SqliteStore(tmp_path / "s.db") as store:
        store.put(NS, "dep/router", {"tries": [0.0] * 10})
        n = 5000
        started = time.perf_counter()
        for _ in range(n):
            store.version(NS, "dep/router")
        per_call = (time.perf_counter() - started) / n
        assert per_call < 200e-6, f"{per_call * 1e6:.1f} us per version()"


def test_sqlite_connections_of_finished_threads_are_closed(tmp_path: Path) -> None:
    with SqliteStore(tmp_path / "s.db") as store:
        store.put(NS, "k", 1)
        opened: list[sqlite3.Connection] = []
        for _ in range(30):  # a server that starts a thread per request
            t = threading.Thread(target=lambda: opened.append(store._conn()) or store.get(NS, "k"))
            t.start()
            t.join()
        assert store._process is not None
        assert len(store._process.connections) <= 2  # this thread's and the last thread's
        with pytest.raises(sqlite3.ProgrammingError):
            opened[0].execute("SELECT 1")  # closed, not left to the garbage collector


def test_redis_update_retries_when_another_process_wrote_meanwhile(redis_url: str) -> None:
    from seldon_serving.state import RedisStore

    prefix = f"retry-{time.monotonic_ns()}"
    with RedisStore(redis_url, prefix=prefix) as store, RedisStore(redis_url, prefix=prefix) as other:
        store.put(NS, "k", 0)
        seen: list[int] = []

        def fn(value: int) -> int:
            seen.append(value)
            if len(seen) == 1:  # another writer gets in between our read and our commit
                other.update(NS, "k", lambda v: v + 10, once="theirs")
            return value + 1

        assert store.update(NS, "k", fn, once="ours") == 11
        assert seen == [0, 10]  # recomputed from the other writer's value, not lost
        assert store.update(NS, "k", fn, once="theirs") == 11
