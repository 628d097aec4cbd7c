"""The local control plane of one worker process: keeps the worker's data plane in step
with the deployment records, and answers the admin API (apply / get / delete / pause).

Every worker runs one.  Applies can arrive at any worker; the others see them by
polling the records' change counter (every `poll_interval` seconds) and rebuild only
the deployments whose generation moved.  An apply returns once every live worker
serves the new generation, so the caller's next request finds it wherever it lands.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from pathlib import Path
from typing import Any, Protocol

from seldon_serving.deploy.files import code_fingerprint, user_classes
from seldon_serving.deploy.records import UNCHANGED, Record, Records, oauth_credentials, worker_id
from seldon_serving.engine import experiments
from seldon_serving.engine.deployment import Deployment, build_deployment
from seldon_serving.engine.plan import check_deployment, check_servers_installed
from seldon_serving.engine.plane import DEFAULT_NAMESPACE, PROBE_INTERVAL, DataPlane
from seldon_serving.protocol.errors import BadRequest, DeploymentNotFound, ServingError
from seldon_serving.servers import logs
from seldon_serving.settings import DEFAULT_EXECUTION, DEFAULT_MAX_MESSAGE, NodeTls
from seldon_serving.spec import (
    DeploymentState,
    ManifestError,
    SeldonDeployment,
    deployment_name,
    parse_deployment,
)
from seldon_serving.state.base import StateStore

log = logging.getLogger("seldon_serving.control")

POLL_INTERVAL = 0.2
PUBLISH_INTERVAL = 1.0  # seconds between publishes of this worker's A/B counts to the store
APPLY_WAIT = 60.0  # seconds an apply waits for the other workers to serve it


class Builder(Protocol):
    """`engine.deployment.build_deployment`, or the cluster front end's forwarding builder."""

    def __call__(
        self,
        sdep: SeldonDeployment,
        *,
        namespace: str = ...,
        base_dir: Path | None = ...,
        store: StateStore | None = ...,
        max_message: int = ...,
        execution: str = ...,
        node_tls: NodeTls | None = ...,
    ) -> Deployment: ...


class ControlPlane:
    def __init__(
        self,
        records: Records,
        plane: DataPlane,
        store: StateStore | None,
        *,
        poll_interval: float = POLL_INTERVAL,
        max_message: int = DEFAULT_MAX_MESSAGE,
        builder: Builder = build_deployment,
        execution: str = DEFAULT_EXECUTION,
        runs_nodes: bool = True,
        oauth: bool = False,
        node_tls: NodeTls | None = None,
    ) -> None:
        self.node_tls = node_tls  # TLS to remote graph nodes (None: plain text)
        self.execution = execution  # how user classes whose manifest names no mode run
        # The OAuth front end is on: a deployment is reached only with a token of its own.
        self.oauth = oauth
        # Whether graphs run here (model servers need their framework installed), or elsewhere
        # (the cluster front end forwards to engines).
        self.runs_nodes = runs_nodes
        self.records = records
        self.builder = builder  # how a manifest becomes a running deployment
        self.plane = plane
        self.store = store  # where routers and detectors keep their state
        self.poll_interval = poll_interval
        self.max_message = max_message  # of the gRPC channels to remote nodes
        self.worker = worker_id()
        self._loaded: dict[tuple[str, str], int] = {}  # (namespace, name) -> generation built
        self._version = -1
        self._lock = asyncio.Lock()
        self._poller: asyncio.Task[None] | None = None
        self._prober: asyncio.Task[None] | None = None
        self._publisher: asyncio.Task[None] | None = None
        self._publishing = asyncio.Lock()  # one publish (or stats delete) at a time
        self._unsent: dict[str, dict[str, Any]] = {}  # counts a failed publish keeps for the next

    # --- lifecycle (Edges.on_start / on_stop) ---------------------------------------------------

    async def start(self) -> None:
        await self.sync()
        self._poller = asyncio.create_task(self._poll())
        self._prober = asyncio.create_task(self.plane.probe_forever(PROBE_INTERVAL, self._readiness_changed))
        if self.store is not None:
            self._publisher = asyncio.create_task(self._publish_forever())

    async def stop(self) -> None:
        if self._publisher is not None:
            async with self._publishing:  # never cut a publish in half: its counts would be sent twice
                self._publisher.cancel()
        for task in (self._poller, self._prober, self._publisher):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        with contextlib.suppress(Exception):
            await self.publish()  # what this worker counted since its last publish
        with contextlib.suppress(Exception):
            self.records.forget_worker(self.worker)
        await self.plane.close()

    # --- A/B statistics ---------------------------------------------------------------------------

    async def _publish_forever(self) -> None:
        while True:
            await asyncio.sleep(PUBLISH_INTERVAL)
            try:
                await self.publish()
            except Exception as exc:  # kept for the next try; publishing must never stop
                log.warning("publishing A/B statistics failed: %s", exc)

    async def publish(self) -> None:
        """Add this worker's counts since the last publish to the store's (the whole server's)."""
        if self.store is None:
            return
        store = self.store
        async with self._publishing:
            for key, delta in self.plane.experiments.take():
                kept = self._unsent.pop(key, None)
                self._unsent[key] = delta if kept is None else experiments.merge(kept, delta)
            if not self._unsent:
                return
            batch, self._unsent = self._unsent, {}

            def write() -> None:
                for key, delta in list(batch.items()):
                    store.update(experiments.NAMESPACE, key, functools.partial(_merged, delta))
                    del batch[key]

            try:
                await asyncio.to_thread(write)
            finally:
                for key, delta in batch.items():  # not written: merged into the next publish
                    kept = self._unsent.pop(key, None)
                    self._unsent[key] = delta if kept is None else experiments.merge(delta, kept)

    async def _drop_statistics(self, namespace: str, name: str) -> None:
        if self.store is None:
            return
        async with self._publishing:
            key = f"{namespace}/{name}"
            self._unsent.pop(key, None)
            self.store.delete(experiments.NAMESPACE, key)

    def _experiments(self, record: Record) -> list[dict[str, Any]]:
        """status.experiments: the stored statistics of this deployment (the generation that
        counted them may be older than the record's when a re-apply failed to build)."""
        if self.store is None:
            return []
        stored = self.store.get(experiments.NAMESPACE, record.key)
        if not isinstance(stored, dict) or float((stored.get("epoch") or [0.0])[0]) != record.created:
            return []
        return experiments.summarize(stored)

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self.poll_interval)
            try:
                if self.records.version() != self._version:
                    await self.sync()
            except Exception:  # a broken poll must not stop future ones
                log.exception("syncing deployments failed")

    # --- reconciling ----------------------------------------------------------------------------

    async def sync(self) -> None:
        """Build what changed, drop what was deleted, then tell the others we caught up."""
        async with self._lock:
            version = self.records.version()
            records = self.records.all()
            wanted = {(r.namespace, r.name): r for r in records}
            for key in [k for k in self._loaded if k not in wanted]:
                self.plane.remove(*key)
                del self._loaded[key]
                await self._drop_statistics(*key)
                log.info("deployment %s/%s deleted", *key)
            for key, record in wanted.items():
                if self._loaded.get(key) != record.generation:
                    await self._build(record)
                    self._loaded[key] = record.generation
            self.plane.paused = self.records.paused()
            self._version = version
            self.records.report(self.worker, version)

    async def _build(self, record: Record) -> None:
        try:
            sdep = parse_deployment(record.manifest, source=f"{record.namespace}/{record.name}")
            # Compiling may import user code and run its load(): off the event loop, so the
            # worker keeps answering the deployments it already serves meanwhile.
            deployment = await asyncio.to_thread(self._compile, sdep, record)
        except ServingError as exc:
            # The user's own exception (an import or load() failure) is logged with its traceback.
            self._failed(record, _sentence(exc), logs.user_cause(exc) or None)
            return
        except Exception as exc:  # a bug of ours
            self._failed(record, f"internal error: {type(exc).__name__}: {exc}", exc)
            return
        self.plane.install(deployment, (record.created, record.generation))
        # Seldon's graph-ready check before saying Available: a remote node may not answer.
        why = await self.plane.probe_one(record.namespace, record.name) or self._unreachable(record)
        state = DeploymentState.NOT_READY if why else DeploymentState.AVAILABLE
        self.records.set_status(record, _status(record, state, why or ""))
        level = logging.INFO if _leads() else logging.DEBUG
        log.log(
            level, "deployment %s/%s generation %d serving", record.namespace, record.name, record.generation
        )

    async def _readiness_changed(self, key: tuple[str, str], why: str | None) -> None:
        """A probe found a deployment's remote node down (`why`) or back (None): its status says so."""
        record = self.records.get(*key)
        if record is None or self._loaded.get(key) != record.generation:
            return  # being rebuilt: the build writes its status
        if _leads():
            why = why or self._unreachable(record)
            state = DeploymentState.NOT_READY if why else DeploymentState.AVAILABLE
            self.records.set_status(record, _status(record, state, why or ""))
            log.log(
                logging.WARNING if why else logging.INFO, "deployment %s/%s %s", *key, why or "ready again"
            )

    def _unreachable(self, record: Record) -> str | None:
        """Why no client can ever call a deployment that serves (the OAuth front end issues
        tokens only for deployments with credentials), or None."""
        key, secret = oauth_credentials(record.manifest)
        if not self.oauth or (key and secret):
            return None
        return (
            "the OAuth front end is on (--oauth) and this deployment has no spec.oauth_key and "
            "spec.oauth_secret, so no token can be issued for it and no client can call it: add both"
        )

    def _failed(self, record: Record, reason: str, cause: BaseException | None) -> None:
        # As a failed rollout on a cluster: the generation that served before keeps serving.
        if self.plane.get(record.namespace, record.name) is not None:
            reason = f"generation {record.generation} failed, the previous one keeps serving: {reason}"
        else:
            self.plane.mark_failed(record.namespace, record.name, reason)
        if _leads():  # every worker fails alike: one of them says so
            exc_info = (type(cause), cause, cause.__traceback__) if cause is not None else None
            log.error("deployment %s/%s failed: %s", record.namespace, record.name, reason, exc_info=exc_info)
        self.records.set_status(record, _status(record, "Failed", reason))

    def _compile(self, sdep: Any, record: Record) -> Deployment:
        base_dir = Path(record.base_dir) if record.base_dir else None
        return self.builder(
            sdep,
            namespace=record.namespace,
            base_dir=base_dir,
            store=self.store,
            max_message=self.max_message,
            execution=self.execution,
            node_tls=self.node_tls,
        )

    # --- admin API (called by the gateway's REST edge) --------------------------------------------

    async def apply(self, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict) or not isinstance(body.get("manifest"), dict):
            raise BadRequest('expected {"manifest": <SeldonDeployment>, "base_dir": <directory>}')
        manifest = body["manifest"]
        base_dir = body.get("base_dir")
        if base_dir is not None and not isinstance(base_dir, str):
            raise BadRequest("base_dir must be a directory path")
        try:
            sdep = parse_deployment(manifest, source=body.get("source") or None)
            plans = check_deployment(sdep)
            if self.runs_nodes:  # refused before it is stored: no deployment is left Failed
                check_servers_installed(sdep, plans)
            experiments.config_from(sdep.metadata.annotations, sdep.spec.annotations)
        except (ManifestError, experiments.ExperimentConfigError) as exc:
            raise BadRequest(str(exc)) from None
        name = deployment_name(sdep)
        namespace = sdep.metadata.namespace or body.get("namespace") or DEFAULT_NAMESPACE
        # Computed here, where the classes will be loaded from (the caller only names the
        # directory): edited class files make an unchanged manifest a change.
        code = await asyncio.to_thread(code_fingerprint, user_classes(plans), base_dir)
        outcome, record = self.records.apply(namespace, name, manifest, base_dir, code)
        if outcome != UNCHANGED:
            await self.sync()
            await self._wait_for_workers()
        return {"result": outcome, "deployment": self._view(record)}

    async def delete(self, namespace: str, name: str) -> dict[str, Any]:
        if not self.records.delete(namespace, name):
            raise DeploymentNotFound(f"no deployment named '{name}' in namespace '{namespace}'")
        await self.sync()
        await self._drop_statistics(namespace, name)
        await self._wait_for_workers()
        return {"result": "deleted", "name": name, "namespace": namespace}

    async def get(self, namespace: str, name: str) -> dict[str, Any]:
        record = self.records.get(namespace, name)
        if record is None:
            raise DeploymentNotFound(f"no deployment named '{name}' in namespace '{namespace}'")
        await self._publish_quietly()
        return self._view(record)

    async def list(self) -> dict[str, Any]:
        await self._publish_quietly()
        return {"items": [self._view(r) for r in self.records.all()]}

    async def _publish_quietly(self) -> None:
        # This worker's latest counts in what `get` shows (the others' are at most a second old).
        try:
            await self.publish()
        except Exception as exc:
            log.warning("publishing A/B statistics failed: %s", exc)

    async def set_paused(self, paused: bool) -> None:
        self.records.set_paused(paused)
        await self.sync()
        await self._wait_for_workers()

    def _view(self, record: Record) -> dict[str, Any]:
        """The manifest as stored plus what the cluster would add: namespace, generation, status."""
        manifest = dict(record.manifest)
        metadata = dict(manifest.get("metadata") or {})
        metadata.setdefault("name", record.name)
        metadata["namespace"] = record.namespace
        metadata["generation"] = record.generation
        metadata["creationTimestamp"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(record.created))
        manifest["metadata"] = metadata
        status = self.records.status(record.namespace, record.name) or {"state": "Creating"}
        running = self.plane.get(record.namespace, record.name)
        predictors = running.describe() if running is not None else []
        # Live detail beside the stored status: how each node runs and what state it keeps.
        nodes = {p["predictor"]: p["nodes"] for p in predictors}
        status["predictorStatus"] = [
            {**entry, "nodes": nodes[entry.get("name")]} if entry.get("name") in nodes else entry
            for entry in status.get("predictorStatus") or []
        ]
        found = self._experiments(record)
        if found:  # a deployment with no router and no traffic split has none
            status["experiments"] = found
        manifest["status"] = status
        return {
            "manifest": manifest,
            "base_dir": record.base_dir,
            "created": record.created,
            "predictors": predictors,
        }

    async def _wait_for_workers(self) -> None:
        target = self.records.version()
        deadline = time.monotonic() + APPLY_WAIT
        while time.monotonic() < deadline:
            # A worker that has not reported yet is still starting: it loads everything
            # before it opens its ports, so only the ones that reported can be behind.
            if all(version >= target for version in self.records.live_workers().values()):
                return
            await asyncio.sleep(0.02)
        log.warning("not every worker caught up with change %d within %g s", target, APPLY_WAIT)


def _status(record: Record, state: str, description: str) -> dict[str, Any]:
    predictors = (record.manifest.get("spec") or {}).get("predictors") or []
    entries = []
    for predictor in predictors:
        replicas = predictor.get("replicas")
        replicas = replicas if isinstance(replicas, int) else 1
        entries.append(
            {
                "name": str(predictor.get("name", "")),
                "replicas": replicas,
                "replicasAvailable": replicas if state == "Available" else 0,
            }
        )
    return {"state": state, "description": description, "predictorStatus": entries}


def _merged(delta: dict[str, Any], current: Any) -> Any:
    return experiments.merge(current, delta)


def _leads() -> bool:
    """Whether this process logs what every worker does alike (the first worker, or the only one)."""
    return logs.worker_index() in (None, 0)


def _sentence(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]
