"""The operator's kopf layer, kept thin: each handler hands the body kopf gives it to
`reconcile` with the API and render options set by `configure` (tests set the in-memory double).

- SeldonDeployments are watched at v1alpha2 (every version is served with one schema, so all
  objects are seen, whichever version wrote them); create, update and resume (operator start)
  all reconcile, which is idempotent.
- Deletion: owner references let the API server's garbage collector delete what a
  SeldonDeployment made, with or without the operator running.  The delete handler is optional,
  so kopf puts no finalizer on SeldonDeployments (one would block their deletion whenever the
  operator is down or uninstalled); when kopf does see a deletion it deletes the objects at once.
- Deployments labelled seldon-deployment-id: every change of one refreshes its owner's status
  (readiness); deleting one while its owner lives re-creates it.
- kopf keeps its bookkeeping in annotations, never in `status`, which is ours (Seldon's fields).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import kopf

from seldon_serving.deploy.k8s import config, reconcile
from seldon_serving.deploy.k8s.kube import (
    DEPLOYMENT_ID_LABEL,
    EVENT_SOURCE,
    SDEP_PLURAL,
    SDEP_VERSION,
    KubeApi,
    KubeError,
    connect,
)
from seldon_serving.deploy.k8s.render import RenderOptions
from seldon_serving.spec import GROUP

ANNOTATIONS_PREFIX = "operator.seldon-serving.io"  # kopf's progress and last-handled spec
RETRY_S = 15  # a failed reconcile (API server unreachable, a conflict) is retried this much later
REGISTRY = kopf.OperatorRegistry()  # ours alone: importing this module registers nothing globally

_api: KubeApi | None = None
_options: RenderOptions | None = None


def configure(api: KubeApi | None, options: RenderOptions | None) -> None:
    """Set the API and render options every handler uses (None: connect / read the environment
    when a handler first needs them)."""
    global _api, _options
    _api, _options = api, options


def _context() -> tuple[KubeApi, RenderOptions]:
    global _api, _options
    if _api is None:
        _api = connect()
    if _options is None:
        _options = config.options_from_env()
    return _api, _options


# --- handlers (plain functions: tests call them with the keyword arguments kopf passes) -------------


@kopf.on.login(registry=REGISTRY)
def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
    """kopf's own connection: the same credentials as the `kubernetes` client (in-cluster, else
    kubeconfig); a private registry does not get kopf's default login."""
    return kopf.login_via_client(**kwargs)


@kopf.on.resume(
    group=GROUP, version=SDEP_VERSION, plural=SDEP_PLURAL, registry=REGISTRY, id="resume", backoff=RETRY_S
)
@kopf.on.create(
    group=GROUP, version=SDEP_VERSION, plural=SDEP_PLURAL, registry=REGISTRY, id="create", backoff=RETRY_S
)
@kopf.on.update(
    group=GROUP, version=SDEP_VERSION, plural=SDEP_PLURAL, registry=REGISTRY, id="update", backoff=RETRY_S
)
def on_change(body: kopf.Body, logger: kopf.Logger, **_: Any) -> None:
    """Created, changed, or found at start: make the cluster match it and write its status."""
    api, options = _context()
    status = reconcile.reconcile(api, body, options)
    if status.get("description"):
        logger.info("refused: %s", status["description"])  # the Warning Event says it already
    else:
        logger.info("reconciled: %s", status.get("state"))


@kopf.on.delete(
    group=GROUP, version=SDEP_VERSION, plural=SDEP_PLURAL, registry=REGISTRY, id="delete", optional=True
)
def on_delete(body: kopf.Body, logger: kopf.Logger, **_: Any) -> None:
    """Being deleted (seen only when something else holds a finalizer, e.g. foreground deletion)."""
    api, _options_unused = _context()
    deleted = reconcile.cleanup(api, body)
    logger.info("deleted %d objects", len(deleted))


@kopf.on.event(group=GROUP, version=SDEP_VERSION, plural=SDEP_PLURAL, registry=REGISTRY, id="front-end")
def on_sdep_event(body: kopf.Body, type: str | None, logger: kopf.Logger, **_: Any) -> None:
    """A SeldonDeployment is gone: the OAuth front end (if installed) stops serving it.  A watch
    event needs no finalizer, unlike a delete handler."""
    options = _context()[1]
    if type == "DELETED" and options.front_end:
        reconcile.sync_front(body, options, deleted=True)
        logger.info("removed from the OAuth front end")


@kopf.on.event(
    group="apps",
    version="v1",
    plural="deployments",
    registry=REGISTRY,
    id="deployment",
    labels={DEPLOYMENT_ID_LABEL: kopf.PRESENT},
)
def on_deployment_event(body: kopf.Body, type: str | None, logger: kopf.Logger, **_: Any) -> None:
    """A Deployment we made changed (replicas became available, a rollout moved, it was deleted)."""
    api, options = _context()
    try:
        status = reconcile.on_child_event(api, body, type, options)
    except KubeError as exc:
        # Events are not retried; the Deployment's next change (or a resume) catches up.
        logger.warning("owner's status not refreshed: %s", exc)
        return
    if status is not None:
        logger.debug("owner's status: %s", status.get("state"))


# --- running ---------------------------------------------------------------------------------------------


def settings() -> kopf.OperatorSettings:
    """kopf's settings: standalone (one replica, no peering objects), bookkeeping in annotations
    of our prefix, no dynamic scanning (the CRD is installed before the operator, and so no
    cluster-wide RBAC on CRDs or namespaces is needed), only warnings as kopf's own Events."""
    chosen = kopf.OperatorSettings()
    chosen.peering.standalone = True
    chosen.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=ANNOTATIONS_PREFIX)
    chosen.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(prefix=ANNOTATIONS_PREFIX)
    chosen.persistence.finalizer = f"{ANNOTATIONS_PREFIX}/finalizer"
    chosen.scanning.disabled = True
    chosen.posting.level = logging.WARNING
    chosen.posting.reporting_component = EVENT_SOURCE
    # Only our Deployments are streamed to us, not every Deployment of the watched namespaces
    # (server-side selectors are kopf 1.45's; older kopf filters by the handler's labels only).
    selectors = getattr(chosen.watching, "label_selectors", None)
    if selectors is not None:
        selectors["apps", "v1", "deployments"] = DEPLOYMENT_ID_LABEL
    return chosen


def run(
    namespaces: Sequence[str] | None,
    liveness_port: int,
    options: RenderOptions,
    *,
    verbose: bool = False,
    api: KubeApi | None = None,
) -> None:
    """Run the operator until it is stopped (SIGTERM/SIGINT): watching `namespaces`, or every
    namespace when None, with kopf's liveness probe at http://0.0.0.0:<liveness_port>/healthz.
    KubeError (one sentence) when the CRD is not served or SeldonDeployments cannot be listed."""
    chosen_api = api if api is not None else connect()
    chosen_api.check_access(namespaces)
    configure(chosen_api, options)
    kopf.configure(verbose=verbose, log_format=kopf.LogFormat.FULL)
    kopf.run(
        registry=REGISTRY,
        settings=settings(),
        standalone=True,
        clusterwide=not namespaces,
        namespaces=list(namespaces or ()),
        liveness_endpoint=f"http://0.0.0.0:{liveness_port}/healthz",
    )


__all__ = [
    "ANNOTATIONS_PREFIX",
    "REGISTRY",
    "configure",
    "on_change",
    "on_delete",
    "on_deployment_event",
    "on_sdep_event",
    "run",
    "settings",
]
