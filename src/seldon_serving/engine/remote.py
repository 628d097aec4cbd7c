"""Runners for nodes served by another process: Seldon's internal API over REST
(pooled keep-alive connections) or gRPC (one channel per node).

REST speaks HTTP/1.1 through a small client of its own (`HttpConnection`: an asyncio protocol,
httptools parsing the answers), shared with the `process` nodes of engine/process.py: one
request per connection at a time, connections pooled per node and reused most-recent first,
each request written in one piece, TCP_NODELAY on every connection.  aiohttp's client cost about
three times as much gateway CPU per call (its request and response objects, headers, timers).

A remote component may die, hang or be restarted on the same port at any time; only
the requests that need it may suffer, and only while it is away:
- REST: a pooled keep-alive connection can be dead without the pool knowing yet (the
  peer was killed, or closed an idle connection just as we reused it).  A request
  that fails on a REUSED connection before any response byte arrived is sent once
  more on a fresh connection; a fresh connection's failure, a timeout, or a failure
  after the answer started is final (the request may have been processed).
- gRPC: the channel reconnects with a short, capped backoff, so a component that
  comes back is used again within about a second instead of gRPC's default of up
  to two minutes.

With `NodeTls` (`--node-tls`, `--node-ca`, `--node-cert`, `--node-key`) both speak TLS: https
with an ssl.SSLContext, and a secure gRPC channel, trusting the given CA (or the system's roots)
and showing the client certificate to nodes that ask for one.  A handshake that fails is said as
a TLS problem, naming the node.
"""

from __future__ import annotations

import asyncio
import functools
import socket
import ssl
from typing import Any, cast

import grpc
import httptools
from google.protobuf import empty_pb2, json_format
from google.protobuf.message import Message

from seldon_serving.components.response import branch_of
from seldon_serving.engine.tracing import TRACEPARENT
from seldon_serving.protocol import json_codec, proto_codec
from seldon_serving.protocol._pb import prediction_pb2 as pb
from seldon_serving.protocol.errors import BadRequest, MicroserviceError, NodeUnavailable
from seldon_serving.protocol.message import Feedback, SeldonMessage
from seldon_serving.settings import NodeTls

_INPUT_PATH = {"MODEL": "/predict", "TRANSFORMER": "/transform-input"}

IDLE_REUSE = 15.0  # seconds an idle connection is reused: before our microservices close it (30 s)
MAX_CONNECTIONS = 256  # per node: calls beyond wait for a connection
CONNECT_TIMEOUT = 30.0  # seconds for a TCP connection (and its TLS handshake)
ANSWER_TIMEOUT = 300.0  # seconds for an answer when the graph gives the node no timeout of its own

# gRPC's default reconnect backoff grows to 120 s: a component down for a minute would
# stay unused for minutes after it is back.  Cap it (a refused connect costs little).
GRPC_RECONNECT_OPTIONS = [
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 1000),
]


def connect_failure(exc: BaseException) -> str:
    """Why a connection failed, in our words (no client library's internals)."""
    if isinstance(exc, TimeoutError):
        return "no connection within the time allowed"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused: nothing listens there"
    if isinstance(exc, socket.gaierror):
        return "unknown host"
    if isinstance(exc, OSError) and exc.errno is None and "[Errno 111]" in str(exc):
        # asyncio's one error for a host name whose every address refused (::1 and 127.0.0.1)
        return "connection refused: nothing listens there"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror[0].lower() + exc.strerror[1:]
    return type(exc).__name__


@functools.cache
def node_ssl_context(tls: NodeTls) -> ssl.SSLContext:
    """The client side of TLS to remote nodes (one context per setting, shared by every runner):
    verify the node's certificate and name against the CA (or the system's roots), and show
    the client certificate if one is given."""
    context = ssl.create_default_context(cafile=str(tls.ca) if tls.ca is not None else None)
    if tls.cert is not None and tls.key is not None:
        context.load_cert_chain(str(tls.cert), str(tls.key))
    return context


def grpc_channel_credentials(tls: NodeTls) -> grpc.ChannelCredentials:
    return grpc.ssl_channel_credentials(
        root_certificates=tls.ca.read_bytes() if tls.ca is not None else None,
        private_key=tls.key.read_bytes() if tls.key is not None and tls.cert is not None else None,
        certificate_chain=tls.cert.read_bytes() if tls.cert is not None and tls.key is not None else None,
    )


def tls_failure(exc: BaseException) -> str | None:
    """Why a TLS connection failed, in our words, or None if `exc` is no TLS failure."""
    seen: BaseException | None = exc
    while seen is not None:  # aiohttp wraps the ssl module's error; look through the chain
        # aiohttp's own certificate error is an SSLCertVerificationError without its fields: the
        # ssl module's error is its `certificate_error`.
        certificate_error = getattr(seen, "certificate_error", None)
        if isinstance(certificate_error, BaseException) and certificate_error is not seen:
            seen = certificate_error
            continue
        if isinstance(seen, ssl.SSLCertVerificationError):
            detail = getattr(seen, "verify_message", None) or "certificate verify failed"
            return f"TLS: its certificate is not trusted ({detail}): is --node-ca the CA that signed it?"
        if isinstance(seen, ssl.SSLError):
            return _handshake_failure(getattr(seen, "reason", None) or str(seen))
        seen = seen.__cause__ or seen.__context__
    return None


def _handshake_failure(reason: str) -> str:
    text = reason.lower()
    if "certificate_required" in text or "certificate required" in text or "handshake_failure" in text:
        return "TLS: it asks for a client certificate: give --node-cert and --node-key"
    if "certificate_verify_failed" in text:
        return "TLS: its certificate is not trusted: is --node-ca the CA that signed it?"
    if "wrong_version_number" in text or "record_layer" in text or "packet_length" in text:
        return "TLS handshake failed: it does not seem to serve TLS"
    return f"TLS handshake failed: {reason}"


class PeerClosed(ConnectionResetError):
    """The peer closed the connection before the whole answer came."""


class HttpConnection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection, one request at a time (TCP, TLS or a Unix socket)."""

    def __init__(self, generation: int = 0) -> None:
        self.generation = generation  # process nodes: of the child it reaches; older ones are dropped
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.body: list[bytes] = []
        self.waiter: asyncio.Future[tuple[int, bytes]] | None = None
        self.busy = False  # a request was sent and its whole answer has not come yet
        self.answered = False  # a byte of the current answer came (a retry would not be safe)
        self.headers_done = False
        self.delimited = False  # the answer says where its body ends (Content-Length or chunked)
        self.abandoned = False  # its caller gave up (timeout): closed once the answer comes
        self.closed = False
        self.last_used = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's are not asyncio's classes
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            # A request is one write, but the peer's delayed ACK must never hold a second one.
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        self.answered = True
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(ConnectionError(f"its answer is not HTTP ({exc})"))
            self.close()

    def on_header(self, name: bytes, value: bytes) -> None:
        if name.lower() in (b"content-length", b"transfer-encoding"):
            self.delimited = True

    def on_headers_complete(self) -> None:
        self.headers_done = True

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        answer = (self.parser.get_status_code(), b"".join(self.body))
        self.body.clear()
        self.busy = False
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(answer)
        if self.abandoned or not self.parser.should_keep_alive():
            self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if exc is None and self.headers_done and not self.delimited:
            self.on_message_complete()  # an answer whose body ends with the connection (HTTP/1.0)
            return
        self._fail(exc or PeerClosed("it closed the connection before answering"))

    def _fail(self, exc: BaseException) -> None:
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)

    def send(self, data: bytes, waiter: asyncio.Future[tuple[int, bytes]]) -> None:
        assert self.transport is not None
        self.waiter = waiter
        self.busy = True
        self.answered = self.headers_done = self.delimited = False
        self.transport.write(data)

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()


def _expire(waiter: asyncio.Future[tuple[int, bytes]]) -> None:
    if not waiter.done():
        waiter.set_exception(TimeoutError())


class RestRunner:
    def __init__(
        self,
        node: str,
        host: str,
        port: int,
        service_type: str,
        max_message: int,
        tls: NodeTls | None = None,
    ) -> None:
        self.node = node
        self.address = (host, port)  # for the gateway's readiness check
        self.host, self.port = host, port
        self.where = f"{host}:{port}"
        self.tls = tls
        self.base = f"{'https' if tls is not None else 'http'}://{host}:{port}"
        self.input_path = _INPUT_PATH.get(service_type, "/transform-input")
        self.max_message = max_message
        self._idle: list[HttpConnection] = []  # most recently used last
        self._open: set[HttpConnection] = set()
        self._slots: asyncio.Semaphore | None = None  # made on the loop, at the first call
        self._heads: dict[tuple[bytes, str], bytes] = {}
        self._session: Any = None
        self.connections_opened = 0  # fresh connections made, for tests and diagnostics

    def _client(self) -> Any:
        """An aiohttp session to the node, for callers that need more of HTTP than Seldon's
        internal API (the V2 hop); Seldon's own calls go through `_exchange`."""
        if self._session is None:
            import aiohttp

            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(
                    limit=MAX_CONNECTIONS,
                    keepalive_timeout=IDLE_REUSE,
                    ssl=node_ssl_context(self.tls) if self.tls is not None else True,
                ),
                headers={"Seldon-model-name": self.node},
            )
        return self._session

    def _head(self, method: bytes, path: str) -> bytes:
        head = self._heads.get((method, path))
        if head is None:
            host = self.host if ":" not in self.host else f"[{self.host}]"
            head = (
                f"{method.decode()} {path} HTTP/1.1\r\nHost: {host}:{self.port}\r\n"
                f"Seldon-model-name: {self.node}\r\n"
            ).encode("latin-1", "replace")
            if method == b"POST":
                head += b"Content-Type: application/json\r\n"
            self._heads[(method, path)] = head
        return head

    async def _connect(self, loop: asyncio.AbstractEventLoop) -> HttpConnection:
        context = node_ssl_context(self.tls) if self.tls is not None else None
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT):
                _, connection = await loop.create_connection(
                    HttpConnection,
                    self.host,
                    self.port,
                    ssl=context,
                    server_hostname=self.host if context is not None else None,
                )
        except (OSError, TimeoutError) as exc:  # ssl.SSLError is an OSError
            raise self._unreachable(exc) from None
        self.connections_opened += 1
        self._open.add(connection)
        return connection

    def _idle_connection(self, now: float) -> HttpConnection | None:
        while self._idle:
            connection = self._idle.pop()
            if connection.closed:
                self._open.discard(connection)
            elif now - connection.last_used > IDLE_REUSE:
                connection.close()  # the node may be closing it just now: a fresh one is safe
                self._open.discard(connection)
            else:
                return connection
        return None

    async def _exchange(self, method: bytes, path: str, body: bytes = b"") -> tuple[int, bytes]:
        """(status, body) of one request to the node, on a pooled connection."""
        if self._slots is None:
            self._slots = asyncio.Semaphore(MAX_CONNECTIONS)
        async with self._slots:
            loop = asyncio.get_running_loop()
            head = self._head(method, path)
            traceparent = TRACEPARENT.get()
            if traceparent is not None:  # set only when tracing is on
                head += b"traceparent: %s\r\n" % traceparent.encode()
            data = head + b"Content-Length: %d\r\n\r\n" % len(body) + body
            retried = False
            while True:
                connection = self._idle_connection(loop.time())
                reused = connection is not None
                if connection is None:
                    connection = await self._connect(loop)
                waiter: asyncio.Future[tuple[int, bytes]] = loop.create_future()
                connection.send(data, waiter)
                expiry = loop.call_later(ANSWER_TIMEOUT, _expire, waiter)
                try:
                    answer = await waiter
                except asyncio.CancelledError:
                    # The caller gave up (the node's timeout): the answer may still come, on a
                    # connection nobody reads any more.
                    connection.close()
                    self._open.discard(connection)
                    raise
                except TimeoutError:
                    connection.close()
                    self._open.discard(connection)
                    raise
                except OSError as exc:
                    connection.close()
                    self._open.discard(connection)
                    # On a reused connection with nothing answered yet this is a stale pooled
                    # connection (the peer closed it, or died, before taking our request): one
                    # more try on a fresh connection.  A fresh connection's failure is final:
                    # the component may have died of this very request.
                    if reused and not retried and not connection.answered:
                        retried = True
                        continue
                    raise self._unreachable(exc) from None
                finally:
                    expiry.cancel()
                if connection.closed:
                    self._open.discard(connection)
                else:
                    connection.last_used = loop.time()
                    self._idle.append(connection)
                return answer

    async def _post(self, path: str, payload: Any) -> SeldonMessage:
        status, raw = await self._exchange(b"POST", path, json_codec.dumps(payload))
        return self._answer(status, raw)

    def _answer(self, status: int, raw: bytes) -> SeldonMessage:
        """The message a node answered, or the error it answered, naming the node."""
        if status >= 400:
            info = _error_info(raw) or f"HTTP {status}"
            kind = BadRequest if 400 <= status < 500 else MicroserviceError
            raise kind(f"node '{self.node}' answered {status}: {info}", node=self.node)
        return json_codec.decode_message(json_codec.loads(raw))

    def _unreachable(self, exc: BaseException) -> NodeUnavailable:
        tls = tls_failure(exc) if self.tls is not None else None
        # A reset is a close too: a TLS node refusing a client without a certificate may do either.
        closed = isinstance(exc, ConnectionResetError)
        if type(exc).__module__.startswith("aiohttp"):  # from the V2 hop's session
            import aiohttp

            if isinstance(exc, aiohttp.ClientConnectorError):
                exc = exc.os_error
            closed = isinstance(exc, aiohttp.ServerDisconnectedError)
        if tls is not None:
            reason = tls
        elif closed:
            reason = "it closed the connection before answering"
        else:
            reason = connect_failure(exc)
        over = " over TLS" if self.tls is not None and tls is None else ""
        if over and closed:
            reason += _client_cert_hint(self.tls)
        return NodeUnavailable(
            f"node '{self.node}' at {self.where} is unreachable{over} ({reason})", node=self.node
        )

    async def transform_input(self, msg: SeldonMessage) -> SeldonMessage:
        return await self._post(self.input_path, json_codec.encode_message(msg))

    async def transform_output(self, msg: SeldonMessage) -> SeldonMessage:
        return await self._post("/transform-output", json_codec.encode_message(msg))

    async def route(self, msg: SeldonMessage) -> int:
        return branch_of(await self._post("/route", json_codec.encode_message(msg)), self.node)

    async def aggregate(self, msgs: list[SeldonMessage]) -> SeldonMessage:
        return await self._post("/aggregate", json_codec.encode_message_list(msgs))

    async def send_feedback(self, feedback: Feedback) -> None:
        await self._post("/send-feedback", json_codec.encode_feedback(feedback))

    async def metadata(self) -> dict[str, Any]:
        status, raw = await self._exchange(b"GET", "/metadata")
        return self._metadata_answer(status, raw)

    def _metadata_answer(self, status: int, raw: bytes) -> dict[str, Any]:
        if status >= 400:
            raise MicroserviceError(
                f"node '{self.node}' answered {status} for its metadata: {_error_info(raw)}", node=self.node
            )
        body = json_codec.loads(raw)
        return body if isinstance(body, dict) else {}

    async def close(self) -> None:
        for connection in self._open:
            connection.close()
        self._open.clear()
        self._idle.clear()
        if self._session is not None:
            await self._session.close()
            self._session = None

    def describe(self) -> str:
        return f"REST {self.where}{' (TLS)' if self.tls is not None else ''}"


class EngineRunner(RestRunner):
    """Another engine — a predictor running on a cluster — called with Seldon's external API:
    its answer is its whole graph's, meta (routing, requestPath) included, and feedback goes to
    its whole graph.  What the OAuth front end of a cluster install forwards to."""

    def __init__(self, node: str, host: str, port: int, max_message: int, tls: NodeTls | None = None) -> None:
        super().__init__(node, host, port, "MODEL", max_message, tls)
        self.input_path = "/api/v0.1/predictions"
        # Not part of the front end's readiness: one deployment's engines being away must not
        # take the front end of every other deployment out of rotation.
        self.address = None  # type: ignore[assignment]

    async def send_feedback(self, feedback: Feedback) -> None:
        await self._post("/api/v0.1/feedback", json_codec.encode_feedback(feedback))

    def describe(self) -> str:
        return f"engine {self.where}{' (TLS)' if self.tls is not None else ''}"


def _error_info(raw: bytes) -> str:
    try:
        body = json_codec.loads(raw)
    except Exception:
        return raw[:200].decode(errors="replace")
    status = body.get("status") if isinstance(body, dict) else None
    if isinstance(status, dict):
        return str(status.get("info", ""))
    return str(body)[:200]


class GrpcRunner:
    def __init__(
        self,
        node: str,
        host: str,
        port: int,
        service_type: str,
        max_message: int,
        tls: NodeTls | None = None,
    ) -> None:
        self.node = node
        self.address = (host, port)  # for the gateway's readiness check
        self.target = f"{host}:{port}"
        self.tls = tls
        self.service_type = service_type
        self.max_message = max_message
        self._channel: grpc.aio.Channel | None = None
        self._methods: dict[str, Any] = {}

    def _method(
        self,
        service: str,
        name: str,
        request_type: type[Message],
        response_type: type[Message] = pb.SeldonMessage,
    ) -> Any:
        key = f"{service}/{name}"
        method = self._methods.get(key)
        if method is None:
            if self._channel is None:
                options = [
                    ("grpc.max_send_message_length", self.max_message),
                    ("grpc.max_receive_message_length", self.max_message),
                    *GRPC_RECONNECT_OPTIONS,
                ]
                if self.tls is not None:
                    credentials = grpc_channel_credentials(self.tls)
                    self._channel = grpc.aio.secure_channel(self.target, credentials, options=options)
                else:
                    self._channel = grpc.aio.insecure_channel(self.target, options=options)
            method = self._channel.unary_unary(
                f"/seldon.protos.{service}/{name}",
                request_serializer=request_type.SerializeToString,
                response_deserializer=response_type.FromString,
            )
            self._methods[key] = method
        return method

    async def _invoke(self, service: str, name: str, request: Any) -> SeldonMessage:
        return proto_codec.message_from_proto(await self._call(service, name, request))

    async def _call(
        self, service: str, name: str, request: Any, response_type: type = pb.SeldonMessage
    ) -> Any:
        try:
            method = self._method(service, name, type(request), response_type)
            traceparent = TRACEPARENT.get()
            if traceparent is not None:  # set only when tracing is on
                return await method(request, metadata=(("traceparent", traceparent),))
            return await method(request)
        except grpc.aio.AioRpcError as exc:
            code = exc.code()
            detail = exc.details() or code.name
            if code == grpc.StatusCode.UNAVAILABLE:
                # gRPC's own text names its resolver and subchannels: say it in our words.
                reason = (
                    "connection refused: nothing listens there"
                    if "refused" in detail.lower()
                    else "no answer"
                )
                over = ""
                if self.tls is not None:
                    tls = _grpc_tls_failure(detail)
                    if tls is not None:
                        reason = tls
                    else:
                        over = " over TLS"
                        if reason == "no answer":
                            reason += _client_cert_hint(self.tls)
                raise NodeUnavailable(
                    f"node '{self.node}' at {self.target} is unreachable{over} ({reason})", node=self.node
                ) from None
            if code == grpc.StatusCode.INVALID_ARGUMENT:
                raise BadRequest(f"node '{self.node}': {detail}", node=self.node) from None
            raise MicroserviceError(
                f"node '{self.node}' answered {code.name}: {detail}", node=self.node
            ) from None

    async def transform_input(self, msg: SeldonMessage) -> SeldonMessage:
        request = proto_codec.message_to_proto(msg)
        if self.service_type == "MODEL":
            return await self._invoke("Model", "Predict", request)
        if self.service_type == "TRANSFORMER":
            return await self._invoke("Transformer", "TransformInput", request)
        return await self._invoke("Generic", "TransformInput", request)

    async def transform_output(self, msg: SeldonMessage) -> SeldonMessage:
        service = "OutputTransformer" if self.service_type == "OUTPUT_TRANSFORMER" else "Generic"
        return await self._invoke(service, "TransformOutput", proto_codec.message_to_proto(msg))

    async def route(self, msg: SeldonMessage) -> int:
        service = "Router" if self.service_type == "ROUTER" else "Generic"
        answer = await self._invoke(service, "Route", proto_codec.message_to_proto(msg))
        return branch_of(answer, self.node)

    async def aggregate(self, msgs: list[SeldonMessage]) -> SeldonMessage:
        service = "Combiner" if self.service_type == "COMBINER" else "Generic"
        return await self._invoke(service, "Aggregate", proto_codec.message_list_to_proto(msgs))

    async def send_feedback(self, feedback: Feedback) -> None:
        service = {"MODEL": "Model", "ROUTER": "Router"}.get(self.service_type, "Generic")
        await self._invoke(service, "SendFeedback", proto_codec.feedback_to_proto(feedback))

    async def metadata(self) -> dict[str, Any]:
        answer = await self._call("Model", "Metadata", empty_pb2.Empty(), pb.SeldonModelMetadata)
        return json_format.MessageToDict(answer)

    async def close(self) -> None:
        if self._channel is not None:
            await self._channel.close()
            self._channel = None
            self._methods.clear()

    def describe(self) -> str:
        return f"gRPC {self.target}{' (TLS)' if self.tls is not None else ''}"


def _client_cert_hint(tls: NodeTls | None) -> str:
    """A node that wants a client certificate closes a TLS 1.3 connection without one only after
    the handshake: the client sees a closed connection, not a TLS error."""
    if tls is None or tls.cert is not None:
        return ""
    return "; if it asks for a client certificate, give --node-cert and --node-key"


def _grpc_tls_failure(detail: str) -> str | None:
    """A secure channel's failure to connect, from gRPC's detail text, in our words."""
    text = detail.lower()
    if "ssl" not in text and "handshake" not in text and "tsi" not in text and "certificate" not in text:
        return None
    return _handshake_failure(detail)
