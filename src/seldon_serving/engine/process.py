"""`process` nodes: a user class in a child process of its own, managed by the gateway.

The child is our own microservice (`seldon microservice CLASS --uds PATH`), started with the
deployment, in the manifest's directory, with the environment Seldon's operator gives a graph
container (PREDICTIVE_UNIT_PARAMETERS, PREDICTIVE_UNIT_ID, SELDON_DEPLOYMENT_ID, ...).  It
listens on a Unix domain socket in a private temporary directory (mode 0700): nothing on the
network can call it, and no port is taken.

- Interpreter: the gateway's own, or `seldon.io/python` (a virtualenv's python, same minor
  version as ours).  A small bootstrap appends our package and our site-packages to the END of
  the child's sys.path, so the venv's own packages win and ours fill in what it lacks.
- Transport: Seldon's internal REST API over the socket, spoken by the keep-alive HTTP/1.1
  client that remote REST nodes use too (`engine.remote.HttpConnection`: httptools parses the
  answers); the answers are read by `RestRunner`'s own code.  aiohttp's client cost ~90 us of
  gateway CPU per call where this one costs ~27 us, which is what keeps a process node near an
  inline one in requests/s.
- Supervision: a thread per node waits on the child; when it exits, it is started again after
  a backoff (0.1 s doubling to 5 s; back to 0.1 s once a child had served for a minute) and
  `restarts` counts it.  Calls meanwhile answer 503 "node 'x' (process) is restarting".
- A call the graph's timeout gave up on (the caller got its 504) leaves the child busy: if its
  answer has not come `STUCK_GRACE` seconds after the node's timeout, the child is killed and
  restarted, so a stuck node does not stay stuck (other calls in flight in that child fail
  with it).  A call given up on for another reason (a gRPC client's shorter deadline) is judged
  by the same clock; with no timeout, nothing is killed.
- Stopping: `close()` (deployment replaced or deleted, gateway stopping) sends SIGTERM, then
  SIGKILL after `STOP_GRACE` seconds, and removes the socket's directory.  A child whose
  gateway died without stopping it (SIGKILL, crash) notices within half a second: it polls
  its parent pid (PR_SET_PDEATHSIG would fire when the *thread* that started it ends, and
  restarts are started from the supervising thread).  Children stay in the gateway's process
  group (a signal to the group reaches them, tools that measure a server by its group see them)
  but block SIGINT: a Ctrl-C meant for the gateway lets the gateway stop them.  A SIGTERM to
  the whole group stops them at once (exit code 0): such a clean exit is restarted only if the
  gateway has not begun stopping the node within `CLEAN_EXIT_WAIT` seconds.

With `seldon serve --workers N`, every worker builds every deployment, so each worker runs
its own child per process node (N children per node).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import os
import re
import shutil
import signal
import site
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import seldon_serving
from seldon_serving.engine.plan import PYTHON, NodePlan
from seldon_serving.engine.remote import HttpConnection, RestRunner
from seldon_serving.protocol import json_codec
from seldon_serving.protocol.errors import NodeUnavailable, ServingError, status_error
from seldon_serving.protocol.message import SeldonMessage
from seldon_serving.state.redis import RedisStore
from seldon_serving.state.sqlite import SqliteStore

if TYPE_CHECKING:
    from seldon_serving.engine.compile import CompileContext

log = logging.getLogger("seldon_serving.engine")

READY_TIMEOUT = 60.0  # seconds a child gets to import and load its class and answer /health/ping
STOP_GRACE = 3.0  # seconds between SIGTERM and SIGKILL when a node is stopped
STUCK_GRACE = 2.0  # seconds past its timeout an abandoned call may take before the child is killed
BACKOFF_FIRST, BACKOFF_MAX = 0.1, 5.0  # seconds before a restart, doubling
CLEAN_EXIT_WAIT = 1.0  # seconds a child that was stopped by a signal (exit 0) waits to be restarted
HEALTHY = 60.0  # seconds a child must have served for the backoff to start again from BACKOFF_FIRST
IDLE_REUSE = 20.0  # seconds an idle connection is reused (the child closes them after 30)
MAX_CONNECTIONS = 256  # per node: calls beyond wait for a connection
LOG_TAIL = 20  # lines of the child's output kept for the error of a child that did not start

# What runs in the child: our paths at the end of sys.path (a venv of its own keeps its own
# packages first), a watch on the parent, then the `seldon` CLI.  Passed in the environment so
# that `ps` shows a short command line.
_BOOTSTRAP = """\
import os, signal, site, sys, threading, time
signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})  # Ctrl-C is for the gateway, which stops us
for entry in os.environ.pop("SELDON_NODE_PATH", "").split(os.pathsep):
    if entry:
        site.addsitedir(entry)
parent = int(os.environ.pop("SELDON_NODE_PARENT", "0") or 0)
directory = os.environ.pop("SELDON_NODE_DIR", "")

def watch_parent():
    while os.getppid() == parent:
        time.sleep(0.5)
    if directory:  # the socket's: the gateway that made it cannot remove it now
        import shutil
        shutil.rmtree(directory, ignore_errors=True)
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(3)
    os._exit(1)

if parent:
    threading.Thread(target=watch_parent, daemon=True).start()
sys.argv[0] = "seldon"
from seldon_serving.cli.main import main
main()
"""

# The microservice's service types; a node of UNKNOWN_TYPE is served as a generic MODEL.
_SERVICE_TYPES = frozenset({"MODEL", "ROUTER", "TRANSFORMER", "OUTPUT_TRANSFORMER", "COMBINER"})
# Variables of the gateway's environment that would reconfigure the child (ports, workers, state,
# and the gateway's own Prometheus directory of `--workers N`, which the child's samples would join).
_INHERITED_NOT = (
    "GUNICORN_WORKERS",
    "SELDON_STATE_DIR",
    "SELDON_STATE_STORE",
    "MODEL_METADATA",
    "PROMETHEUS_MULTIPROC_DIR",
    "prometheus_multiproc_dir",
)
_INHERITED_NOT_PREFIX = "PREDICTIVE_UNIT_"


class ProcessStartError(ServingError):
    """A node's process could not be started."""


@dataclass(eq=False)
class _Child:
    """One run of the node's process."""

    proc: subprocess.Popen[bytes]
    generation: int
    tail: collections.deque[str] = field(default_factory=lambda: collections.deque(maxlen=LOG_TAIL))
    pump: threading.Thread | None = None
    ready_at: float = 0.0


def seldon_parameters(parameters: dict[str, Any]) -> list[dict[str, str]]:
    """Typed node parameters as Seldon's PREDICTIVE_UNIT_PARAMETERS list (they type back the same)."""
    out = []
    for name, value in parameters.items():
        if isinstance(value, bool):
            kind, text = "BOOL", "true" if value else "false"
        elif isinstance(value, int):
            kind, text = "INT", str(value)
        elif isinstance(value, float):
            kind, text = "DOUBLE", repr(value)  # repr: the shortest text that reads back the same float
        else:
            kind, text = "STRING", str(value)
        out.append({"name": name, "value": text, "type": kind})
    return out


def _shared_store(ctx: CompileContext) -> str | None:
    """The gateway's state store as another process opens it; None for a store only this
    process can see (memory)."""
    if isinstance(ctx.store, SqliteStore):
        return ctx.store.path
    if isinstance(ctx.store, RedisStore):
        return ctx.store.url
    return None


def _interpreter(python: str, base_dir: Path | None) -> str:
    """The path of a node's own interpreter, checked: it runs, and it is our minor version
    (binary wheels of the packages it shares with us would not load in another)."""
    if os.sep in python and not os.path.isabs(python) and base_dir is not None:
        python = str(base_dir / python)  # relative to the manifest, like MODEL_NAME's class
    found = python if os.sep in python else shutil.which(python)
    if found is None or not os.path.isfile(found):
        raise ProcessStartError(f"{PYTHON} {python} does not exist")
    # abspath, not realpath: a venv's python is a symlink, and the venv is known by the link.
    found = os.path.abspath(found)
    ours = f"{sys.version_info[0]}.{sys.version_info[1]}"
    try:
        done = subprocess.run(
            [found, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True,
            text=True,
            timeout=30,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
        raise ProcessStartError(f"{PYTHON} {python} cannot be run ({reason})") from None
    version = done.stdout.strip()
    if done.returncode != 0 or not re.fullmatch(r"\d+\.\d+", version):
        raise ProcessStartError(f"{PYTHON} {python} does not run as a Python interpreter")
    if version != ours:
        raise ProcessStartError(
            f"{PYTHON} {python} is Python {version} but the gateway runs Python {ours}: a node's "
            "interpreter must be the same minor version (the packages it shares with the gateway "
            "include binary wheels built for it)"
        )
    return found


def _our_paths() -> list[str]:
    """Where a foreign interpreter finds seldon_serving and its dependencies: our package's
    directory and our site-packages (their .pth files too: an editable install is one)."""
    package_root = str(Path(seldon_serving.__file__).resolve().parent.parent)
    paths = [package_root, *site.getsitepackages()]
    if site.ENABLE_USER_SITE:
        paths.append(site.getusersitepackages())
    return [p for i, p in enumerate(paths) if p not in paths[:i] and os.path.isdir(p)]


def _ping(path: str) -> bool:
    """Whether the child at `path` answers GET /health/ping (blocking, for the starting thread)."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(1.0)
            sock.connect(path)
            sock.sendall(b"GET /health/ping HTTP/1.1\r\nHost: node\r\nConnection: close\r\n\r\n")
            return sock.recv(64).startswith(b"HTTP/1.1 200")
    except OSError:
        return False


def _how_it_ended(code: int) -> str:
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"was killed by {signal.Signals(-code).name}"
    return f"exited with code {code}"


def _socket_dir() -> str:
    """A private directory for the socket; a Unix socket's path must stay under ~100 bytes."""
    directory = tempfile.mkdtemp(prefix="seldon-node-")
    if len(directory) > 80:
        shutil.rmtree(directory, ignore_errors=True)
        directory = tempfile.mkdtemp(prefix="seldon-node-", dir="/tmp")
    return directory


class ProcessRunner(RestRunner):
    """A node whose class runs in a child process of the gateway (see the module doc).

    Built (and its child started and ready) by the compiling thread; called on the event loop;
    supervised by a thread of its own."""

    def __init__(self, plan: NodePlan, ctx: CompileContext) -> None:
        assert plan.model_name is not None
        super().__init__(plan.name, "127.0.0.1", 0, plan.service_type, ctx.max_message)
        # Not a network address: the gateway's readiness probe (TCP connect) must skip it.
        self.address = None  # type: ignore[assignment]
        self.label = plan.label
        self.timeout = plan.timeout_ms / 1000.0 if plan.timeout_ms > 0 else None  # seconds, per call
        self.own_python = plan.python is not None
        self.python = _interpreter(plan.python, ctx.base_dir) if plan.python is not None else sys.executable
        self._dir = _socket_dir()
        self.socket_path = os.path.join(self._dir, "node.sock")
        self.base = f"unix:{self.socket_path}"
        service_type = plan.service_type if plan.service_type in _SERVICE_TYPES else "MODEL"
        level = logging.getLevelName(logging.getLogger().getEffectiveLevel())  # the gateway's
        self._argv = [
            self.python,
            "-c",
            "import os; exec(os.environ.pop('SELDON_NODE_BOOTSTRAP'))",
            "microservice",
            plan.model_name,
            "--service-type",
            service_type,
            "--uds",
            self.socket_path,
            "--workers",
            "1",
            "--max-message-size",
            str(ctx.max_message),
            "--log-level",
            level if not level.startswith("Level") else "INFO",  # "Level 5": a level of no name
        ]
        if plan.max_batch_size > 1:  # the child batches its own predict calls
            self._argv += [
                "--max-batch-size",
                str(plan.max_batch_size),
                "--max-batch-time-ms",
                repr(plan.max_batch_time_ms),
            ]
        self._cwd = str(ctx.base_dir) if ctx.base_dir is not None else os.getcwd()
        self._env = self._environment(plan, ctx)
        self.restarts = 0
        self._lock = threading.Lock()  # the child and the closing flag, between the loop and threads
        self._stopping = threading.Event()
        self._closing = False
        self._up = False  # a ready child is there to call
        self._generation = -1  # of the ready child; connections to older ones are dropped
        self._child: _Child | None = None
        self._idle: list[HttpConnection] = []
        self._slots: asyncio.Semaphore | None = None  # made on the loop, at the first call
        self._heads: dict[tuple[bytes, str], bytes] = {}
        self._supervisor: threading.Thread | None = None
        try:
            self._start()
        except BaseException:
            self.terminate()
            raise
        self._supervisor = threading.Thread(target=self._supervise, name=f"node-{self.node}", daemon=True)
        self._supervisor.start()

    def _environment(self, plan: NodePlan, ctx: CompileContext) -> dict[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(_INHERITED_NOT_PREFIX) and k not in _INHERITED_NOT
        }
        env.update(
            PREDICTIVE_UNIT_PARAMETERS=json_codec.dumps(seldon_parameters(plan.parameters)).decode(),
            PREDICTIVE_UNIT_ID=plan.name,
            SELDON_DEPLOYMENT_ID=ctx.deployment,
            PREDICTOR_ID=ctx.predictor,
            DEPLOYMENT_NAMESPACE=ctx.namespace,
            PYTHONUNBUFFERED="1",  # the user's prints reach the gateway's log as they happen
            # Custom metrics come back in the answer, for the gateway to export as it does inline.
            INCLUDE_METRICS_IN_CLIENT_RESPONSE="true",
            SELDON_NODE_BOOTSTRAP=_BOOTSTRAP,
            SELDON_NODE_DIR=self._dir,
            SELDON_NODE_PARENT=str(os.getpid()),
        )
        if plan.image:
            env["PREDICTIVE_UNIT_IMAGE"] = plan.image
        store = _shared_store(ctx)
        if store is not None:
            env["SELDON_STATE_STORE"] = store
        if plan.model_metadata is not None:
            env["MODEL_METADATA"] = plan.model_metadata
        if self.own_python:
            env["SELDON_NODE_PATH"] = os.pathsep.join(_our_paths())
        return env

    # --- the child's life (threads) -------------------------------------------------------------

    def _start(self) -> None:
        """Start a child and wait until it answers (ProcessStartError if it does not)."""
        with self._lock:
            if self._closing:
                raise ProcessStartError("the node is stopping")
            generation = self._child.generation + 1 if self._child is not None else 0
            try:
                proc = subprocess.Popen(
                    self._argv,
                    cwd=self._cwd,
                    env=self._env,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                )
            except OSError as exc:
                raise ProcessStartError(f"{self.python} cannot be started ({exc.strerror or exc})") from None
            child = _Child(proc, generation)
            child.pump = threading.Thread(target=self._pump, args=(child,), daemon=True)
            child.pump.start()
            self._child = child
            if generation > 0:
                self.restarts += 1
        self._wait_ready(child)
        with self._lock:
            if not self._closing:
                child.ready_at = time.monotonic()
                self._generation = generation
                self._up = True

    def _pump(self, child: _Child) -> None:
        """The child's output: into the gateway's log, and its last lines kept for errors."""
        assert child.proc.stdout is not None
        prefix = f"[node {self.node} pid {child.proc.pid}] "
        for raw in child.proc.stdout:
            line = raw.decode(errors="replace").rstrip()
            child.tail.append(line)
            with contextlib.suppress(OSError, ValueError):
                sys.stderr.write(prefix + line + "\n")
                sys.stderr.flush()
        child.proc.stdout.close()

    def _wait_ready(self, child: _Child) -> None:
        deadline = time.monotonic() + READY_TIMEOUT
        while not _ping(self.socket_path):
            code = child.proc.poll()
            if code is not None:
                said = self._error_sentence(child)
                if said:  # our CLI's one sentence (a load() that failed): the reason comes first
                    raise ProcessStartError(f"{said} (in its process, which {_how_it_ended(code)})")
                raise ProcessStartError(
                    f"its process {_how_it_ended(code)} before it was ready{self._last_words(child)}"
                )
            if time.monotonic() > deadline:
                child.proc.kill()
                child.proc.wait()
                raise ProcessStartError(
                    f"its process (pid {child.proc.pid}) did not answer within {READY_TIMEOUT:g} s"
                    f"{self._last_words(child)}"
                )
            time.sleep(0.02)

    @staticmethod
    def _error_sentence(child: _Child) -> str:
        """The `error: ...` sentence our CLI ends with when it fails, or ''."""
        if child.pump is not None:
            child.pump.join(1.0)  # the rest of its output, now that it exited
        lines = [line.strip() for line in child.tail if line.strip()]
        return lines[-1].removeprefix("error: ") if lines and lines[-1].startswith("error: ") else ""

    @staticmethod
    def _last_words(child: _Child) -> str:
        """': <the last line it wrote>' (a traceback's last line is the exception), or ''."""
        if child.pump is not None:
            child.pump.join(1.0)  # the rest of its output, now that it exited
        lines = [line.strip() for line in child.tail if line.strip()]
        return f": {lines[-1].removeprefix('error: ')}" if lines else ""

    def _supervise(self) -> None:
        backoff = BACKOFF_FIRST
        while True:
            child = self._child
            assert child is not None
            code = child.proc.wait()
            with self._lock:
                if self._closing:
                    return
                self._up = False
            # Exit 0: it was told to stop (a SIGTERM to the gateway's whole group, most likely,
            # which is stopping too): give the gateway a moment to say so before restarting it.
            if code == 0 and self._stopping.wait(CLEAN_EXIT_WAIT):
                return
            if child.ready_at and time.monotonic() - child.ready_at >= HEALTHY:
                backoff = BACKOFF_FIRST
            log.warning(
                "node '%s': its process (pid %d) %s; starting it again in %g s",
                self.node,
                child.proc.pid,
                _how_it_ended(code),
                backoff,
            )
            if self._stopping.wait(backoff):
                return
            backoff = min(backoff * 2, BACKOFF_MAX)
            try:
                self._start()
            except ProcessStartError as exc:
                if self._closing:
                    return
                log.error("node '%s': could not start it again: %s", self.node, exc)
                if self._child is child:  # nothing was started: wait for no one, just back off
                    if self._stopping.wait(backoff):
                        return
                    backoff = min(backoff * 2, BACKOFF_MAX)

    def _kill_stuck(self, connection: HttpConnection) -> None:
        """A call its caller gave up on is still unanswered after the grace: kill that child
        (the supervisor starts another)."""
        if not connection.busy or connection.closed:
            return
        connection.close()
        with self._lock:
            child = self._child
            if self._closing or child is None or child.generation != connection.generation:
                return
            self._up = False  # calls from now on: "restarting", not a refused connection
            log.warning(
                "node '%s': a call is still unanswered %g s after its timeout: killing its process (pid %d)",
                self.node,
                STUCK_GRACE,
                child.proc.pid,
            )
            child.proc.kill()

    def terminate(self) -> None:
        """Stop the child (SIGTERM, then SIGKILL) and remove its socket's directory (blocking)."""
        with self._lock:
            self._closing = True
            self._up = False
            child = self._child
        self._stopping.set()
        if child is not None and child.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                child.proc.terminate()
            try:
                child.proc.wait(STOP_GRACE)
            except subprocess.TimeoutExpired:
                child.proc.kill()
                child.proc.wait()
        supervisor = self._supervisor
        if supervisor is not None and supervisor is not threading.current_thread():
            supervisor.join(STOP_GRACE)
        shutil.rmtree(self._dir, ignore_errors=True)

    # --- calls (event loop) ---------------------------------------------------------------------

    def _head(self, method: bytes, path: str) -> bytes:
        head = self._heads.get((method, path))
        if head is None:
            head = method + b" " + path.encode() + b" HTTP/1.1\r\nHost: node\r\n"
            if method == b"POST":
                head += b"Content-Type: application/json\r\n"
            self._heads[(method, path)] = head
        return head

    async def _exchange(self, method: bytes, path: str, body: bytes = b"") -> tuple[int, bytes]:
        """(status, body) of one request to the child."""
        if not self._up:
            raise self._restarting()
        if self._slots is None:
            self._slots = asyncio.Semaphore(MAX_CONNECTIONS)
        async with self._slots:
            loop = asyncio.get_running_loop()
            connection = self._idle_connection(loop.time())
            if connection is None:
                generation = self._generation
                try:
                    _, connection = await loop.create_unix_connection(
                        lambda: HttpConnection(generation), self.socket_path
                    )
                except OSError as exc:
                    raise self._unreachable(exc) from None
            waiter: asyncio.Future[tuple[int, bytes]] = loop.create_future()
            head = self._head(method, path) + b"Content-Length: %d\r\n\r\n" % len(body)
            connection.send(head + body, waiter)
            sent = loop.time()
            try:
                answer = await waiter
            except asyncio.CancelledError:
                # The caller gave up (the node's timeout, most often): the child may be stuck.
                connection.abandoned = True
                if self.timeout is not None:
                    late = max(0.0, sent + self.timeout - loop.time()) + STUCK_GRACE
                    loop.call_later(late, self._kill_stuck, connection)
                raise
            except OSError as exc:
                connection.close()
                raise self._unreachable(exc) from None
            if not connection.closed:
                connection.last_used = loop.time()
                self._idle.append(connection)
            return answer

    def _idle_connection(self, now: float) -> HttpConnection | None:
        while self._idle:
            connection = self._idle.pop()
            if connection.closed or connection.generation != self._generation:
                connection.close()
            elif now - connection.last_used > IDLE_REUSE:
                connection.close()  # the child may be closing it just now: a fresh one is safe
            else:
                return connection
        return None

    def _restarting(self) -> NodeUnavailable:
        return NodeUnavailable(f"node '{self.node}' (process) is restarting", node=self.node)

    def _unreachable(self, exc: BaseException) -> NodeUnavailable:
        if not self._up:
            return self._restarting()
        reason = (exc.strerror if isinstance(exc, OSError) else None) or str(exc) or type(exc).__name__
        child = self._child
        pid = f" pid {child.proc.pid}" if child is not None else ""
        return NodeUnavailable(f"node '{self.node}' (process{pid}) is unreachable ({reason})", node=self.node)

    async def _post(self, path: str, payload: Any) -> SeldonMessage:
        status, raw = await self._exchange(b"POST", path, json_codec.dumps(payload))
        return self._answer(status, raw)

    def _answer(self, status: int, raw: bytes) -> SeldonMessage:
        """As the class answers inline: its error's own status, reason, message (and body)."""
        if status < 400:
            return super()._answer(status, raw)
        try:
            body = json_codec.loads(raw)
        except Exception:
            body = None
        found = body.get("status") if isinstance(body, dict) else None
        if isinstance(found, dict) and found.get("info") is not None:
            default = "MICROSERVICE_BAD_DATA" if status < 500 else "Microservice error"
            raise status_error(status, str(found.get("reason") or default), str(found["info"]))
        # A body of the class's own (an exception's to_dict()): answered as it is.
        info = raw[:200].decode(errors="replace")
        raise status_error(status, "Microservice error", info, body if isinstance(body, dict) else None)

    async def metadata(self) -> dict[str, Any]:
        status, raw = await self._exchange(b"GET", "/metadata")
        return self._metadata_answer(status, raw)

    async def close(self) -> None:
        for connection in self._idle:
            connection.close()
        self._idle.clear()
        await asyncio.to_thread(self.terminate)

    def describe(self) -> str:
        child = self._child
        state = f"pid {child.proc.pid}" if self._up and child is not None else "restarting"
        restarts = f"{self.restarts} restart{'' if self.restarts == 1 else 's'}"
        python = f", python {self.python}" if self.own_python else ""
        return f"process {state}, {restarts}, {self.label}{python}"


def process_runner(plan: NodePlan, ctx: CompileContext) -> ProcessRunner:
    """A running `process` node (its child started and answering), or ProcessStartError."""
    return ProcessRunner(plan, ctx)


__all__ = ["ProcessRunner", "ProcessStartError", "process_runner", "seldon_parameters"]
