"""What users notice with several worker processes: nothing lost, nothing counted twice,
acknowledged writes survive kill -9, and every process sees the others' writes.

Workers are real OS processes (tests/state/_state_worker.py, or os.fork for the fork case).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from seldon_serving.state import SqliteStore, StateStore, open_store

WORKER = Path(__file__).with_name("_state_worker.py")
NS = "workers"  # the namespace the worker writes


class Workers:
    """Starts worker processes and guarantees they are all gone at the end."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen[str]] = []

    def start(self, url: str, *args: object) -> subprocess.Popen[str]:
        proc = subprocess.Popen(
            [sys.executable, "-u", str(WORKER), url, *map(str, args)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.procs.append(proc)
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"
        return proc

    def run(self, url: str, *args: object) -> None:
        proc = self.start(url, *args)
        self.finish(proc)

    @staticmethod
    def go(*procs: subprocess.Popen[str]) -> None:
        for proc in procs:
            assert proc.stdin is not None
            proc.stdin.write("go\n")
            proc.stdin.flush()

    @staticmethod
    def finish(proc: subprocess.Popen[str]) -> None:
        # Read through proc.stdout (not communicate()): its buffer may already hold the output.
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.close()
        out = proc.stdout.read()
        assert proc.wait(timeout=60) == 0
        assert out.strip().endswith("done")

    def stop_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            for pipe in (proc.stdin, proc.stdout):
                if pipe is not None:
                    pipe.close()


@pytest.fixture
def workers() -> Iterator[Workers]:
    w = Workers()
    try:
        yield w
    finally:
        w.stop_all()


@pytest.fixture(params=["sqlite", "redis"])
def shared_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A store URL that several processes can open."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'state.db'}"  # tmp_path is absolute: four slashes
    redis_url = str(request.getfixturevalue("redis_url"))
    import redis

    client = redis.Redis.from_url(redis_url)
    client.flushdb()  # the default prefix, shared with the workers
    client.close()
    return redis_url


@pytest.fixture
def shared_store(shared_url: str) -> Iterator[StateStore]:
    store = open_store(shared_url)
    yield store
    store.close()


def test_two_processes_lose_no_update(workers: Workers, shared_url: str, shared_store: StateStore) -> None:
    a = workers.start(shared_url, "incr", "k", 500, 10)
    b = workers.start(shared_url, "incr", "k", 500, 10)
    Workers.go(a, b)  # both hammer the key at the same time
    Workers.finish(a)
    Workers.finish(b)
    assert shared_store.get(NS, "k") == 1000


def test_duplicate_feedback_counts_once_across_processes(
    workers: Workers, shared_url: str, shared_store: StateStore
) -> None:
    # Every token is delivered 2 processes x 4 threads = 8 times, concurrently.
    a = workers.start(shared_url, "once", "k", 100, 4)
    b = workers.start(shared_url, "once", "k", 100, 4)
    Workers.go(a, b)
    Workers.finish(a)
    Workers.finish(b)
    assert shared_store.get(NS, "k") == 100
    # Later redelivery by yet another process (a restarted worker): still skipped.
    c = workers.start(shared_url, "once", "k", 100, 1)
    Workers.go(c)
    Workers.finish(c)
    assert shared_store.get(NS, "k") == 100


def test_token_applied_by_this_process_is_skipped_by_another(
    workers: Workers, shared_url: str, shared_store: StateStore
) -> None:
    shared_store.update(NS, "k", lambda v: (v or 0) + 1, once="puid-0:node")
    proc = workers.start(shared_url, "once", "k", 1, 1)  # applies puid-0:node
    Workers.go(proc)
    Workers.finish(proc)
    assert shared_store.get(NS, "k") == 1


def test_writes_of_another_process_are_seen_through_the_version(
    workers: Workers, shared_url: str, shared_store: StateStore
) -> None:
    # A router caches (version, value) and re-reads only when the version moved.
    cached_version, cached = shared_store.version(NS, "k"), shared_store.get(NS, "k")
    assert (cached_version, cached) == (0, None)
    for value in ({"best": 1}, {"best": 0}, {"best": 0}):
        workers.run(shared_url, "put", "k", orjson.dumps(value).decode())
        version = shared_store.version(NS, "k")
        assert version > cached_version
        cached_version, cached = version, shared_store.get(NS, "k")
        assert cached == value
    shared_store.update(NS, "k", lambda v: {"best": 2})
    assert shared_store.version(NS, "k") > cached_version


def test_acknowledged_writes_survive_sigkill(workers: Workers, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'state.db'}"
    proc = workers.start(url, "count-forever", "k")
    assert proc.stdout is not None
    acked = 0
    while acked < 200:
        acked = int(proc.stdout.readline())
    proc.send_signal(signal.SIGKILL)  # mid-stream: possibly inside a transaction
    rest = proc.stdout.read()  # the lines already printed are acknowledged writes too
    assert proc.wait(timeout=10) == -signal.SIGKILL
    acked = max([acked, *map(int, rest.split())])
    with SqliteStore(tmp_path / "state.db") as reopened:
        stored = reopened.get(NS, "k")
        # Every acknowledged write is there; at most one more committed but not yet printed.
        assert stored in (acked, acked + 1)
        assert reopened.update(NS, "k", lambda v: v + 1) == stored + 1


def test_sqlite_store_is_safe_across_fork(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "state.db")
    store.put(NS, "k", 0)  # the parent has an open connection before forking
    pid = os.fork()
    if pid == 0:  # child: must open its own connection, never reuse the parent's
        code = 1
        try:
            for _ in range(100):
                store.update(NS, "k", lambda v: v + 1)
            code = 0
        finally:
            os._exit(code)
    for _ in range(100):
        store.update(NS, "k", lambda v: v + 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert store.get(NS, "k") == 200
    store.close()


def _open_together(path: str, start: Any, index: int) -> None:
    start.wait(10)
    store = SqliteStore(path)
    store.put("race", f"k{index}", index)
    store.close()


def test_many_processes_can_create_one_new_store_at_once(tmp_path: Path) -> None:
    # Two workers opening a fresh state file at the same moment once failed with
    # "database is locked" while switching the file to WAL.
    import multiprocessing

    context = multiprocessing.get_context("fork")
    start = context.Event()
    path = str(tmp_path / "fresh.db")
    processes = [context.Process(target=_open_together, args=(path, start, i)) for i in range(8)]
    for process in processes:
        process.start()
    start.set()
    for process in processes:
        process.join(60)
    assert [p.exitcode for p in processes] == [0] * 8
    assert len(SqliteStore(path).items("race")) == 8
