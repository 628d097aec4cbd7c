"""OpenTelemetry tracing (the optional extra `[tracing]`), configured by the standard `OTEL_*`
environment variables and off unless they ask for it (`OTEL_TRACES_EXPORTER`, or an OTLP endpoint).

With tracing on, a gateway worker makes a span per request (`_tracked` in engine/plane.py runs it
inside `request_span`) with the deployment, predictor and puid, and a span per step of every
graph node (the node hook `node_hook`), continuing the W3C `traceparent` the request came with
(the edges hand it over in `INCOMING`); a step at a remote node sends its span's `traceparent`
on (REST header, gRPC metadata: the runners read `TRACEPARENT`).  A microservice makes a span per
request continuing the caller's (`served`).

With tracing off nothing of OpenTelemetry is imported and nothing runs: the node hook factory
gives no hook, the data plane has no request tracer, the edges check `ON` and the remote runners
find `TRACEPARENT` unset.
"""

from __future__ import annotations

import importlib
import logging
import os
from collections.abc import Awaitable
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from opentelemetry.context import Context
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.trace import Span, Tracer

    from seldon_serving.engine.deployment import Deployment, Predictor
    from seldon_serving.engine.graph import GraphNode, NodeHook

T = TypeVar("T")
log = logging.getLogger("seldon_serving.tracing")

ON = False
"""Whether this process traces; the edges check it before reading a request's traceparent."""

TRACEPARENT: ContextVar[str | None] = ContextVar("seldon_outgoing_traceparent", default=None)
"""The traceparent a call to a remote node carries: set around a remote node's step."""

INCOMING: ContextVar[str | None] = ContextVar("seldon_incoming_traceparent", default=None)
"""The traceparent a request came with (the edges set it, only when `ON`)."""

# The request's span and its context (the node spans' parent), while a traced request runs.
_REQUEST: ContextVar[tuple[Span, Context] | None] = ContextVar("seldon_request_span", default=None)

_tracer: Tracer | None = None
_configured = False
_own_provider: Any = None  # the provider `setup` made from the environment

TRACER_NAME = "seldon_serving"


def wanted() -> str:
    """The exporters the environment asks for ("" for none): OTEL_TRACES_EXPORTER, else otlp when
    an OTLP endpoint is set; OTEL_SDK_DISABLED=true wins."""
    if os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return ""
    exporters = os.environ.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if not exporters and (
        os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    ):
        exporters = "otlp"
    return "" if exporters == "none" else exporters


def setup(service_name: str) -> bool:
    """Turn tracing on in this process if the environment asks for it (once per process: call it
    in each worker, after the fork, since a span exporter's thread does not survive one).  True
    when on.  `service_name` is the default of OTEL_SERVICE_NAME."""
    global _configured
    if _configured:
        return ON
    _configured = True
    exporters = wanted()
    if not exporters:
        return False
    try:
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError:
        log.warning(
            "tracing is asked for (OTEL_TRACES_EXPORTER=%s) but OpenTelemetry is not installed; serving "
            "without it (pip install 'seldon-serving[tracing]')",
            exporters,
        )
        return False
    named = os.environ.get("OTEL_SERVICE_NAME") or "service.name=" in os.environ.get(
        "OTEL_RESOURCE_ATTRIBUTES", ""
    )
    provider = TracerProvider(resource=Resource.create({} if named else {"service.name": service_name}))
    for name in (part.strip() for part in exporters.split(",")):
        exporter = _exporter(name)
        if exporter is not None:
            provider.add_span_processor(BatchSpanProcessor(exporter))
    # The global provider too: a user class's own spans join the request's trace.
    from opentelemetry import trace

    trace.set_tracer_provider(provider)
    enable(provider)
    global _own_provider
    _own_provider = provider
    return True


def flush() -> None:
    """Export the spans still queued (a forked worker leaves by os._exit, which runs no atexit
    hook: without this its last seconds of spans would be lost)."""
    if _own_provider is not None:
        _own_provider.shutdown()


def _exporter(name: str) -> Any:
    """The span exporter OTEL_TRACES_EXPORTER names (otlp over OTEL_EXPORTER_OTLP_PROTOCOL, or
    console), or None after a warning saying why not."""
    if name == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        return ConsoleSpanExporter()
    if name != "otlp":
        log.warning("OTEL_TRACES_EXPORTER names '%s': only otlp, console and none are known", name)
        return None
    protocol = (
        os.environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
        or os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL")
        or "http/protobuf"
    )
    kind = "grpc" if protocol == "grpc" else "http"
    try:
        module = importlib.import_module(f"opentelemetry.exporter.otlp.proto.{kind}.trace_exporter")
    except ImportError:
        package = f"opentelemetry-exporter-otlp-proto-{kind}"
        log.warning(
            "OTLP over %s needs %s (pip install %s): spans are not exported", protocol, package, package
        )
        return None
    return module.OTLPSpanExporter()


def enable(provider: TracerProvider) -> None:
    """Trace into `provider` from now on (`setup` does it from the environment; a test gives its own)."""
    global ON, _tracer, _configured
    _configured = True
    _tracer = provider.get_tracer(TRACER_NAME)
    ON = True


def disable() -> None:
    """Stop tracing (deployments installed from now on get no node hook): for tests."""
    global ON, _tracer
    ON = False
    _tracer = None


def _parent(traceparent: str | None) -> Any:
    """The OpenTelemetry context continuing `traceparent` (None: a new trace)."""
    if not traceparent:
        return None
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    return TraceContextTextMapPropagator().extract({"traceparent": traceparent})


def _traceparent(span: Span) -> str:
    context = span.get_span_context()
    return f"00-{context.trace_id:032x}-{context.span_id:016x}-{context.trace_flags:02x}"


def _puid(message: Any) -> str | None:
    meta = getattr(message, "meta", None)
    puid = meta.get("puid") if isinstance(meta, dict) else None
    return puid if isinstance(puid, str) else None


async def request_span(deployment: Deployment, predictor: Predictor, method: str, work: Awaitable[T]) -> T:
    """Run one gateway request (`method`: predictions or feedback) inside its span."""
    assert _tracer is not None
    from opentelemetry import context
    from opentelemetry.trace import SpanKind

    attributes = {
        "seldon.deployment": deployment.name,
        "seldon.namespace": deployment.namespace,
        "seldon.predictor": predictor.name,
        "seldon.method": method,
    }
    with _tracer.start_as_current_span(
        f"{deployment.name} {method}",
        context=_parent(INCOMING.get()),
        kind=SpanKind.SERVER,
        attributes=attributes,
    ) as span:
        token = _REQUEST.set((span, context.get_current()))
        try:
            answer = await work
        finally:
            _REQUEST.reset(token)
        puid = _puid(answer)
        if puid is not None:
            span.set_attribute("seldon.puid", puid)
        return answer


def node_hook(deployment: Deployment, predictor: Predictor, node: GraphNode) -> NodeHook | None:
    """The data plane's hook factory: a span around each step of `node` (None when tracing is off)."""
    if not ON:
        return None
    from opentelemetry.trace import SpanKind, Status, StatusCode

    from seldon_serving.engine.runners import LocalRunner

    tracer = _tracer
    assert tracer is not None
    remote = not isinstance(node.runner, LocalRunner)
    kind = SpanKind.CLIENT if remote else SpanKind.INTERNAL
    attributes = {
        "seldon.deployment": deployment.name,
        "seldon.predictor": predictor.name,
        "seldon.node": node.name,
    }
    names: dict[str, str] = {}

    # A node step has no child span of its own in this process: the span is started under the
    # request's and never made current (start_as_current_span's context switches cost as much
    # as the span itself).
    async def hook(node: GraphNode, step: str, given: Any, work: Awaitable[Any]) -> Any:
        request = _REQUEST.get()
        if (
            request is not None and not request[0].is_recording()
        ):  # sampled out: no span, just the traceparent
            if not remote:
                return await work
            token = TRACEPARENT.set(_traceparent(request[0]))
            try:
                return await work
            finally:
                TRACEPARENT.reset(token)
        name = names.get(step)
        if name is None:
            name = names[step] = f"{node.name} {step}"
        span = tracer.start_span(
            name, context=request[1] if request is not None else None, kind=kind, attributes=attributes
        )
        if step == "send-feedback" and request is not None:  # a feedback's puid is its response's
            puid = _puid(getattr(given, "response", None))
            if puid is not None:
                request[0].set_attribute("seldon.puid", puid)
        try:
            if not remote:
                return await work
            token = TRACEPARENT.set(_traceparent(span))
            try:
                return await work
            finally:
                TRACEPARENT.reset(token)
        except BaseException as error:
            span.record_exception(error)
            span.set_status(Status(StatusCode.ERROR, f"{type(error).__name__}: {error}"))
            raise
        finally:
            span.end()

    return hook


async def served(
    operation: str, traceparent: str | None, attributes: dict[str, str], request: Any, work: Awaitable[T]
) -> T:
    """Run one microservice request inside its span, continuing the caller's `traceparent`;
    `request` is the decoded request (its puid, when it has one, is an attribute)."""
    assert _tracer is not None
    from opentelemetry.trace import SpanKind

    with _tracer.start_as_current_span(
        operation, context=_parent(traceparent), kind=SpanKind.SERVER, attributes=attributes
    ) as span:
        # A JSON request's meta is a dict, a protobuf one's a message.
        meta = request.get("meta") if isinstance(request, dict) else getattr(request, "meta", None)
        puid = meta.get("puid") if isinstance(meta, dict) else getattr(meta, "puid", None)
        if isinstance(puid, str) and puid:
            span.set_attribute("seldon.puid", puid)
        return await work


def grpc_traceparent(metadata: Any) -> str | None:
    """The traceparent of a gRPC call's invocation metadata."""
    for key, value in metadata or ():
        if key == "traceparent":
            return value if isinstance(value, str) else bytes(value).decode("latin-1")
    return None
