"""Request logging, as Seldon 1.x's executor does it: a graph node with `logger: {mode, url}`
sends what it was asked and what it answered to a sink, as CloudEvents.

What is logged (Seldon's executor, executor/predictor/predictor_process.go):
- a node's input step (predict of a MODEL, transform-input of a TRANSFORMER): the message it was
  given (`io.seldon.serving.inference.request`, modes `all` and `request`) and the message it
  answered (`io.seldon.serving.inference.response`, modes `all` and `response`);
- a node's feedback: the Feedback it got (`io.seldon.serving.feedback`, modes `all` and
  `response`).
Routes, aggregations and output transformations are not logged, as in Seldon.

An HTTP sink gets each event in CloudEvents' HTTP binary mode: the body is the message's JSON
(`Content-Type: application/json`), the attributes are headers: `Ce-Id` (unique per event),
`Ce-Specversion: 1.0`, `Ce-Source` (`http://<host>:<REST port>/` of this server), `Ce-Type`,
`Ce-Time`, and Seldon's extensions `Ce-Requestid` (the request's puid), `Ce-Modelid` (the node),
`Ce-Inferenceservicename` (the deployment), `Ce-Namespace`, `Ce-Endpoint` (the predictor) and
`Ce-Protocol` (`seldon` or `v2`).  A `file:///path` sink gets one CloudEvent a line in
CloudEvents' JSON format (the same attributes, the message under `data`).

Off the hot path: a node's hook encodes the message and appends it to its sink's bounded queue
(a few microseconds); senders (tasks of this worker's loop) deliver it, retrying failures with
capped exponential backoff.  When a sink is down or slower than the traffic, events wait up to
the queue's bound and are then dropped.  No event is lost silently: every event is counted when
logged, and again when delivered or dropped (`seldon_request_logger_*_total`), so
events = delivered + dropped + still queued, and drops are logged once per interval.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import logging
import os
import socket
import ssl
import threading
import time
import uuid
from collections.abc import Awaitable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import orjson
from prometheus_client import Counter
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from seldon_serving.engine.deployment import Deployment, Predictor
from seldon_serving.engine.graph import GraphNode, NodeHook
from seldon_serving.engine.remote import HttpConnection, connect_failure
from seldon_serving.protocol import json_codec, v2
from seldon_serving.protocol.message import V2, Feedback, SeldonMessage
from seldon_serving.settings import DEFAULT_REQUEST_LOGGER_QUEUE
from seldon_serving.spec.graph import iter_units
from seldon_serving.spec.validation import logger_url_problem

log = logging.getLogger("seldon_serving.request_logger")

CE_REQUEST = "io.seldon.serving.inference.request"
CE_RESPONSE = "io.seldon.serving.inference.response"
CE_FEEDBACK = "io.seldon.serving.feedback"
MODES = ("all", "request", "response")

SENDERS = 4  # concurrent deliveries per HTTP sink and worker (one connection each)
PIPELINE = 32  # events written at once on one connection (HTTP/1.1 pipelining)
MAX_ATTEMPTS = 8  # tries of one event before it is dropped (about 7 s of backoff)
BACKOFF_FIRST = 0.05  # seconds after a first failure, doubled after each one
BACKOFF_MAX = 2.0
SEND_TIMEOUT = 10.0  # seconds for a sink's answer (connection included)
REPORT_INTERVAL = 10.0  # seconds between two log lines about drops of one sink
FLUSH_TIMEOUT = 2.0  # seconds a stopping worker gives its queued events
FILE_BATCH = 512  # events written to a file sink in one write
RECENT = 100  # events kept per deployment for `recent_events` (the dashboard)


# --- metrics -------------------------------------------------------------------------------------


class _LoggerMetrics(Collector):
    """`seldon_request_logger_{events,delivered,dropped,failures}_total`, per sink (and reason).
    Created on first use, in the worker (so that they are multiprocess values there); every
    process's `Metrics` registry registers this collector."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counters: dict[str, Counter] = {}

    def counter(self, name: str, text: str, labels: tuple[str, ...]) -> Counter:
        with self._lock:
            found = self._counters.get(name)
            if found is None:
                found = self._counters[name] = Counter(name, text, labels, registry=None)
            return found

    def collect(self) -> Iterator[Metric]:
        for counter in list(self._counters.values()):
            yield from counter.collect()


LOGGER_METRICS = _LoggerMetrics()


def _counters() -> tuple[Counter, Counter, Counter, Counter]:
    m = LOGGER_METRICS
    return (
        m.counter("seldon_request_logger_events", "Events graph nodes gave the request logger", ("sink",)),
        m.counter("seldon_request_logger_delivered", "Events the sink took", ("sink",)),
        m.counter(
            "seldon_request_logger_dropped",
            "Events given up (never delivered), by reason",
            ("sink", "reason"),
        ),
        m.counter(
            "seldon_request_logger_failures",
            "Failed deliveries (retried until the event is dropped), by reason",
            ("sink", "reason"),
        ),
    )


# --- events --------------------------------------------------------------------------------------


@dataclass(slots=True, eq=False)
class Event:
    type: str
    body: bytes  # JSON
    node: str
    predictor: str
    deployment: str
    namespace: str
    puid: str
    protocol: str  # seldon | v2
    at: float  # time.time()
    id: str = ""  # made when first needed (a uuid costs microseconds the hot path need not pay)
    attempts: int = 0

    def ensure_id(self) -> str:
        if not self.id:
            self.id = _next_id()
        return self.id

    def time_text(self) -> str:
        return _rfc3339(self.at)

    def attributes(self, source: str) -> dict[str, str]:
        """CloudEvents attributes: the context's and Seldon's extensions."""
        return {
            "id": self.ensure_id(),
            "specversion": "1.0",
            "source": source,
            "type": self.type,
            "time": self.time_text(),
            "datacontenttype": "application/json",
            "requestid": self.puid,
            "modelid": self.node,
            "inferenceservicename": self.deployment,
            "namespace": self.namespace,
            "endpoint": self.predictor,
            "protocol": self.protocol,
        }


_ids = itertools.count()
_id_prefix = str(uuid.uuid4())[:24]


def _new_id_prefix() -> None:
    global _id_prefix
    _id_prefix = str(uuid.uuid4())[:24]


os.register_at_fork(after_in_child=_new_id_prefix)  # a forked worker must not repeat its parent's ids


def _next_id() -> str:
    """A UUID-shaped id unique to this event: a per-process random prefix and a counter (a
    uuid4 per event costs several microseconds of os.urandom)."""
    return f"{_id_prefix}{next(_ids) & 0xFFFFFFFFFFFF:012x}"


_second = -1
_second_text = ""


def _rfc3339(at: float) -> str:
    """`2026-12-02T17:30:00.123456Z`; the part up to the second is formatted once a second."""
    global _second, _second_text
    whole = int(at)
    if whole != _second:
        _second = whole
        _second_text = datetime.fromtimestamp(whole, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{_second_text}.{int((at - whole) * 1e6):06d}Z"


def encode(given: Any, response: bool) -> tuple[bytes, str]:
    """(JSON body, protocol) of what a node was given or answered."""
    if isinstance(given, Feedback):
        return json_codec.dumps(json_codec.encode_feedback(given)), "seldon"
    msg: SeldonMessage = given
    if msg.form == V2:
        obj, _ = v2.encode_json(msg.payload, response=response)
        return v2.dumps(obj), "v2"
    return json_codec.dumps(json_codec.encode_message(msg)), "seldon"


def _header_value(text: str) -> str:
    return text.replace("\r", " ").replace("\n", " ")


def shown(url: str) -> str:
    """A sink's URL fit for a label and a log line: no credentials, no query."""
    parts = urlsplit(url)
    if parts.scheme == "file":
        return f"file://{parts.path}"
    host = parts.hostname or ""
    host = f"[{host}]" if ":" in host else host
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path or '/'}"


# --- sinks ---------------------------------------------------------------------------------------


class _Sink:
    """One URL's queue and senders, in one worker."""

    senders = 1

    def __init__(self, url: str, source: str, capacity: int) -> None:
        self.url = url
        self.label = shown(url)
        self.source = source
        self.capacity = capacity
        self.queue: collections.deque[Event] = collections.deque()
        self.inflight = 0
        self._wake: asyncio.Event | None = None
        self._tasks: list[asyncio.Task[None]] = []
        events, delivered, self._dropped, self._failures = _counters()
        self._events = events.labels(self.label)
        self._delivered = delivered.labels(self.label)
        self._drops: dict[str, Any] = {}
        self._drops_pending: collections.Counter[str] = collections.Counter()
        self._reported = 0.0
        self.backoff = 0.0

    def put(self, event: Event) -> None:
        self._events.inc()
        if len(self.queue) >= self.capacity:
            self.drop("queue_full")
            return
        self.queue.append(event)
        wake = self._wake
        if wake is None:
            self._start()
        else:
            wake.set()

    def _start(self) -> None:
        self._wake = asyncio.Event()
        self._wake.set()
        self._tasks = [asyncio.get_running_loop().create_task(self._send_loop()) for _ in range(self.senders)]

    def unencodable(self) -> None:
        self._events.inc()
        self.drop("unencodable")

    def drop(self, reason: str, count: int = 1) -> None:
        child = self._drops.get(reason)
        if child is None:
            child = self._drops[reason] = self._dropped.labels(self.label, reason)
        child.inc(count)
        self._drops_pending[reason] += count
        self.report()

    def failed(self, reason: str) -> None:
        self._failures.labels(self.label, reason).inc()

    def report(self, force: bool = False) -> None:
        """Say what was dropped since the last line, at most once per interval (or now)."""
        if not self._drops_pending:
            return
        now = time.monotonic()
        if not force and now - self._reported < REPORT_INTERVAL:
            return
        self._reported = now
        total = sum(self._drops_pending.values())
        reasons = ", ".join(f"{reason}: {n}" for reason, n in sorted(self._drops_pending.items()))
        self._drops_pending.clear()
        log.warning(
            "request logger: %d event(s) for %s dropped (%s); the sink is down, refusing them or slower "
            "than the traffic (seldon_request_logger_dropped_total counts them)",
            total,
            self.label,
            reasons,
        )

    async def _send_loop(self) -> None:
        assert self._wake is not None
        wake = self._wake
        try:
            while True:
                if not self.queue:
                    wake.clear()
                    self.report()
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(REPORT_INTERVAL):
                            await wake.wait()
                    continue
                if self.backoff:
                    await asyncio.sleep(self.backoff)
                    if not self.queue:
                        continue
                await self._deliver_some()
        finally:
            await self._close_connection()

    async def _deliver_some(self) -> None:
        raise NotImplementedError

    async def _close_connection(self) -> None:
        pass

    def retry(self, events: list[Event], reason: str) -> None:
        """These events failed: back in front of the queue, or dropped after their last try."""
        if not events:
            return
        self.failed(reason)
        self.backoff = min(BACKOFF_MAX, self.backoff * 2) if self.backoff else BACKOFF_FIRST
        for event in reversed(events):
            event.attempts += 1
            if event.attempts >= MAX_ATTEMPTS:
                self.drop("retries_exhausted")
            else:
                self.queue.appendleft(event)

    def delivered(self, count: int) -> None:
        self._delivered.inc(count)
        self.backoff = 0.0

    async def close(self, timeout: float) -> None:
        """Give queued events `timeout` seconds, then drop (and count) what is left."""
        if self._tasks:
            deadline = time.monotonic() + timeout
            while (self.queue or self.inflight) and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
            for task in self._tasks:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            self._tasks = []
        left = len(self.queue) + self.inflight
        self.queue.clear()
        self.inflight = 0
        if left:
            self.drop("shutdown", left)
        self.report(force=True)


class _Pipelined(HttpConnection):
    """A keep-alive connection on which several requests are written at once (HTTP/1.1
    pipelining) and their answers read in order: one write and a read or two for a batch of
    events, instead of a round trip each."""

    def __init__(self) -> None:
        super().__init__()
        self.statuses: list[int] = []
        self.expected = 0

    def send_batch(self, data: bytes, count: int, waiter: asyncio.Future[tuple[int, bytes]]) -> None:
        self.statuses = []
        self.expected = count
        self.send(data, waiter)

    def on_message_complete(self) -> None:
        self.statuses.append(self.parser.get_status_code())
        self.body.clear()
        if len(self.statuses) >= self.expected:
            self.busy = False
            waiter, self.waiter = self.waiter, None
            if waiter is not None and not waiter.done():
                waiter.set_result((0, b""))
        if not self.parser.should_keep_alive():
            self.close()


class _HttpSink(_Sink):
    """CloudEvents in HTTP binary mode, one POST per event, pipelined on keep-alive connections."""

    senders = SENDERS

    def __init__(self, url: str, source: str, capacity: int) -> None:
        super().__init__(url, source, capacity)
        parts = urlsplit(url)
        self.tls = parts.scheme == "https"
        self.host = parts.hostname or ""
        self.port = parts.port or (443 if self.tls else 80)
        target = parts.path or "/"
        if parts.query:
            target += "?" + parts.query
        netloc_host = f"[{self.host}]" if ":" in self.host else self.host
        default_port = self.port == (443 if self.tls else 80)
        self.head = (
            f"POST {target} HTTP/1.1\r\nHost: {netloc_host}{'' if default_port else f':{self.port}'}\r\n"
            "Content-Type: application/json\r\nCe-Specversion: 1.0\r\n"
            f"Ce-Source: {_header_value(source)}\r\n"
        ).encode("latin-1", "replace")
        self._idle: list[_Pipelined] = []
        self._open: set[_Pipelined] = set()
        self._ssl = ssl.create_default_context() if self.tls else None

    def _request(self, event: Event) -> bytes:
        headers = (
            f"Ce-Id: {event.ensure_id()}\r\nCe-Type: {event.type}\r\nCe-Time: {event.time_text()}\r\n"
            f"Ce-Requestid: {_header_value(event.puid)}\r\nCe-Modelid: {_header_value(event.node)}\r\n"
            f"Ce-Inferenceservicename: {_header_value(event.deployment)}\r\n"
            f"Ce-Namespace: {_header_value(event.namespace)}\r\n"
            f"Ce-Endpoint: {_header_value(event.predictor)}\r\nCe-Protocol: {event.protocol}\r\n"
            f"Content-Length: {len(event.body)}\r\n\r\n"
        ).encode("latin-1", "replace")
        return self.head + headers + event.body

    async def _connection(self) -> _Pipelined:
        while self._idle:
            connection = self._idle.pop()
            if not connection.closed:
                return connection
            self._open.discard(connection)
        loop = asyncio.get_running_loop()
        _, connection = await loop.create_connection(
            _Pipelined,
            self.host,
            self.port,
            ssl=self._ssl,
            server_hostname=self.host if self._ssl is not None else None,
        )
        self._open.add(connection)
        return connection

    async def _deliver_some(self) -> None:
        batch = [self.queue.popleft() for _ in range(min(PIPELINE, len(self.queue)))]
        self.inflight += len(batch)
        connection: _Pipelined | None = None
        try:
            async with asyncio.timeout(SEND_TIMEOUT):
                connection = await self._connection()
                waiter: asyncio.Future[tuple[int, bytes]] = asyncio.get_running_loop().create_future()
                connection.send_batch(b"".join(self._request(event) for event in batch), len(batch), waiter)
                await waiter
        except (OSError, TimeoutError) as exc:
            answered = connection.statuses if connection is not None else []
            if connection is not None:
                connection.close()
                self._open.discard(connection)
            why = "timeout" if isinstance(exc, TimeoutError) else "unreachable"
            if not self.backoff:
                log.debug("request logger: %s failed: %s", self.label, connect_failure(exc))
            self.inflight -= len(batch)
            self._settle(batch[: len(answered)], answered)
            self.retry(batch[len(answered) :], why)  # the rest may come again: at least once
            return
        self.inflight -= len(batch)
        if not connection.closed:
            self._idle.append(connection)
        else:
            self._open.discard(connection)
        self._settle(batch, connection.statuses)

    def _settle(self, events: list[Event], statuses: list[int]) -> None:
        """Count what the sink answered for each of `events`."""
        again: list[Event] = []
        delivered = 0
        reason = ""
        for event, status in zip(events, statuses, strict=True):
            if 200 <= status < 300:
                delivered += 1
            elif status in (408, 429) or status >= 500:
                again.append(event)
                reason = f"http_{status}"
            else:  # the sink refuses this event: sending it again would not help
                self.failed(f"http_{status}")
                self.drop("rejected")
        if delivered:
            self.delivered(delivered)
        if again:
            self.retry(again, reason)

    async def _close_connection(self) -> None:
        for connection in self._open:
            connection.close()
        self._open.clear()
        self._idle.clear()


class _FileSink(_Sink):
    """One CloudEvent (JSON format) a line, appended to a file (every worker appends whole lines)."""

    def __init__(self, url: str, source: str, capacity: int) -> None:
        super().__init__(url, source, capacity)
        self.path = urlsplit(url).path
        self._fd: int | None = None

    def _line(self, event: Event) -> bytes:
        head = orjson.dumps(event.attributes(self.source))
        return head[:-1] + b',"data":' + event.body + b"}\n"

    def _write(self, data: bytes) -> None:
        if self._fd is None:
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        view = memoryview(data)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]

    async def _deliver_some(self) -> None:
        batch = [self.queue.popleft() for _ in range(min(FILE_BATCH, len(self.queue)))]
        self.inflight += len(batch)
        try:
            data = b"".join(self._line(event) for event in batch)
            await asyncio.to_thread(self._write, data)
        except OSError as exc:
            self.inflight -= len(batch)
            if not self.backoff:
                log.warning("request logger: cannot write %s: %s", self.path, exc.strerror or exc)
            self.retry(batch, "write_failed")
            return
        self.inflight -= len(batch)
        self.delivered(len(batch))

    async def _close_connection(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None


# --- the logger of one worker --------------------------------------------------------------------


def server_source(port: int | None) -> str:
    """Ce-Source of this server's events: its REST address.  (Seldon's executor meant the same,
    but formats it before it knows its host name, so its events say `http://:8000/`.)"""
    return f"http://{socket.gethostname()}:{port or 0}/"


class RequestLogger:
    """The request logging of one worker process: its sinks, and the hook factory that gives
    every node with a `logger` a hook (`DataPlane.hook_factories`)."""

    def __init__(
        self,
        *,
        default_url: str | None = None,
        source: str = "",
        capacity: int = DEFAULT_REQUEST_LOGGER_QUEUE,
    ) -> None:
        self.default_url = default_url or None
        self.source = source or server_source(None)
        self.capacity = capacity
        self._sinks: dict[str, _Sink] = {}
        self._recent: dict[tuple[str, str], collections.deque[Event]] = {}
        self._warned: set[tuple[str, str, str, str]] = set()

    def sink(self, url: str) -> _Sink:
        found = self._sinks.get(url)
        if found is None:
            kind = _FileSink if url.startswith("file:") else _HttpSink
            found = self._sinks[url] = kind(url, self.source, self.capacity)
        return found

    def _warn(self, deployment: Deployment, node: GraphNode, what: str) -> None:
        key = (deployment.namespace, deployment.name, node.name, what)
        if key not in self._warned:
            self._warned.add(key)
            log.warning(
                "deployment '%s' in namespace '%s': node '%s' logs nothing: %s",
                deployment.name,
                deployment.namespace,
                node.name,
                what,
            )

    def hook_factory(self, deployment: Deployment, predictor: Predictor, node: GraphNode) -> NodeHook | None:
        if predictor.forwards:  # another engine walks this graph, and logs
            return None
        spec = next((p for p in deployment.manifest.spec.predictors if p.name == predictor.name), None)
        if spec is None:
            return None
        unit = next((u for _, u in iter_units(spec.graph) if u.name == node.name), None)
        if unit is None or unit.logger is None:
            return None
        url = unit.logger.url or self.default_url
        if not url:
            self._warn(
                deployment, node, "its logger names no url, and the server has no --request-logger-url"
            )
            return None
        problem = logger_url_problem(url)
        if problem is not None:
            self._warn(deployment, node, f"its logger url {url!r} cannot be used: {problem}")
            return None
        mode = unit.logger.mode or "all"
        return self._hook(self.sink(url), deployment, predictor.name, mode)

    def _hook(self, sink: _Sink, deployment: Deployment, predictor: str, mode: str) -> NodeHook:
        requests = mode in ("all", "request")
        responses = mode in ("all", "response")
        name, namespace = deployment.name, deployment.namespace
        recent = self._recent.setdefault((namespace, name), collections.deque(maxlen=RECENT))

        def emit(kind: str, node: GraphNode, given: Any, puid: str, response: bool) -> None:
            # Logging must never fail (or slow much) the request it logs.
            try:
                body, protocol = encode(given, response)
            except Exception as exc:
                sink.unencodable()
                log.debug("request logger: node %s: %s", node.name, exc)
                return
            event = Event(kind, body, node.name, predictor, name, namespace, puid, protocol, time.time())
            recent.append(event)
            sink.put(event)

        async def hook(node: GraphNode, step: str, given: Any, work: Awaitable[Any]) -> Any:
            if step == "predict":
                puid = str(given.meta.get("puid") or "")
                if requests:
                    emit(CE_REQUEST, node, given, puid, False)
                answer = await work
                if responses:
                    emit(CE_RESPONSE, node, answer, puid, True)
                return answer
            if step == "send-feedback" and responses:
                response = given.response
                puid = str(response.meta.get("puid") or "") if response is not None else ""
                emit(CE_FEEDBACK, node, given, puid, False)
            return await work

        return hook

    def recent_events(self, namespace: str, name: str, limit: int = RECENT) -> list[dict[str, Any]]:
        """The most recent events of a deployment logged by this worker, newest first, with
        their payloads (the caller redacts)."""
        found = self._recent.get((namespace, name))
        if not found:
            return []
        out = []
        for event in list(found)[-limit:][::-1]:
            attributes = event.attributes(self.source)
            attributes["data"] = orjson.loads(event.body)
            out.append(attributes)
        return out

    def forget(self, namespace: str, name: str) -> None:
        self._recent.pop((namespace, name), None)

    async def close(self, timeout: float = FLUSH_TIMEOUT) -> None:
        """Give queued events `timeout` seconds to be delivered; what is left is dropped (and counted)."""
        await asyncio.gather(*(sink.close(timeout) for sink in self._sinks.values()))
