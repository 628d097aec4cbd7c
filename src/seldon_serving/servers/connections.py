"""Connection limits of the listening ports, REST and gRPC: how long a client may take to send
its headers, how long an idle connection stays, how many connections one worker keeps.

REST: uvicorn's httptools protocol, plus
- a header timeout: a connection whose request headers are not complete `header_timeout` seconds
  after it opened (or after the first byte of its next request, on a kept-alive connection) is
  closed; uvicorn has none, and arms no timer at all on a brand-new connection;
- a stalled-body timeout: a request whose body stops arriving for the idle timeout is closed (as
  nginx's client_body_timeout: time between two reads, not a minimum rate);
- a cap: past `max_connections` open connections on a port of this worker, a new connection is
  answered 503 with a Seldon FAILURE body and closed;
- the idle (keep-alive) timeout stays uvicorn's own.
The deadlines are checked by one periodic sweep per port and worker, running only while the port
has connections: the request path pays two attribute stores and a clock read, no timer.

gRPC: grpc core's own channel arguments (each checked by experiment against the installed grpcio).
"""

from __future__ import annotations

import asyncio
import json
import weakref
from typing import Any, ClassVar

from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from seldon_serving.protocol.errors import SeldonError
from seldon_serving.settings import ServerSettings

# The longest pause between two sweeps: a deadline is enforced at most this late (or a quarter of
# the header timeout, when that is shorter).
_SWEEP_EVERY = 1.0


class TooManyConnections(SeldonError):
    """A worker already holds as many connections as --max-connections allows."""

    http_status = 503
    grpc_code = "UNAVAILABLE"
    reason = "SERVICE_UNAVAILABLE"


def _over_capacity_response(limit: int) -> tuple[list[tuple[bytes, bytes]], bytes]:
    error = TooManyConnections(
        f"the server already has {limit} open connections (--max-connections); try again later"
    )
    body = json.dumps(error.body()).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),  # uvicorn closes the connection once this answer is sent
        (b"retry-after", b"1"),
    ]
    return headers, body


class _Sweep:
    """The periodic check of one port's connections (one uvicorn server) in one worker."""

    def __init__(self, loop: asyncio.AbstractEventLoop, connections: set[Any], every: float) -> None:
        self.loop = loop
        self.connections = connections
        self.every = every
        self.handle: asyncio.TimerHandle | None = None

    def ensure(self) -> None:
        if self.handle is None:
            self.handle = self.loop.call_later(self.every, self.run)

    def run(self) -> None:
        self.handle = None
        now = self.loop.time()
        for connection in list(self.connections):
            if isinstance(connection, LimitedHttpToolsProtocol):
                connection.check(now)
        if self.connections:  # no connections, no sweep: the next one to open starts it again
            self.ensure()


class LimitedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a header timeout, a stalled-body timeout and a cap on
    open connections.  `rest_protocol` makes a subclass carrying the settings."""

    header_timeout: ClassVar[float]
    body_timeout: ClassVar[float]
    max_connections: ClassVar[int]
    sweep_every: ClassVar[float]
    over_capacity: ClassVar[tuple[list[tuple[bytes, bytes]], bytes]]
    _sweeps: ClassVar[weakref.WeakKeyDictionary[ServerState, _Sweep]]

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        # When the request being read began (connection opened, or first byte of a kept-alive
        # connection's next request); None once its headers are in.
        self.reading_since: float | None = None
        # Body progress: bytes seen, and what the last sweep saw and since when.
        self.body_seen = 0
        self.body_checked = -1
        self.body_since = 0.0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.reading_since = self.loop.time()
        if len(self.connections) > self.max_connections:
            self.app = self._refuse  # this connection's request, when it comes, is answered 503
        sweep = self._sweeps.get(self.server_state)
        if sweep is None:
            sweep = self._sweeps[self.server_state] = _Sweep(self.loop, self.connections, self.sweep_every)
        sweep.ensure()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self.reading_since is None:
            self.reading_since = self.loop.time()

    def on_headers_complete(self) -> None:
        self.reading_since = None
        super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        self.body_seen += len(body)
        super().on_body(body)

    def check(self, now: float) -> None:
        """Close this connection if it overran a deadline (called by the sweep)."""
        if self.transport is None or self.transport.is_closing():
            return
        if self.reading_since is not None:
            if now - self.reading_since >= self.header_timeout:
                self.transport.close()
            return
        cycle = self.cycle
        reading_body = (
            cycle is not None
            and cycle.more_body
            and not cycle.response_complete
            and not self.flow.read_paused  # the app is not reading: the client is not at fault
        )
        if not reading_body:
            self.body_checked = -1
            return
        if self.body_seen != self.body_checked:
            self.body_checked, self.body_since = self.body_seen, now
        elif now - self.body_since >= self.body_timeout:
            self.transport.close()

    async def _refuse(self, scope: Any, receive: Any, send: Any) -> None:
        headers, body = self.over_capacity
        await send({"type": "http.response.start", "status": 503, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def rest_protocol(settings: ServerSettings) -> type[LimitedHttpToolsProtocol]:
    """uvicorn's `http=`: the protocol class that enforces the limits (one per uvicorn server)."""
    attributes: dict[str, Any] = {
        "header_timeout": settings.header_timeout,
        "body_timeout": float(settings.keep_alive),
        "max_connections": settings.max_connections,
        "sweep_every": min(_SWEEP_EVERY, settings.header_timeout / 4),
        "over_capacity": _over_capacity_response(settings.max_connections),
        "_sweeps": weakref.WeakKeyDictionary(),
    }
    return type("LimitedHttpToolsProtocol", (LimitedHttpToolsProtocol,), attributes)


def grpc_limits(settings: ServerSettings) -> list[tuple[str, Any]]:
    """grpc.aio server options for the same limits.

    The handshake timeout covers the TLS handshake and the HTTP/2 preface and SETTINGS: a socket
    that connects and sends nothing, or half a preface, is closed after it.  The cap counts every
    open connection, handshaking ones too; past it grpc core closes the new socket at once (the
    client sees UNAVAILABLE) and the open channels keep working."""
    return [
        ("grpc.server_handshake_timeout_ms", max(1, round(settings.header_timeout * 1000))),
        ("grpc.max_connection_idle_ms", settings.keep_alive * 1000),
        ("grpc.max_allowed_incoming_connections", settings.max_connections),
    ]
