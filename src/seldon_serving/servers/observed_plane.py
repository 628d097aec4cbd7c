"""The gateway's data plane with everything that watches it: Seldon's per-node client histogram,
tracing when the OTEL_* variables ask for it, and request logging for nodes with a `logger`.
One place for `seldon serve` and `seldon engine`, so both watch their graphs alike."""

from __future__ import annotations

from seldon_serving.engine import tracing
from seldon_serving.engine.plane import DataPlane
from seldon_serving.engine.request_logger import LOGGER_METRICS, RequestLogger, server_source
from seldon_serving.servers.gateway_metrics import GatewayMetrics
from seldon_serving.servers.metrics import Metrics


def observed_plane(
    metrics: Metrics, *, service: str, request_logger_url: str | None, queue_size: int, http_port: int | None
) -> tuple[DataPlane, RequestLogger]:
    """A DataPlane reporting to `metrics`, and its request logger (to close at shutdown)."""
    observer = GatewayMetrics(metrics)
    plane = DataPlane(observer=observer)
    plane.hook_factories.append(observer.node_hook)  # Seldon's per-node client histogram
    if tracing.setup(service):  # OTEL_* ask for tracing
        plane.hook_factories.append(tracing.node_hook)
        plane.request_tracer = tracing.request_span
    # Nodes with a `logger` send their requests and answers to its sink, off the hot path.
    request_logger = RequestLogger(
        default_url=request_logger_url, source=server_source(http_port), capacity=queue_size
    )
    plane.hook_factories.append(request_logger.hook_factory)
    metrics.registry.register(LOGGER_METRICS)
    return plane, request_logger
