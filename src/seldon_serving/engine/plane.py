"""The gateway's data plane: the one place both gateway edges (REST and gRPC) call.

A registry of running Deployments keyed by (namespace, name).  Swapping a deployment
(re-apply) replaces the registry entry at once; requests already holding the old
Deployment object finish on it, and its runners are closed only when the last of
them is done (or after a grace period).  A deployment whose compilation failed is
remembered with its reason, so a request for it is told why it is not served.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Protocol, TypeVar

from seldon_serving.engine.deployment import Deployment, Observer, Predictor
from seldon_serving.engine.experiments import Epoch, Experiments, Tally
from seldon_serving.engine.graph import GraphNode, NodeHook
from seldon_serving.engine.remote import connect_failure
from seldon_serving.protocol.errors import DeploymentNotFound, NodeTimeout, SeldonError
from seldon_serving.protocol.message import Feedback, SeldonMessage

T = TypeVar("T")
log = logging.getLogger("seldon_serving.plane")

DEFAULT_NAMESPACE = "default"
RETIRE_GRACE = 30.0  # seconds a swapped-out deployment may keep serving its in-flight requests
METADATA_TIMEOUT = 5.0
_READY_CACHE = 2.0  # seconds a readiness probe of remote nodes is reused (probes come often)
PROBE_INTERVAL = 5.0  # seconds between the control plane's probes of remote nodes (Seldon's)

Key = tuple[str, str]  # (namespace, name)


class PlaneObserver(Observer, Protocol):
    """An Observer that also times every request (Prometheus request histogram)."""

    def request(self, deployment: str, predictor: str, method: str, code: int, seconds: float) -> None: ...


HookFactory = Callable[[Deployment, Predictor, GraphNode], NodeHook | None]
"""Gives one node of one predictor of a deployment being installed its hook, or None (request
logging, tracing and per-node metrics register one each)."""


RequestTracer = Callable[[Deployment, Predictor, str, Awaitable[Any]], Awaitable[Any]]
"""Runs one request (`method`: predictions or feedback) inside its trace span (engine/tracing.py)."""


class DataPlane:
    def __init__(self, *, observer: PlaneObserver | None = None, retire_grace: float = RETIRE_GRACE) -> None:
        self.observer = observer
        self.retire_grace = retire_grace
        self.paused = False
        self._deployments: dict[Key, Deployment] = {}
        self._by_name: dict[str, list[Deployment]] = {}
        self._failed: dict[Key, str] = {}
        self._retiring: set[asyncio.Task[None]] = set()
        self._ready_checked = 0.0
        self._unreachable: dict[Key, str] = {}  # deployments with a node down at the last probe
        self.experiments = Experiments()  # A/B statistics of this worker, until published
        self.hook_factories: list[HookFactory] = []
        # Runs each request inside its span (engine/tracing.py's request_span): None without tracing.
        self.request_tracer: RequestTracer | None = None

    # --- the registry ------------------------------------------------------------------------

    def install(self, deployment: Deployment, epoch: Epoch = (0.0, 0)) -> None:
        """Serve `deployment` (replacing any same-named one, which is retired, not cut off);
        `epoch` (creation time, generation) names the generation its A/B statistics belong to."""
        key = (deployment.namespace, deployment.name)
        deployment.observer = self.observer
        self.experiments.track(deployment, epoch)
        if self.hook_factories:
            self._hook(deployment)
        old = self._deployments.get(key)
        self._deployments[key] = deployment
        self._failed.pop(key, None)
        self._reindex()
        self._ready_checked = 0.0  # new nodes: probe again
        if old is not None and old is not deployment:
            self._retire(old)

    def _hook(self, deployment: Deployment) -> None:
        for predictor in deployment.predictors:
            for node in predictor.root.walk():
                found = (factory(deployment, predictor, node) for factory in self.hook_factories)
                node.hooks = tuple(hook for hook in found if hook is not None)

    def mark_failed(self, namespace: str, name: str, reason: str) -> None:
        """The deployment could not be built: stop serving it and tell callers why."""
        self.remove(namespace, name)
        self._failed[(namespace, name)] = reason

    def remove(self, namespace: str, name: str) -> None:
        key = (namespace, name)
        self._failed.pop(key, None)
        self.experiments.forget(namespace, name)
        old = self._deployments.pop(key, None)
        if old is not None:
            self._reindex()
            self._retire(old)

    def get(self, namespace: str, name: str) -> Deployment | None:
        return self._deployments.get((namespace, name))

    def failure(self, namespace: str, name: str) -> str | None:
        return self._failed.get((namespace, name))

    def keys(self) -> list[Key]:
        return sorted({*self._deployments, *self._failed})

    def deployments(self) -> list[Deployment]:
        return list(self._deployments.values())

    def _reindex(self) -> None:
        by_name: dict[str, list[Deployment]] = {}
        for deployment in self._deployments.values():
            by_name.setdefault(deployment.name, []).append(deployment)
        self._by_name = by_name

    def find(self, name: str | None, namespace: str | None = None) -> Deployment:
        """The deployment a request names; without a namespace, by name alone ("default" wins a tie);
        without a name, the only deployment there is."""
        if not name:
            if len(self._deployments) == 1:
                return next(iter(self._deployments.values()))
            if not self._deployments:
                raise DeploymentNotFound(self._nothing_running())
            raise DeploymentNotFound(
                f"{len(self._deployments)} deployments are running; name one with /seldon/<name>/... "
                "or the header (gRPC metadata) 'seldon: <name>'"
            )
        if namespace:
            found = self._deployments.get((namespace, name))
            if found is not None:
                return found
            raise DeploymentNotFound(self._not_found(name, namespace))
        candidates = self._by_name.get(name)
        if candidates:
            if len(candidates) == 1:
                return candidates[0]
            for candidate in candidates:
                if candidate.namespace == DEFAULT_NAMESPACE:
                    return candidate
            spaces = ", ".join(sorted(c.namespace for c in candidates))
            raise DeploymentNotFound(
                f"deployment '{name}' exists in several namespaces ({spaces}); "
                f"use /seldon/<namespace>/{name}/... or the header 'namespace'"
            )
        raise DeploymentNotFound(self._not_found(name, None))

    def _nothing_running(self) -> str:
        if self._failed:
            (namespace, name), reason = next(iter(sorted(self._failed.items())))
            return f"no deployment is running; '{name}' in namespace '{namespace}' failed: {reason}"
        return "no deployment is running; apply one with `seldon apply -f <manifest>`"

    def _not_found(self, name: str, namespace: str | None) -> str:
        failed = [(ns, n) for ns, n in self._failed if n == name and namespace in (None, ns)]
        if failed:
            ns = failed[0][0]
            return f"deployment '{name}' in namespace '{ns}' is not running: {self._failed[(ns, name)]}"
        where = f" in namespace '{namespace}'" if namespace else ""
        running = ", ".join(sorted({d.name for d in self._deployments.values()})) or "none"
        return f"no deployment named '{name}'{where} (running: {running})"

    # --- requests ------------------------------------------------------------------------------

    async def predict(self, name: str | None, namespace: str | None, msg: SeldonMessage) -> SeldonMessage:
        deployment = self.find(name, namespace)
        predictor = deployment.pick()
        tally = self.experiments.tallies.get(deployment)
        return await self._tracked(
            deployment, predictor, "predictions", deployment.predict_on(predictor, msg), tally
        )

    async def send_feedback(self, name: str | None, namespace: str | None, feedback: Feedback) -> None:
        deployment = self.find(name, namespace)
        predictor = deployment.predictor_for_feedback(feedback)
        await self._tracked(deployment, predictor, "feedback", deployment.feedback_on(predictor, feedback))
        tally = self.experiments.tallies.get(deployment)
        if tally is not None:  # counted once the feedback was taken: a refused one says nothing
            tally.rewarded(predictor, feedback)

    async def _tracked(
        self,
        deployment: Deployment,
        predictor: Predictor,
        method: str,
        work: Awaitable[T],
        tally: Tally | None = None,
    ) -> T:
        """Run one request on a deployment: counted in flight (for swaps) and recorded for metrics
        (and, with a `tally`, for the A/B statistics of its traffic split and routers)."""
        if self.request_tracer is not None:
            work = self.request_tracer(deployment, predictor, method, work)
        deployment.inflight += 1
        started = time.perf_counter()
        code = 200
        try:
            answer = await work
        except SeldonError as error:
            code = error.http_status
            if code == 503:  # a node is unreachable: the next readiness probe must look again
                self._ready_checked = 0.0
            if tally is not None:
                tally.failed(predictor, error, time.perf_counter() - started)
            raise
        except BaseException as error:
            code = 500
            if tally is not None and isinstance(error, Exception):  # not a cancelled call
                tally.failed(predictor, error, time.perf_counter() - started)
            raise
        finally:
            deployment.inflight -= 1
            self._record(deployment, predictor, method, code, started)
        if tally is not None:
            tally.answered(predictor, answer, time.perf_counter() - started)  # type: ignore[arg-type]
        return answer

    def _record(
        self, deployment: Deployment, predictor: Predictor, method: str, code: int, t0: float
    ) -> None:
        if self.observer is not None:
            seconds = time.perf_counter() - t0
            self.observer.request(deployment.name, predictor.name, method, code, seconds)

    # --- metadata ------------------------------------------------------------------------------

    async def model_metadata(self, name: str | None, namespace: str | None, model: str) -> dict[str, Any]:
        """One node's model metadata; an empty `model` means the graph's root."""
        deployment = self.find(name, namespace)
        predictor = deployment.primary
        nodes = predictor.root.walk()
        node = next((n for n in nodes if n.name == model), None) if model else predictor.root
        if node is None:
            known = ", ".join(n.name for n in nodes)
            raise DeploymentNotFound(
                f"deployment '{deployment.name}' has no model '{model}' (nodes: {known})"
            )
        return await _node_metadata(node)

    async def graph_metadata(self, name: str | None, namespace: str | None) -> dict[str, Any]:
        """SeldonGraphMetadata as a dict: every node's metadata; inputs of the root, outputs of
        the node whose answer comes back last (the first leaf on the default path)."""
        deployment = self.find(name, namespace)
        predictor = deployment.primary
        nodes = predictor.root.walk()
        documents = await asyncio.gather(*(_node_metadata(n) for n in nodes))
        models = dict(zip((n.name for n in nodes), documents, strict=True))
        last = predictor.root
        while last.children and not last.does_output:
            last = last.children[0]
        return {
            "name": predictor.name,
            "models": models,
            "inputs": models[predictor.root.name].get("inputs", []),
            "outputs": models[last.name].get("outputs", []),
        }

    # --- health ----------------------------------------------------------------------------------

    async def not_ready(self) -> str | None:
        """Why the gateway should be out of rotation, or None when it is ready."""
        if self.paused:
            return "paused"
        if self._failed:
            (namespace, name), reason = next(iter(sorted(self._failed.items())))
            return f"deployment '{name}' in namespace '{namespace}' failed: {reason}"
        if time.monotonic() - self._ready_checked > _READY_CACHE:
            await self.probe()
        if not self._unreachable:
            return None
        (namespace, name), reason = next(iter(sorted(self._unreachable.items())))
        return f"deployment '{name}' in namespace '{namespace}' is not ready: {reason}"

    def not_ready_reason(self, namespace: str, name: str) -> str | None:
        """Why one deployment is not ready (a node unreachable at the last probe), or None."""
        return self._unreachable.get((namespace, name))

    async def probe(self) -> dict[Key, str]:
        """Probe every remote node now (Seldon's graph-ready check); what is unreachable, per deployment."""
        self._unreachable = await _unreachable_nodes(list(self._deployments.values()))
        self._ready_checked = time.monotonic()
        return dict(self._unreachable)

    async def probe_one(self, namespace: str, name: str) -> str | None:
        """Probe one deployment's remote nodes now: why it is not ready, or None."""
        deployment = self._deployments.get((namespace, name))
        found = await _unreachable_nodes([deployment] if deployment is not None else [])
        why = found.get((namespace, name))
        if why is None:
            self._unreachable.pop((namespace, name), None)
        else:
            self._unreachable[(namespace, name)] = why
        return why

    async def probe_forever(
        self, interval: float, on_change: Callable[[Key, str | None], Awaitable[None]] | None = None
    ) -> None:
        """Probe every `interval` seconds; `on_change` hears of each deployment that became not
        ready (with why) or ready again (None)."""
        before: dict[Key, str] = {}
        while True:
            try:
                now = await self.probe()
                if on_change is not None:
                    for key in sorted(set(before) | set(now)):
                        if before.get(key) != now.get(key) and key in self._deployments:
                            await on_change(key, now.get(key))
                before = now
            except Exception as exc:  # a probe must never stop probing
                log.warning("probing graph nodes failed: %s", exc)
            await asyncio.sleep(interval)

    # --- shutdown --------------------------------------------------------------------------------

    def _retire(self, old: Deployment) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no loop (a script or test swapping by hand): nothing can be in flight
            asyncio.run(old.close())
            return
        task = loop.create_task(self._close_when_idle(old))
        self._retiring.add(task)
        task.add_done_callback(self._retiring.discard)

    async def _close_when_idle(self, old: Deployment) -> None:
        deadline = time.monotonic() + self.retire_grace
        while old.inflight > 0 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        if old.inflight > 0:
            log.warning("closing %s with %d request(s) still in flight", old.name, old.inflight)
        await old.close()

    async def close(self) -> None:
        """Close every deployment (waiting for retiring ones to drain)."""
        for task in list(self._retiring):
            with contextlib.suppress(Exception):
                await task
        for deployment in list(self._deployments.values()):
            await deployment.close()
        self._deployments.clear()
        self._by_name.clear()


async def _node_metadata(node: GraphNode) -> dict[str, Any]:
    try:
        return await asyncio.wait_for(node.runner.metadata(), METADATA_TIMEOUT)
    except TimeoutError:
        raise NodeTimeout(
            f"node '{node.name}' did not answer its metadata within {METADATA_TIMEOUT:g} s", node=node.name
        ) from None


CONNECT_TIMEOUT = 0.5  # Seldon's graph-ready checker: 500 ms per try, 3 tries
CONNECT_TRIES = 3


async def unreachable(host: str, port: int) -> str | None:
    """None when `host:port` accepts a TCP connection, else why not (after Seldon's 3 tries)."""
    reason = ""
    for _ in range(CONNECT_TRIES):
        try:
            _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), CONNECT_TIMEOUT)
        except (OSError, TimeoutError) as exc:
            reason = connect_failure(exc)
            continue
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
        return None
    return reason


async def _unreachable_nodes(deployments: Iterable[Deployment]) -> dict[Key, str]:
    """Seldon's graph-ready check: every remote node must accept a TCP connection.  Per
    deployment whose nodes do not all answer: which node, where, and why."""
    targets: list[tuple[Key, str, tuple[str, int]]] = []
    for deployment in deployments:
        for predictor in deployment.predictors:
            for node in predictor.root.walk():
                address = getattr(node.runner, "address", None)
                if address is not None:
                    targets.append(((deployment.namespace, deployment.name), node.name, address))
    if not targets:
        return {}
    results = await asyncio.gather(*(unreachable(*address) for _, _, address in targets))
    out: dict[Key, str] = {}
    for (key, node_name, (host, port)), reason in zip(targets, results, strict=True):
        if reason is not None and key not in out:
            out[key] = f"node '{node_name}' at {host}:{port} is unreachable ({reason})"
    return out
