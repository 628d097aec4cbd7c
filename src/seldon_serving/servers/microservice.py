"""Assemble a component microservice: user object -> adapter -> data plane -> edges."""

from __future__ import annotations

import inspect
import os
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from seldon_serving.components.adapter import ComponentAdapter
from seldon_serving.servers.component_plane import ComponentPlane, metrics_sink
from seldon_serving.servers.metrics import Metrics
from seldon_serving.servers.microservice_grpc import microservice_handlers
from seldon_serving.servers.microservice_rest import MicroserviceApp
from seldon_serving.servers.runner import Edges, ServeOptions, serve
from seldon_serving.state.base import StateHandle
from seldon_serving.state.sqlite import SqliteStore


@dataclass(slots=True)
class MicroserviceSettings:
    service_type: str = "MODEL"
    unit_id: str | None = None
    image: str | None = None
    threads: int = 0  # 0: call sync user methods inline; N: in a pool of N threads
    labels: dict[str, str] = field(default_factory=dict)


def settings_from_env(service_type: str) -> MicroserviceSettings:
    """Seldon's environment conventions for a graph container."""
    unit_id = os.environ.get("PREDICTIVE_UNIT_ID")
    image = os.environ.get("PREDICTIVE_UNIT_IMAGE")
    labels = {
        "deployment_name": os.environ.get("SELDON_DEPLOYMENT_ID", ""),
        "predictor_name": os.environ.get("PREDICTOR_ID", ""),
        "model_name": unit_id or "",
        "model_image": image or "",
    }
    return MicroserviceSettings(service_type=service_type, unit_id=unit_id, image=image, labels=labels)


def component_state(user_class: type, unit: str, state_dir: str | None, workers: int) -> StateHandle | None:
    """A state handle for a class that keeps state (the built-in routers and detectors).

    With --state-dir the state is kept in SQLite there and survives restarts; with several
    workers and no state dir it is still shared (a temporary SQLite file), so no feedback is
    lost to the worker that did not route the request.  A single worker keeps it in memory.
    """
    try:
        accepts = "state" in inspect.signature(user_class).parameters
    except (TypeError, ValueError):
        accepts = False
    if not accepts or (state_dir is None and workers <= 1):
        return None
    directory = state_dir if state_dir is not None else tempfile.mkdtemp(prefix="seldon-component-state-")
    os.makedirs(directory, exist_ok=True)
    return StateHandle(SqliteStore(os.path.join(directory, "state.db")), "components", f"microservice/{unit}")


def microservice_edges(user_object: Any, settings: MicroserviceSettings, options: ServeOptions) -> Edges:
    """Build the edges of one worker (called after fork, so `load()` runs per worker)."""
    executor = ThreadPoolExecutor(settings.threads) if settings.threads > 0 else None
    metrics = Metrics()
    adapter = ComponentAdapter(
        user_object,
        unit_id=settings.unit_id,
        image=settings.image,
        service_type=settings.service_type,
        executor=executor,
        on_metrics=metrics_sink(metrics, settings.labels),
    )
    adapter.load()
    plane = ComponentPlane(adapter, metrics, settings.labels)
    return Edges(
        asgi_app=MicroserviceApp(plane, max_body=options.max_message),
        grpc_handlers=microservice_handlers(plane),
    )


def run_microservice(user_object: Any, settings: MicroserviceSettings, options: ServeOptions) -> int:
    parts = []
    if options.http_port is not None:
        parts.append(f"REST on {options.host}:{options.http_port}")
    if options.grpc_port is not None:
        parts.append(f"gRPC on {options.host}:{options.grpc_port}")
    announce = (
        f"seldon microservice {type(user_object).__name__} ({settings.service_type}): "
        f"{', '.join(parts)}, {options.workers} worker(s)"
    )
    return serve(lambda: microservice_edges(user_object, settings, options), options, announce=announce)
