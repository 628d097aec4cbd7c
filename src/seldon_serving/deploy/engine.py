"""`seldon engine`: the engine of one predictor, in its pod — a drop-in for Seldon's
`seldonio/engine` (the service orchestrator the operator injects as `seldon-container-engine`).

It reads the predictor the operator rendered (`ENGINE_PREDICTOR`: base64 of the PredictorSpec
JSON, every graph container's node given its endpoint), builds it with the same engine the
gateway runs, and serves Seldon's engine API: /api/v0.1|v1.0/predictions and /feedback, /ping,
/ready (every graph container reachable, not paused), /live, /pause, /unpause, /prometheus and
gRPC `seldon.protos.Seldon`.  Routers and detectors that run inside the engine keep their
state in the shared store (the install's Redis), so every replica learns as one.
"""

from __future__ import annotations

import base64
import binascii
import json
from pathlib import Path
from typing import Any

from seldon_serving.engine.deployment import build_deployment
from seldon_serving.engine.plan import check_deployment
from seldon_serving.protocol.errors import ServingError
from seldon_serving.servers.gateway_grpc import gateway_handlers
from seldon_serving.servers.gateway_rest import GatewayApp
from seldon_serving.servers.metrics import Metrics
from seldon_serving.servers.observed_plane import observed_plane
from seldon_serving.servers.runner import Edges, claim_ports, serve
from seldon_serving.settings import EngineSettings, ServerSettings
from seldon_serving.spec import GROUP, SeldonDeployment, parse_deployment
from seldon_serving.spec.graph import iter_units
from seldon_serving.state import open_store

# Seldon's engine with neither ENGINE_PREDICTOR nor ./deploymentdef.json serves this.
DEFAULT_PREDICTOR: dict[str, Any] = {
    "name": "default",
    "graph": {"name": "default", "type": "MODEL", "implementation": "SIMPLE_MODEL"},
}


class EnginePredictorError(ServingError):
    """ENGINE_PREDICTOR (or deploymentdef.json) is not a predictor this engine can run."""


def read_predictor(settings: EngineSettings) -> tuple[dict[str, Any], str]:
    """The predictor to serve and where it came from."""
    if settings.predictor:
        try:
            text = base64.b64decode(settings.predictor.strip(), validate=True).decode("utf-8")
        except (binascii.Error, ValueError):
            raise EnginePredictorError("ENGINE_PREDICTOR is not base64 (of the predictor's JSON)") from None
        return _json(text, "ENGINE_PREDICTOR"), "ENGINE_PREDICTOR"
    path = Path(settings.predictor_file)
    if path.exists():
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise EnginePredictorError(f"cannot read {path}: {exc.strerror}") from None
        return _json(text, str(path)), str(path)
    return dict(DEFAULT_PREDICTOR), "the default SIMPLE_MODEL predictor"


def _json(text: str, source: str) -> dict[str, Any]:
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise EnginePredictorError(f"{source} is not a predictor's JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise EnginePredictorError(f"{source} must hold one predictor (a JSON object)")
    return doc


def engine_deployment(predictor: dict[str, Any], name: str, namespace: str, source: str) -> SeldonDeployment:
    """The one-predictor SeldonDeployment this engine runs.  `traffic` and `shadow` are the
    Ambassador Mappings' business, not the engine's: a shadow's engine serves what reaches it."""
    own = {k: v for k, v in predictor.items() if k not in ("traffic", "shadow")}
    version = "v1alpha1" if "componentSpec" in own and "componentSpecs" not in own else "v1alpha2"
    name = name or str(own.get("name") or "seldon-deployment")
    manifest = {
        "apiVersion": f"{GROUP}/{version}",
        "kind": "SeldonDeployment",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"name": name, "predictors": [own]},
    }
    sdep = parse_deployment(manifest, source=source)
    check_deployment(sdep)
    return sdep


def engine_edges(sdep: SeldonDeployment, settings: EngineSettings, server: ServerSettings) -> Edges:
    """One worker's edges: the deployment built after the fork (its connections are this worker's)."""
    store = open_store(settings.state_store) if settings.state_store else None
    metrics = Metrics()
    plane, request_logger = observed_plane(
        metrics,
        service="seldon-engine",
        request_logger_url=settings.request_logger_url,
        queue_size=settings.request_logger_queue,
        http_port=server.http_port,
    )
    plane.install(
        build_deployment(
            sdep,
            namespace=settings.namespace,
            store=store,
            max_message=server.max_message,
            node_tls=server.node_tls,
        )
    )

    async def stop() -> None:
        await plane.close()
        await request_logger.close()  # queued events get a moment; the rest are counted dropped
        if store is not None:
            store.close()

    return Edges(
        asgi_app=GatewayApp(plane, metrics, max_body=server.max_message),
        grpc_handlers=gateway_handlers(plane, None),
        on_stop=stop,
    )


def serve_engine(settings: EngineSettings, server: ServerSettings) -> int:
    predictor, source = read_predictor(settings)
    # Checked before the ports are taken: a bad predictor fails the pod at once, saying why.
    sdep = engine_deployment(predictor, settings.deployment_name, settings.namespace, source)
    claims = claim_ports(server)
    nodes = ", ".join(unit.name for _, unit in iter_units(sdep.spec.predictors[0].graph))
    announce = (
        f"seldon engine: deployment {sdep.spec.name or sdep.metadata.name}, predictor "
        f"{sdep.spec.predictors[0].name} ({nodes}) from {source}; {server.addresses()}"
    )
    factory = lambda: engine_edges(sdep, settings, server)  # noqa: E731
    return serve(factory, server, announce=announce, claims=claims)
