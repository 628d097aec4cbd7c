"""SQLite state store: the default durable backend, shared by every worker process on one host.

Design (why each choice):
- WAL journal: readers never block the writer nor each other, so `get`/`version` on
  the request path stay fast while feedback is being written.
- synchronous=NORMAL by default: in WAL mode a COMMIT has handed the frames to
  the kernel (write(2) on the -wal file) before it returns, so the data sits in
  the page cache and survives a kill -9 of the process; only an OS crash or a
  power loss can drop the last transactions.  synchronous="FULL" adds an fsync
  per commit for those (several times slower writes).
- `update` runs BEGIN IMMEDIATE (take the write lock first) -> read -> fn ->
  write -> COMMIT, so two processes can never interleave a read-modify-write.
  Threads of one process first queue on a Python lock: a hand-off between
  threads is far quicker than SQLite's sleeping busy handler.
- One connection per (process, thread), opened lazily: a connection must never
  be used on both sides of a fork, so a pid change opens fresh connections.  The
  inherited ones are kept referenced and never closed in the child: closing them
  would run SQLite's unlock code on the file while the child's own connections
  hold POSIX locks on it (those are per process, and the bookkeeping is shared).
- Versions come from one store-wide sequence, so a key deleted and written
  again never returns to a version a reader may have cached.
- `once` tokens: the newest `once_limit` tokens of each key are remembered (up
  to 1% more, because pruning runs in batches); older ones are forgotten.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from typing import Literal

from ._codec import decode, encode
from .base import JSON, Updater

DEFAULT_ONCE_LIMIT = 100_000
_SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS kv (
    ns TEXT NOT NULL,
    key TEXT NOT NULL,
    version INTEGER NOT NULL,     -- before value: reading it never touches overflow pages
    ntok INTEGER NOT NULL DEFAULT 0,  -- tokens applied so far: ordinal of the next `once` row
    value BLOB NOT NULL,
    PRIMARY KEY (ns, key)
);
CREATE TABLE IF NOT EXISTS seq (id INTEGER PRIMARY KEY CHECK (id = 0), n INTEGER NOT NULL);
INSERT OR IGNORE INTO seq (id, n) VALUES (0, 0);
CREATE TABLE IF NOT EXISTS once (
    ns TEXT NOT NULL,
    key TEXT NOT NULL,
    token TEXT NOT NULL,
    n INTEGER NOT NULL,
    PRIMARY KEY (ns, key, token)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS once_by_age ON once (ns, key, n);
"""

_GET = "SELECT value FROM kv WHERE ns = ? AND key = ?"
_VERSION = "SELECT version FROM kv WHERE ns = ? AND key = ?"
_ITEMS = "SELECT key, value FROM kv WHERE ns = ?"
_READ_FOR_UPDATE = "SELECT value, ntok FROM kv WHERE ns = ? AND key = ?"
_HAS_TOKEN = "SELECT 1 FROM once WHERE ns = ? AND key = ? AND token = ?"
_NEXT_VERSION = "UPDATE seq SET n = n + 1 WHERE id = 0 RETURNING n"
_UPSERT = """
INSERT INTO kv (ns, key, version, ntok, value) VALUES (?, ?, ?, ?, ?)
ON CONFLICT (ns, key) DO UPDATE SET version = excluded.version, ntok = excluded.ntok, value = excluded.value
"""
_PUT = """
INSERT INTO kv (ns, key, version, value) VALUES (?, ?, ?, ?)
ON CONFLICT (ns, key) DO UPDATE SET version = excluded.version, value = excluded.value
"""
_ADD_TOKEN = "INSERT INTO once (ns, key, token, n) VALUES (?, ?, ?, ?)"
_PRUNE_TOKENS = "DELETE FROM once WHERE ns = ? AND key = ? AND n <= ?"
_DELETE = "DELETE FROM kv WHERE ns = ? AND key = ?"
_DELETE_TOKENS = "DELETE FROM once WHERE ns = ? AND key = ?"

# Guards the creation of per-process state.  Re-created in a forked child: a
# lock held by another parent thread at fork time would stay held forever.
_guard = threading.Lock()


def _reset_guard() -> None:
    global _guard
    _guard = threading.Lock()


os.register_at_fork(after_in_child=_reset_guard)

# Connections inherited through fork: kept alive so their finalizers never run
# in the child (closing them there could touch state owned by the parent).
_inherited: list[object] = []


class _ProcessState:
    """What one process owns for one store: its connections and its writer lock."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.write_lock = threading.Lock()
        self.threads = threading.local()  # the fast path: this thread's connection
        # Strong references by owner thread: close() reaches every connection, and
        # connections of finished threads are closed by the next open (a server
        # starting a thread per request must not pile up open files).  Closing is
        # explicit, never left to the garbage collector, which could otherwise do
        # it in a forked child.
        self.connections: dict[threading.Thread, sqlite3.Connection] = {}

    def adopt(self, conn: sqlite3.Connection) -> None:
        for thread in [t for t in self.connections if not t.is_alive()]:
            self.connections.pop(thread).close()
        self.connections[threading.current_thread()] = conn


class SqliteStore:
    """A `StateStore` in one SQLite file, safe across threads, processes and fork."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        synchronous: Literal["NORMAL", "FULL"] = "NORMAL",
        busy_timeout: float = 30.0,
        once_limit: int = DEFAULT_ONCE_LIMIT,
    ) -> None:
        if synchronous not in ("NORMAL", "FULL"):
            raise ValueError(f"synchronous must be NORMAL or FULL, not {synchronous!r}")
        if once_limit < 1:
            raise ValueError("once_limit must be >= 1")
        # Absolute: a worker that changes directory must still find the same file.
        self.path = os.path.abspath(os.path.expanduser(os.fspath(path)))
        self._synchronous = synchronous
        self._busy_timeout = busy_timeout
        self._once_limit = once_limit
        # Prune in batches of 1% so the DELETE runs once per many tokens, not on every one.
        self._prune_every = max(1, min(1000, once_limit // 100))
        self._process: _ProcessState | None = None
        self._closed = False
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        self._create_schema()

    def __repr__(self) -> str:
        return f"SqliteStore({self.path!r})"

    def __enter__(self) -> SqliteStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- reads: autocommit statements on the thread's own connection -----------------

    def get(self, namespace: str, key: str) -> JSON | None:
        row = self._conn().execute(_GET, (namespace, key)).fetchone()
        return None if row is None else decode(row[0])

    def version(self, namespace: str, key: str) -> int:
        row = self._conn().execute(_VERSION, (namespace, key)).fetchone()
        return 0 if row is None else row[0]

    def items(self, namespace: str) -> dict[str, JSON]:
        rows = self._conn().execute(_ITEMS, (namespace,)).fetchall()
        return {key: decode(value) for key, value in rows}

    # -- writes: one IMMEDIATE transaction each --------------------------------------

    def put(self, namespace: str, key: str, value: JSON) -> None:
        data = encode(value)
        conn, write_lock = self._writer()
        with write_lock:
            self._begin(conn)
            try:
                version = conn.execute(_NEXT_VERSION).fetchone()[0]
                conn.execute(_PUT, (namespace, key, version, data))
            except BaseException:
                _rollback(conn)
                raise
            conn.execute("COMMIT")

    def delete(self, namespace: str, key: str) -> bool:
        conn, write_lock = self._writer()
        with write_lock:
            self._begin(conn)
            try:
                existed = conn.execute(_DELETE, (namespace, key)).rowcount > 0
                conn.execute(_DELETE_TOKENS, (namespace, key))
            except BaseException:
                _rollback(conn)
                raise
            conn.execute("COMMIT")
        return existed

    def update(self, namespace: str, key: str, fn: Updater, *, once: str | None = None) -> JSON:
        """Atomic read-modify-write; `fn` runs exactly once, inside the write lock.

        `fn` may read the store but must not write it (that would need a second
        transaction on the same connection).
        """
        conn, write_lock = self._writer()
        with write_lock:
            self._begin(conn)
            try:
                row = conn.execute(_READ_FOR_UPDATE, (namespace, key)).fetchone()
                current = None if row is None else decode(row[0])
                if once is not None and conn.execute(_HAS_TOKEN, (namespace, key, once)).fetchone():
                    conn.execute("ROLLBACK")  # nothing written: releasing is all that is needed
                    return current
                data = encode(fn(current))
                ntok = 0 if row is None else row[1]
                if once is not None:
                    ntok += 1
                version = conn.execute(_NEXT_VERSION).fetchone()[0]
                conn.execute(_UPSERT, (namespace, key, version, ntok, data))
                if once is not None:
                    conn.execute(_ADD_TOKEN, (namespace, key, once, ntok))
                    oldest_kept = ntok - self._once_limit
                    if oldest_kept > 0 and oldest_kept % self._prune_every == 0:
                        conn.execute(_PRUNE_TOKENS, (namespace, key, oldest_kept))
            except BaseException:
                _rollback(conn)
                raise
            conn.execute("COMMIT")
        return decode(data)

    def close(self) -> None:
        """Close this process's connections; the store cannot be used afterwards."""
        self._closed = True
        process = self._process
        if process is None or process.pid != os.getpid():
            return
        self._process = None
        with _guard:
            connections = list(process.connections.values())
            process.connections.clear()
        for conn in connections:
            conn.close()

    # -- connections -----------------------------------------------------------------

    def _conn(self) -> sqlite3.Connection:
        return self._writer()[0]

    def _writer(self) -> tuple[sqlite3.Connection, threading.Lock]:
        """This thread's connection and this process's writer lock (opened on first use)."""
        process = self._process
        if process is None or process.pid != os.getpid():
            process = self._new_process_state()
        conn: sqlite3.Connection | None = getattr(process.threads, "conn", None)
        if conn is None:
            conn = self._open(process)
        return conn, process.write_lock

    def _new_process_state(self) -> _ProcessState:
        if self._closed:
            raise RuntimeError(f"{self!r} is closed")
        with _guard:
            process = self._process
            if process is not None and process.pid == os.getpid():
                return process  # another thread got here first
            if process is not None:
                _inherited.append(process)
            process = self._process = _ProcessState()
            return process

    def _open(self, process: _ProcessState) -> sqlite3.Connection:
        if self._closed:
            raise RuntimeError(f"{self!r} is closed")
        # isolation_level=None: no implicit transactions, ours are explicit.
        # check_same_thread=False only so that close() may close every thread's connection.
        conn = sqlite3.connect(
            self.path,
            timeout=self._busy_timeout,
            isolation_level=None,
            check_same_thread=False,
        )
        try:
            # The journal mode is stored in the file, but asking again is cheap and
            # covers a file created by someone else.  Switching needs a write lock,
            # which the busy timeout waits for.
            self._enable_wal(conn)
            conn.execute(f"PRAGMA synchronous={self._synchronous}")
        except BaseException:
            conn.close()
            raise
        with _guard:
            process.adopt(conn)
        process.threads.conn = conn
        return conn

    def _enable_wal(self, conn: sqlite3.Connection) -> None:
        """Switch to WAL; two processes opening a new file at once can see "database is locked"
        here without SQLite's busy handler being asked, so wait and ask again ourselves."""
        deadline = time.monotonic() + self._busy_timeout
        delay = 0.005
        while True:
            try:
                conn.execute("PRAGMA journal_mode=WAL").fetchone()
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() >= deadline:
                    raise
                time.sleep(delay)
                delay = min(delay * 2, 0.1)

    def _create_schema(self) -> None:
        conn, write_lock = self._writer()
        with write_lock:
            self._begin(conn)
            try:
                found = conn.execute("PRAGMA user_version").fetchone()[0]
                if found > _SCHEMA_VERSION:
                    raise RuntimeError(
                        f"{self.path} holds state schema {found}, newer than this version"
                        f" of seldon-serving understands ({_SCHEMA_VERSION})"
                    )
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {_SCHEMA_VERSION}")
            except BaseException:
                _rollback(conn)
                raise
            conn.execute("COMMIT")

    @staticmethod
    def _begin(conn: sqlite3.Connection) -> None:
        conn.execute("BEGIN IMMEDIATE")


def _rollback(conn: sqlite3.Connection) -> None:
    if conn.in_transaction:
        conn.execute("ROLLBACK")
