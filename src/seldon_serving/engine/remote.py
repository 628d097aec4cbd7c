"""Runners for nodes served by another process: Seldon's internal API over REST
(pooled keep-alive connections) or gRPC (one channel per node).

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

import contextvars
import functools
import socket
import ssl
import weakref
from typing import Any

import grpc
from google.protobuf import empty_pb2, json_format
from google.protobuf.message import Message

from seldon_serving.components.response import branch_of
from seldon_serving.protocol import json_codec, proto_codec
from seldon_serving.protocol._pb import prediction_pb2 as pb
from seldon_serving.protocol.errors import BadRequest, MicroserviceError, NodeUnavailable
from seldon_serving.protocol.message import Feedback, SeldonMessage
from seldon_serving.settings import NodeTls

_INPUT_PATH = {"MODEL": "/predict", "TRANSFORMER": "/transform-input"}

# Whether the connection the current request got came from the pool.  Set by the
# connector inside the request's own task (the connector is awaited, not spawned), read
# by the runner when the request fails.
_reused_connection: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "seldon_reused_connection", default=False
)
_connector_class: Any = None

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


def _pool_connector(**kwargs: Any) -> Any:
    """An aiohttp TCPConnector that tells (through `_reused_connection`) whether the
    connection it hands out was used before."""
    global _connector_class
    if _connector_class is None:
        import aiohttp

        class _ReuseAwareConnector(aiohttp.TCPConnector):
            def __init__(self, **options: Any) -> None:
                super().__init__(**options)
                # Protocols handed out at least once; weak, so closed ones are not kept.
                self._handed_out: weakref.WeakSet[Any] = weakref.WeakSet()

            async def connect(self, *args: Any, **kwargs: Any) -> Any:
                connection = await super().connect(*args, **kwargs)
                protocol = connection.protocol
                if protocol in self._handed_out:
                    _reused_connection.set(True)
                elif protocol is not None:
                    self._handed_out.add(protocol)
                return connection

        _connector_class = _ReuseAwareConnector
    return _connector_class(**kwargs)


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
        self.where = f"{host}:{port}"
        self.tls = tls
        self.base = f"{'https' if tls is not None else 'http'}://{host}:{port}"
        self.input_path = _INPUT_PATH.get(service_type, "/transform-input")
        self.max_message = max_message
        self._session: Any = None

    def _client(self) -> Any:
        if self._session is None:
            import aiohttp  # imported on first remote call: in-process graphs never pay for it

            self._session = aiohttp.ClientSession(
                # keepalive_timeout: give up idle connections before our own microservices
                # do (after 30 s).  Servers with a shorter keep-alive (gunicorn, behind
                # Seldon's wrapper, 2 s) close connections under us: the retry in `_post`.
                connector=_pool_connector(
                    limit=256,
                    keepalive_timeout=15,
                    ssl=node_ssl_context(self.tls) if self.tls is not None else True,
                ),
                headers={"Seldon-model-name": self.node},
            )
        return self._session

    async def _post(self, path: str, payload: Any) -> SeldonMessage:
        import aiohttp

        body = json_codec.dumps(payload)
        url = self.base + path
        retried = False
        while True:
            answered = False
            _reused_connection.set(False)
            try:
                async with self._client().post(
                    url, data=body, headers={"Content-Type": "application/json"}
                ) as response:
                    answered = True
                    raw = await response.read()
                    status = response.status
                break
            except (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError) as exc:
                # On a reused connection with nothing answered yet this is a stale pooled
                # connection (the peer closed it, or died, before taking our request), so one
                # more try on a fresh connection is due.  A fresh connection's failure
                # (ClientConnectorError included) is final, and so are timeouts (neither
                # class): the component may be working on the request.
                stale = (
                    not answered
                    and not retried
                    and _reused_connection.get()
                    and not isinstance(exc, aiohttp.ClientConnectorError)
                )
                if not stale:
                    raise self._unreachable(exc) from None
                retried = True
            except (aiohttp.ClientConnectionError, OSError) as exc:
                raise self._unreachable(exc) from None
        return self._answer(status, raw)

    def _answer(self, status: int, raw: bytes) -> SeldonMessage:
        """The message a node answered, or the error it answered, naming the node."""
        if status >= 400:
            info = _error_info(raw) or f"HTTP {status}"
            kind = BadRequest if 400 <= status < 500 else MicroserviceError
            raise kind(f"node '{self.node}' answered {status}: {info}", node=self.node)
        return json_codec.decode_message(json_codec.loads(raw))

    def _unreachable(self, exc: BaseException) -> NodeUnavailable:
        import aiohttp

        tls = tls_failure(exc) if self.tls is not None else None
        if tls is not None:
            reason = tls
        elif isinstance(exc, aiohttp.ClientConnectorError):
            reason = connect_failure(exc.os_error)
        elif isinstance(exc, aiohttp.ServerDisconnectedError):
            reason = "it closed the connection before answering"
        else:
            reason = connect_failure(exc)
        over = " over TLS" if self.tls is not None and tls is None else ""
        if over and isinstance(exc, aiohttp.ServerDisconnectedError):
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
        import aiohttp

        try:
            async with self._client().get(self.base + "/metadata") as response:
                raw = await response.read()
                status = response.status
        except (aiohttp.ClientConnectionError, OSError) as exc:
            raise self._unreachable(exc) from None
        return self._metadata_answer(status, raw)

    def _metadata_answer(self, status: int, raw: bytes) -> dict[str, Any]:
        if status >= 400:
            raise MicroserviceError(
                f"node '{self.node}' answered {status} for its metadata: {_error_info(raw)}", node=self.node
            )
        body = json_codec.loads(raw)
        return body if isinstance(body, dict) else {}

    async def close(self) -> None:
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
            return await self._method(service, name, type(request), response_type)(request)
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
