"""The live dashboard of `seldon serve` at /dashboard: every deployment, its graph with how each
node runs, per node requests/s, p50/p99 and error rate, the traffic split per predictor and per
router branch, bandit arms, detectors' outlier rate over time and the most recent requests.

The page (HTML, JS, CSS of `servers/dashboard/`, served by the package: no CDN, no build step)
opens /dashboard/events, a server-sent event stream of one JSON snapshot a second.  A snapshot
reads only what exists already: the control plane's view of every deployment (`Admin.list`, as
`seldon get -o json`: status.experiments and each node's state summary), the Prometheus histograms
of this process's registry (every worker's in multiprocess mode) and the request logger's ring of
recent events.  Nothing is added to the request path: a server nobody watches pays nothing.

With several workers, each keeps its own ring of recent events: while a page is open (the worker
serving it marks the state store "watched"), every worker copies its recent events (redacted
unless `--dashboard-payloads`) to the store once a second, and the page lists all of them.  When
nobody watches, a worker reads one key a second and writes nothing.

Who may see it (docs/dashboard.md): a loopback client only, unless `--dashboard-public`; a request
that came through a proxy (Forwarded / X-Forwarded-For) is not a loopback client.  With an admin
token (`--admin-token-file`) every dashboard request needs it too (Bearer, or HTTP Basic with the
token as password, which a browser asks for and resends by itself).  Payloads of recent requests
are redacted unless `--dashboard-payloads`.
"""

from __future__ import annotations

import asyncio
import base64
import collections
import contextlib
import hmac
import ipaddress
import logging
import math
import os
import time
from collections.abc import AsyncIterator, Callable, Iterable
from importlib import resources
from typing import Any

from prometheus_client.metrics_core import Metric
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from seldon_serving.engine.plane import DataPlane
from seldon_serving.protocol import json_codec
from seldon_serving.protocol.errors import MethodNotFound, SeldonError, Unauthenticated
from seldon_serving.servers import rest
from seldon_serving.servers.admin import Admin, AdminAccess, token_digest
from seldon_serving.servers.metrics import Metrics
from seldon_serving.state.base import StateStore

log = logging.getLogger("seldon_serving.dashboard")

SERVER_HISTOGRAM = "seldon_api_executor_server_requests_seconds"
CLIENT_HISTOGRAM = "seldon_api_executor_client_requests_seconds"
INTERVAL = 1.0  # seconds between snapshots of a stream
WINDOW = 10.0  # seconds the rates and quantiles are computed over
STREAM_LIFETIME = 5.0  # seconds a stream lives; the page reconnects (a server stopping waits no longer)
HISTORY = 600  # detector samples kept per node (10 minutes at one a second)
RATE_STEP = 2.0  # seconds per point of a detector's outlier-rate series
RECENT = 20  # recent requests per deployment in a snapshot
PAYLOAD_LIMIT = 2000  # characters of a payload shown
SHARED = "seldon.dashboard"  # state-store namespace: when a page was last served ("watched")
SHARED_RECENT = "seldon.dashboard.recent"  # each worker's recent events (key: its pid) while watched
SHARE_INTERVAL = 1.0  # seconds between a worker's looks at whether a page is open
WATCHED_FOR = 5.0  # seconds a served snapshot keeps the workers sharing their recent events
STALE = 60.0  # seconds after which a worker's shared events are dropped (it stopped sharing)
_OK_CODES = frozenset({"200", "OK"})
_STATIC = {
    "dashboard.js": "text/javascript; charset=utf-8",
    "dashboard.css": "text/css; charset=utf-8",
    "favicon.svg": "image/svg+xml",
}
# Only what the package serves: no inline script, nothing from another origin.
_CSP = "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'"
_HEADERS = {"content-security-policy": _CSP, "cache-control": "no-store", "x-content-type-options": "nosniff"}

RecentEvents = Callable[[str, str, int], list[dict[str, Any]]]


class DashboardForbidden(SeldonError):
    """A client the dashboard is not served to."""

    http_status = 403
    grpc_code = "PERMISSION_DENIED"
    reason = "Forbidden"
    code = 403


def _static(name: str) -> bytes:
    return (resources.files("seldon_serving.servers") / "dashboard" / name).read_bytes()


def is_loopback(host: str | None) -> bool:
    if not host:
        return False  # a Unix socket has no address: served only to this host's users, but say so
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# --- reading the Prometheus histograms ------------------------------------------------------------


class Totals:
    """A histogram's cumulative count, errors and buckets (le -> cumulative count) for one key."""

    __slots__ = ("buckets", "count", "errors")

    def __init__(self) -> None:
        self.count = 0.0
        self.errors = 0.0
        self.buckets: dict[float, float] = {}


def histogram_totals(
    families: Iterable[Metric], name: str, keys: tuple[str, ...]
) -> dict[tuple[str, ...], Totals]:
    """Every series of histogram `name` summed by the labels `keys` (workers, codes and methods
    added up); a feedback is no request: the feedback services (the gateway's `feedback`, a
    node's `/send-feedback` or `.../SendFeedback`) are left out."""
    out: dict[tuple[str, ...], Totals] = {}
    for family in families:
        if family.name != name.removesuffix("_seconds") and family.name != name:
            continue
        for sample in family.samples:
            labels = sample.labels
            service = labels.get("service", "").lower()
            if "feedback" in service or labels.get("method") == "feedback":
                continue
            key = tuple(labels.get(k, "") for k in keys)
            totals = out.get(key)
            if totals is None:
                totals = out[key] = Totals()
            if sample.name.endswith("_count"):
                totals.count += sample.value
                if labels.get("code", "200") not in _OK_CODES:
                    totals.errors += sample.value
            elif sample.name.endswith("_bucket"):
                le = float(labels["le"])
                totals.buckets[le] = totals.buckets.get(le, 0.0) + sample.value
    return out


def bucket_quantile(q: float, buckets: dict[float, float]) -> float | None:
    """Prometheus' histogram_quantile over cumulative buckets (linear inside a bucket)."""
    bounds = sorted(buckets)
    if not bounds:
        return None
    total = buckets[bounds[-1]]
    if total <= 0:
        return None
    rank = q * total
    lower, below = 0.0, 0.0
    for le in bounds:
        count = buckets[le]
        if count >= rank:
            if math.isinf(le):
                return lower  # past the last finite bound: that bound is all we know
            inside = count - below
            return lower + (le - lower) * ((rank - below) / inside if inside > 0 else 1.0)
        lower, below = le, count
    return lower


class Window:
    """Counter samples of the last WINDOW seconds: rates and windowed quantiles per key."""

    def __init__(self, seconds: float = WINDOW) -> None:
        self.seconds = seconds
        self.samples: collections.deque[tuple[float, dict[Any, Totals]]] = collections.deque()

    def add(self, now: float, totals: dict[Any, Totals]) -> None:
        self.samples.append((now, totals))
        # Keep one sample at least WINDOW old as the base of the differences.
        while len(self.samples) > 2 and now - self.samples[1][0] >= self.seconds:
            self.samples.popleft()

    def stats(self, key: Any) -> dict[str, Any]:
        now, latest = self.samples[-1]
        current = latest.get(key) or Totals()
        then, base_totals = self.samples[0]
        base = base_totals.get(key) or Totals()
        span = now - then
        count = max(0.0, current.count - base.count)
        errors = max(0.0, current.errors - base.errors)
        recent = {le: max(0.0, n - base.buckets.get(le, 0.0)) for le, n in current.buckets.items()}
        p50 = bucket_quantile(0.5, recent) if count else None
        p99 = bucket_quantile(0.99, recent) if count else None
        return {
            "requests": int(current.count),
            "errors": int(current.errors),
            "rps": count / span if span > 0 else None,
            "p50_ms": None if p50 is None else p50 * 1000.0,
            "p99_ms": None if p99 is None else p99 * 1000.0,
            "error_rate": errors / count if count else None,
        }


def _counter(value: float) -> Totals:
    totals = Totals()
    totals.count = value
    return totals


# --- the dashboard ---------------------------------------------------------------------------------


class Dashboard:
    """The routes of /dashboard and the snapshots behind them; one per worker process."""

    def __init__(
        self,
        admin: Admin,
        plane: DataPlane,
        metrics: Metrics,
        access: AdminAccess,
        *,
        public: bool = False,
        payloads: bool = False,
        recent_events: RecentEvents | None = None,
        store: StateStore | None = None,
        interval: float = INTERVAL,
    ) -> None:
        self.admin = admin
        self.plane = plane
        self.metrics = metrics
        self.access = access
        self.public = public  # --dashboard-public: other hosts too
        self.payloads = payloads  # --dashboard-payloads: recent requests with their payloads
        self.recent_events = recent_events
        self.store = store  # shared by the workers: their recent events meet there (None: this one's only)
        self._sharer: asyncio.Task[None] | None = None
        self.interval = interval
        self.window = Window()
        self.detectors: dict[tuple[str, ...], collections.deque[tuple[float, float, float]]] = {}
        self._snapshot: dict[str, Any] | None = None
        self._taken = 0.0
        self._building: asyncio.Lock | None = None

    def routes(self) -> list[Route]:
        return [
            rest.route("/dashboard", self._guarded(self._page)),
            rest.route("/dashboard/", self._guarded(self._page)),
            rest.route("/dashboard/static/{name}", self._guarded(self._file)),
            rest.route("/dashboard/snapshot.json", self._guarded(self._one)),
            rest.route("/dashboard/events", self._guarded(self._events)),
        ]

    def _guarded(self, endpoint: rest.Endpoint) -> rest.Endpoint:
        async def checked(request: Request) -> Response:
            try:
                self.check(request)
            except _AskForToken as exc:
                # The header makes a browser ask for the token (sent back as the Basic password).
                answer = rest.failure_response(exc)
                answer.headers["www-authenticate"] = 'Basic realm="seldon dashboard", charset="UTF-8"'
                return answer
            return await endpoint(request)

        return checked

    # --- the workers' recent events ------------------------------------------------------------------

    def start(self) -> None:
        """Share this worker's recent events while a page is open (in the worker's loop)."""
        if self.store is not None and self.recent_events is not None and self._sharer is None:
            self._sharer = asyncio.create_task(self._share_forever())

    async def stop(self) -> None:
        if self._sharer is not None:
            self._sharer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sharer
            self._sharer = None

    async def _share_forever(self) -> None:
        while True:
            await asyncio.sleep(SHARE_INTERVAL)
            try:
                self.share()
            except Exception as exc:  # a store hiccup must not stop the sharing for good
                log.warning("sharing recent events for the dashboard failed: %s", exc)

    def share(self) -> bool:
        """Copy this worker's recent events to the store if a page was served lately; whether it did."""
        assert self.store is not None and self.recent_events is not None
        watched = self.store.get(SHARED, "watched")
        if not isinstance(watched, int | float) or time.time() - watched > WATCHED_FOR:
            return False
        events = {
            f"{d.namespace}/{d.name}": [
                shown_event(e, self.payloads) for e in self.recent_events(d.namespace, d.name, RECENT)
            ]
            for d in self.plane.deployments()
        }
        self.store.put(SHARED_RECENT, str(os.getpid()), {"time": time.time(), "events": events})
        return True

    def _shared_events(self) -> dict[str, list[dict[str, Any]]]:
        """Every other worker's shared recent events, by "<namespace>/<name>"; marks the page watched."""
        if self.store is None:
            return {}
        now = time.time()
        self.store.put(SHARED, "watched", now)
        found: dict[str, list[dict[str, Any]]] = {}
        for worker, value in self.store.items(SHARED_RECENT).items():
            if not isinstance(value, dict) or now - float(value.get("time") or 0) > STALE:
                self.store.delete(SHARED_RECENT, worker)  # a worker gone (or long idle)
                continue
            if worker == str(os.getpid()):
                continue  # this worker's own are read live
            for key, events in (value.get("events") or {}).items():
                found.setdefault(key, []).extend(events)
        return found

    # --- who may see it ---------------------------------------------------------------------------

    def check(self, request: Request) -> None:
        """Refuse (403) a client other than this host's, unless --dashboard-public; with an admin
        token, refuse (401) a request without it."""
        if not self.public:
            client = request.client.host if request.client is not None else None
            proxied = "forwarded" in request.headers or "x-forwarded-for" in request.headers
            if proxied or not is_loopback(client):
                who = "a request through a proxy" if proxied else f"client {client}"
                raise DashboardForbidden(
                    f"the dashboard is served only to clients on this host (loopback), not to {who}: "
                    "start `seldon serve --dashboard-public` to serve it to other hosts"
                )
        if self.access.token is None:
            return
        scheme, _, value = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "basic":
            # A browser asks for Basic credentials and resends them (to the event stream too):
            # the password is the admin token, the user name is not looked at.
            try:
                value = base64.b64decode(value.strip(), validate=True).decode("latin-1").partition(":")[2]
            except ValueError:
                value = ""
        elif scheme.lower() != "bearer":
            value = ""
        if not value.strip():
            raise _AskForToken(
                "the dashboard needs the admin token: give it as the password your browser asks for "
                "(or send `Authorization: Bearer <token>`)"
            )
        if not hmac.compare_digest(token_digest(value.strip().encode("latin-1")), self.access.token):
            raise _AskForToken("the token sent is not this server's admin token")

    # --- endpoints --------------------------------------------------------------------------------

    async def _page(self, request: Request) -> Response:
        return Response(_static("dashboard.html"), media_type="text/html; charset=utf-8", headers=_HEADERS)

    async def _file(self, request: Request) -> Response:
        name = request.path_params["name"]
        media = _STATIC.get(name)
        if media is None:
            raise MethodNotFound(f"no such dashboard file: {name}")
        return Response(_static(name), media_type=media, headers=_HEADERS)

    async def _one(self, request: Request) -> Response:
        return Response(json_codec.dumps(await self.snapshot()), media_type=rest.JSON, headers=_HEADERS)

    async def _events(self, request: Request) -> Response:
        async def stream() -> AsyncIterator[bytes]:
            yield b"retry: 1000\n\n"
            ends = time.monotonic() + STREAM_LIFETIME
            while True:
                try:
                    body = json_codec.dumps(await self.snapshot())
                except Exception as exc:  # a snapshot must never end the stream with a trace
                    log.warning("dashboard snapshot failed: %s", exc)
                    body = json_codec.dumps({"error": f"{type(exc).__name__}: {exc}"})
                yield b"data: " + body + b"\n\n"
                if time.monotonic() + self.interval > ends:
                    # The page opens a new stream at once: a stream never holds a stopping server.
                    yield b"event: bye\ndata: {}\n\n"
                    return
                await asyncio.sleep(self.interval)

        headers = {**_HEADERS, "x-accel-buffering": "no"}
        return StreamingResponse(stream(), media_type="text/event-stream", headers=headers)

    # --- snapshots --------------------------------------------------------------------------------

    async def snapshot(self) -> dict[str, Any]:
        """The current snapshot; streams open side by side share one a second."""
        if self._building is None:
            self._building = asyncio.Lock()
        async with self._building:
            if self._snapshot is None or time.monotonic() - self._taken >= self.interval * 0.9:
                self._snapshot = await self._build()
                self._taken = time.monotonic()
            return self._snapshot

    def _families(self) -> list[Metric]:
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):  # every worker's samples, as /metrics has them
            from prometheus_client import multiprocess

            return list(multiprocess.MultiProcessCollector(None).collect())  # type: ignore[no-untyped-call]
        return list(self.metrics.registry.collect())

    async def _build(self) -> dict[str, Any]:
        listed = await self.admin.list()
        now = time.monotonic()
        families = self._families()
        totals: dict[Any, Totals] = {}
        for key, value in histogram_totals(
            families, SERVER_HISTOGRAM, ("deployment_name", "predictor_name")
        ).items():
            totals[("predictor", *key)] = value
        for key, value in histogram_totals(
            families, CLIENT_HISTOGRAM, ("deployment_name", "predictor_name", "model_name")
        ).items():
            totals[("node", *key)] = value
        try:
            shared = self._shared_events()
        except Exception as exc:  # the store's trouble: this worker's own events still show
            log.warning("reading the workers' recent events failed: %s", exc)
            shared = {}
        deployments = [self._deployment(item, totals, shared) for item in listed.get("items") or []]
        self.window.add(now, totals)
        for entry in deployments:
            self._add_rates(entry)
        return {
            "time": time.time(),
            "payloads": self.payloads,
            "node_metrics": any(key[0] == "node" for key in totals),
            "deployments": deployments,
        }

    def _deployment(
        self, item: dict[str, Any], totals: dict[Any, Totals], shared: dict[str, list[dict[str, Any]]]
    ) -> dict[str, Any]:
        manifest = item.get("manifest") or {}
        metadata = manifest.get("metadata") or {}
        status = manifest.get("status") or {}
        namespace, name = str(metadata.get("namespace") or ""), str(metadata.get("name") or "")
        running = {p["predictor"]: p for p in item.get("predictors") or []}
        predictors = []
        bandits, detectors = [], []
        for spec in (manifest.get("spec") or {}).get("predictors") or []:
            pname = str(spec.get("name") or "")
            found = running.get(pname) or {}
            nodes = {n["name"]: n for n in found.get("nodes") or []}
            predictors.append(
                {
                    "name": pname,
                    "traffic": found.get("traffic", spec.get("traffic")),
                    "shadow": bool(found.get("shadow", spec.get("shadow"))),
                    "graph": _graph(spec.get("graph") or {}, nodes),
                }
            )
            for node, view in nodes.items():
                state = view.get("state")
                if not isinstance(state, dict):
                    continue
                arms = state.get("branches")
                if (
                    isinstance(arms, list)
                    and arms
                    and all(isinstance(a, dict) and "tries" in a for a in arms)
                ):
                    graph_node = next((n for n in _walk(predictors[-1]["graph"]) if n["name"] == node), None)
                    children = [c["name"] for c in graph_node["children"]] if graph_node else []
                    bandits.append(_bandit(pname, node, state, arms, children))
                if "nb_outliers" in state and "observations" in state:
                    detectors.append(self._detector(namespace, name, pname, node, state))
        experiments = status.get("experiments") or []
        for exp in experiments:
            for branch in exp.get("branches") or []:
                key = ("branch", namespace, name, exp.get("kind"), exp.get("predictor"), exp.get("node"))
                totals[(*key, branch.get("branch"))] = _counter(float(branch.get("requests") or 0))
        return {
            "namespace": namespace,
            "name": name,
            "state": status.get("state"),
            "description": status.get("description"),
            "predictors": predictors,
            "experiments": [_experiment(e) for e in experiments],
            "bandits": bandits,
            "detectors": detectors,
            "recent": self._recent(namespace, name, shared.get(f"{namespace}/{name}") or []),
        }

    def _add_rates(self, entry: dict[str, Any]) -> None:
        """Rates and quantiles of this window into a built deployment entry."""
        name, namespace = entry["name"], entry["namespace"]
        for predictor in entry["predictors"]:
            predictor["stats"] = self.window.stats(("predictor", name, predictor["name"]))
            for node in _walk(predictor["graph"]):
                node["stats"] = self.window.stats(("node", name, predictor["name"], node["name"]))
        for exp in entry["experiments"]:
            key = ("branch", namespace, name, exp["kind"], exp["predictor"], exp["node"])
            rates = [self.window.stats((*key, b["branch"]))["rps"] or 0.0 for b in exp["branches"]]
            total = sum(rates)
            for branch, rate in zip(exp["branches"], rates, strict=True):
                branch["rps"] = rate
                branch["recent_share"] = rate / total if total > 0 else None
        routed = {(e["predictor"], e["node"]): e for e in entry["experiments"] if e["kind"] == "router"}
        for bandit in entry["bandits"]:
            exp = routed.get((bandit["predictor"], bandit["node"]))
            branches = {b["branch"]: b for b in exp["branches"]} if exp is not None else {}
            for arm in bandit["arms"]:
                branch = branches.get(arm["branch"])
                if branch is not None:
                    # The share it routes now (this window), or since the start when idle.
                    recent = branch["recent_share"]
                    arm["share"] = recent if recent is not None else branch["share"]
                    arm["requests"] = branch["requests"]

    def _detector(
        self, namespace: str, name: str, predictor: str, node: str, state: dict[str, Any]
    ) -> dict[str, Any]:
        observations, outliers = float(state.get("observations") or 0), float(state.get("nb_outliers") or 0)
        now = time.time()
        history = self.detectors.setdefault(
            (namespace, name, predictor, node), collections.deque(maxlen=HISTORY)
        )
        if history and observations < history[-1][1]:
            history.clear()  # its state was reset (re-applied): a new series
        history.append((now, observations, outliers))
        # One point per RATE_STEP seconds: the share of outliers among that step's observations.
        series: list[list[float | None]] = []
        last = history[0]
        for sample in history:
            if sample[0] - last[0] >= RATE_STEP:
                seen = sample[1] - last[1]
                series.append([round(sample[0] - now, 1), (sample[2] - last[2]) / seen if seen > 0 else None])
                last = sample
        if history[-1] is not last:
            seen = history[-1][1] - last[1]
            if seen > 0:
                series.append([0.0, (history[-1][2] - last[2]) / seen])
        return {
            "predictor": predictor,
            "node": node,
            "observations": int(observations),
            "outliers": int(outliers),
            "outlier_rate": outliers / observations if observations else None,
            "threshold": state.get("threshold"),
            "series": series,
        }

    def _recent(self, namespace: str, name: str, others: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The most recent events of this worker and the others', newest first."""
        if self.recent_events is None:
            return []
        try:
            events = [shown_event(e, self.payloads) for e in self.recent_events(namespace, name, RECENT)]
        except Exception as exc:  # the logger's trouble must not blank the dashboard
            log.warning("recent events of %s: %s", name, exc)
            events = []
        merged = events + others
        merged.sort(key=lambda e: str(e.get("time") or ""), reverse=True)  # RFC 3339 UTC sorts as text
        return merged[:RECENT]


class _AskForToken(Unauthenticated):
    """401 with the header that makes a browser ask for the token (as the Basic password)."""


def _graph(unit: dict[str, Any], nodes: dict[str, dict[str, Any]]) -> dict[str, Any]:
    name = str(unit.get("name") or "")
    view = nodes.get(name) or {}
    runs = str(view.get("runs") or "")
    return {
        "name": name,
        "type": unit.get("type") or unit.get("implementation") or "",
        "implementation": unit.get("implementation"),
        "runs": runs,
        "how": how_it_runs(runs),
        "children": [_graph(child, nodes) for child in unit.get("children") or []],
    }


def _walk(graph: dict[str, Any]) -> Iterable[dict[str, Any]]:
    yield graph
    for child in graph["children"]:
        yield from _walk(child)


def how_it_runs(runs: str) -> str:
    """inline, thread, process or remote, from the description `seldon get -o wide` shows."""
    if runs.startswith("in-process"):
        return "inline"
    if runs.startswith("threads"):
        return "thread"
    if runs.startswith("process"):
        return "process"
    if runs.startswith(("REST", "gRPC", "engine")):
        return "remote"
    return "unknown" if not runs else runs.split(" ", 1)[0]


def _bandit(
    predictor: str, node: str, state: dict[str, Any], arms: list[dict[str, Any]], children: list[str]
) -> dict[str, Any]:
    """A bandit's arms: tries and reward mean from its state (the store's: every worker's); the
    share of requests it routes to each is filled in from its router experiment (`_add_rates`)."""
    shown = []
    for index, arm in enumerate(arms):
        # Arms are the router's children; a `branch_names` parameter names them otherwise.
        named = arm.get("name")
        child = children[index] if index < len(children) else str(index)
        shown.append(
            {
                "name": child if named is None or str(named) == str(index) else str(named),
                "branch": child,
                "tries": int(arm.get("tries") or 0),
                "reward_mean": arm.get("value") if arm.get("tries") else None,
                "share": None,
                "requests": None,
            }
        )
    return {
        "predictor": predictor,
        "node": node,
        "router": state.get("router"),
        "best_branch": state.get("best_branch"),
        "arms": shown,
    }


def _experiment(exp: dict[str, Any]) -> dict[str, Any]:
    branches = exp.get("branches") or []
    total = sum(int(b.get("requests") or 0) for b in branches)
    return {
        "kind": exp.get("kind"),
        "predictor": exp.get("predictor"),
        "node": exp.get("node"),
        "leader": exp.get("leader"),
        "winner": exp.get("winner"),
        "branches": [
            {
                "branch": b.get("branch"),
                "requests": int(b.get("requests") or 0),
                "share": int(b.get("requests") or 0) / total if total else None,
                "error_rate": b.get("error_rate"),
                "feedback": b.get("feedback"),
                "reward_mean": b.get("reward_mean"),
            }
            for b in branches
        ],
    }


def shown_event(event: dict[str, Any], payloads: bool) -> dict[str, Any]:
    """An event's attributes, and its payload only with --dashboard-payloads (cut to a length)."""
    shown: dict[str, Any] = {
        k: v for k, v in event.items() if k != "data" and isinstance(v, str | int | float | bool)
    }
    if "data" in event:
        if payloads:
            text = json_codec.dumps(event["data"]).decode("utf-8", errors="replace")
            shown["data"] = text if len(text) <= PAYLOAD_LIMIT else text[:PAYLOAD_LIMIT] + "…"
        else:
            shown["data"] = None
    return shown
