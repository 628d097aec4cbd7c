"""The OAuth front end of a cluster install (`seldon serve --oauth --cluster-engines`): it runs
no graph; each deployment's calls go to its predictors' engines on the cluster, split by
`traffic` and mirrored to shadows as the Ambassador Mappings do, after the token check.

The operator writes every SeldonDeployment it serves into the install's shared store; the front
end's control plane builds these forwarding deployments from them.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from seldon_serving.deploy.k8s import names
from seldon_serving.deploy.k8s.render import ENGINE_HTTP_PORT
from seldon_serving.deploy.records import Records
from seldon_serving.engine.deployment import Deployment, Predictor, traffic_shares
from seldon_serving.engine.graph import GraphNode
from seldon_serving.engine.remote import EngineRunner
from seldon_serving.servers.oauth import OAuthService
from seldon_serving.settings import DEFAULT_MAX_MESSAGE, NodeTls
from seldon_serving.spec import SeldonDeployment, deployment_name
from seldon_serving.spec.graph import find_container, iter_units
from seldon_serving.state.base import StateStore

ENGINE_ADDRESS = "seldon.io/engine-address"  # predictor annotation: host:port of its engines


def engine_address(deployment: str, predictor: str, namespace: str) -> str:
    """Where a predictor's engines answer on the cluster: its Service, as `render` names it."""
    service = names.predictor_service_name(deployment, predictor)
    return f"{service}.{namespace}.svc.cluster.local.:{ENGINE_HTTP_PORT}"


def front_manifest(manifest: dict[str, Any], namespace: str) -> dict[str, Any]:
    """What the operator stores for the front end: the manifest, each predictor annotated with
    the address of its engines (so the front end needs no cluster API of its own), unless the
    user annotated one (engines elsewhere)."""
    out = copy.deepcopy(manifest)
    spec = out.get("spec") or {}
    name = str(spec.get("name") or (out.get("metadata") or {}).get("name") or "")
    for predictor in spec.get("predictors") or []:
        annotations = dict(predictor.get("annotations") or {})
        address = engine_address(name, str(predictor.get("name", "")), namespace)
        annotations.setdefault(ENGINE_ADDRESS, address)
        predictor["annotations"] = annotations
    return out


def register_with_front(store: StateStore, manifest: dict[str, Any], namespace: str, name: str) -> str:
    """Store (or update) a SeldonDeployment for the front end, its OAuth client included:
    "created", "configured" or "unchanged"."""
    records = Records(store, OAuthService(store), "operator")
    outcome, _ = records.apply(namespace, name, front_manifest(manifest, namespace), None)
    return outcome


def unregister_from_front(store: StateStore, namespace: str, name: str) -> bool:
    return Records(store, OAuthService(store), "operator").delete(namespace, name)


def build_forwarding_deployment(
    sdep: SeldonDeployment,
    *,
    namespace: str = "default",
    base_dir: Path | None = None,
    store: StateStore | None = None,
    max_message: int = DEFAULT_MAX_MESSAGE,
    execution: str = "inline",
    node_tls: NodeTls | None = None,
) -> Deployment:
    """`sdep` as the front end serves it: one forwarding node per predictor (same signature as
    `engine.deployment.build_deployment`, so the control plane takes either); `node_tls`: the
    engines are called over https."""
    name = deployment_name(sdep)
    shares = traffic_shares(sdep)
    predictors = []
    for index, spec in enumerate(sdep.spec.predictors):
        given = (spec.annotations or {}).get(ENGINE_ADDRESS)
        host, _, port = str(given or engine_address(name, spec.name, namespace)).rpartition(":")
        runner = EngineRunner(name, host, int(port), max_message, tls=node_tls)
        units = [unit for _, unit in iter_units(spec.graph)]
        images = {unit.name: find_container(spec, unit.name) for unit in units}
        predictors.append(
            Predictor(
                name=spec.name,
                root=GraphNode(name=name, runner=runner, does_input=True, does_feedback=True),
                traffic=shares[index],
                shadow=bool(spec.shadow),
                # What feedback's routing and requestPath are matched against: the engine's nodes.
                node_names=frozenset(unit.name for unit in units),
                node_paths=frozenset(
                    (unit, container.image)
                    for unit, container in images.items()
                    if container and container.image
                ),
                forwards=True,
            )
        )
    return Deployment(name=name, namespace=namespace, manifest=sdep, predictors=predictors)
