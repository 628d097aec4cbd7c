"""Assemble a component microservice: class -> user object -> adapter -> data plane -> edges."""

from __future__ import annotations

import gc
import logging
import shutil
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from seldon_serving.components.adapter import ComponentAdapter
from seldon_serving.components.batching import Batcher, why_not_batched
from seldon_serving.components.loader import instantiate, load_user_class, takes_state
from seldon_serving.components.metadata import parse_model_metadata
from seldon_serving.components.parameters import parse_parameters
from seldon_serving.engine import tracing
from seldon_serving.protocol.message import SeldonMessage
from seldon_serving.servers.component_plane import ComponentPlane, metrics_sink
from seldon_serving.servers.metrics import Metrics
from seldon_serving.servers.microservice_grpc import microservice_handlers
from seldon_serving.servers.microservice_rest import MicroserviceApp, metrics_app
from seldon_serving.servers.runner import Edges, serve
from seldon_serving.settings import ComponentSettings, ServerSettings
from seldon_serving.state import open_store
from seldon_serving.state.base import StateHandle
from seldon_serving.state.sqlite import SqliteStore

log = logging.getLogger("seldon_serving.microservice")


def component_state(
    user_class: type, component: ComponentSettings, state_dir: Path | None
) -> StateHandle | None:
    """A state handle for a class that keeps state (the built-in routers and detectors): in the
    shared store if one is named, else in SQLite under `state_dir`; None for the others."""
    if not takes_state(user_class):
        return None
    key = component.state_key or f"microservice/{component.unit_id or component.interface_name}"
    if component.state_store:
        return StateHandle(open_store(component.state_store), "components", key)
    if state_dir is None:
        return None
    return StateHandle(SqliteStore(state_dir / "state.db"), "components", key)


def microservice_edges(
    user_object: Any, component: ComponentSettings, server: ServerSettings, model_metadata: Any = None
) -> Edges:
    """Build the edges of one worker (called after fork, so `load()` runs per worker)."""
    executor = ThreadPoolExecutor(component.threads) if component.threads > 0 else None
    tracing.setup(component.unit_id or type(user_object).__name__)  # before the edges: they check it
    metrics = Metrics()
    adapter = ComponentAdapter(
        user_object,
        unit_id=component.unit_id,
        image=component.image,
        service_type=component.service_type,
        executor=executor,
        on_metrics=metrics_sink(metrics, component.labels),
        include_metrics_in_response=component.include_metrics,
        model_metadata=model_metadata,
    )
    adapter.load()
    batcher = component_batcher(adapter, component)
    # What exists now (modules, the model) lives as long as the worker: frozen, the oldest
    # generation's collections never scan it again.  Requests reach that generation when they
    # stay alive a while (waiting for their batch: a tripled p99 under 64 clients) or allocate
    # much (a 10,000-row body): each such collection scanned the whole heap.
    gc.collect()
    gc.freeze()
    plane = ComponentPlane(
        adapter,
        metrics,
        component.labels,
        batcher=batcher,
        model_name=component.model_name,
    )
    return Edges(
        asgi_app=MicroserviceApp(plane, max_body=server.max_message),
        grpc_handlers=microservice_handlers(plane),
        metrics_app=metrics_app(metrics, server.metrics_path) if server.metrics_port is not None else None,
    )


def component_batcher(adapter: ComponentAdapter, component: ComponentSettings) -> Batcher | None:
    """The batcher of the class's predict when `--max-batch-size` asks for one and the class
    can be batched (else a warning says why not)."""
    if component.max_batch_size <= 1:
        return None
    name = type(adapter.user_object).__name__
    problem = why_not_batched(adapter.methods)
    if problem is not None:
        log.warning("adaptive batching is off for %s: %s", name, problem)
        return None

    async def predict(msg: SeldonMessage, raw: bool) -> SeldonMessage:
        return await adapter.predict(msg, raw=raw)

    return Batcher(
        predict,
        max_batch_size=component.max_batch_size,
        max_batch_time_ms=component.max_batch_time_ms,
        node=component.unit_id or name,
        labels=component.labels,
    )


def run_microservice(component: ComponentSettings, server: ServerSettings) -> int:
    """Load the user's class, build it with its typed parameters and its state, and serve it.

    A stateful class keeps its state in the shared store `component.state_store` names (every
    replica, on any machine, learns as one), else in SQLite under `component.state_dir` (kept
    across restarts); with several workers and no state dir, in a temporary directory removed at exit,
    so that every worker sees the same state (no feedback is lost to the worker that did not
    route the request).  A single worker without a state dir keeps it in memory.
    """
    user_class = load_user_class(component.interface_name, [Path.cwd()])
    parameters = parse_parameters(component.parameters)
    model_metadata = parse_model_metadata(component.model_metadata)
    temporary = None
    state_dir = component.state_dir
    if state_dir is None and not component.state_store and server.workers > 1 and takes_state(user_class):
        temporary = state_dir = Path(tempfile.mkdtemp(prefix="seldon-component-state-"))
    try:
        user_object = instantiate(user_class, parameters, component_state(user_class, component, state_dir))
        announce = (
            f"seldon microservice {user_class.__name__} ({component.service_type}): "
            f"{server.addresses()}, {server.workers} worker(s)"
        )
        if component.max_batch_size > 1:
            announce += (
                f", batching up to {component.max_batch_size} requests per predict "
                f"(waiting at most {component.max_batch_time_ms:g} ms)"
            )
        factory = lambda: microservice_edges(user_object, component, server, model_metadata)  # noqa: E731
        return serve(factory, server, announce=announce)
    finally:
        if temporary is not None:
            shutil.rmtree(temporary, ignore_errors=True)
