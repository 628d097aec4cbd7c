"""Run `seldon ...` with wall-clock timers around its request layers; print them at exit.

A diagnostic for bench/gateway_notes.md: where a live server's time per request goes,
under real HTTP traffic (caches as cold as they really are), which the in-process loop of
bench/gateway_stages.py cannot show.  Load it with ONE request in flight (`wrk -t1 -c1`):
then nothing interleaves and the wall time of a layer is its CPU time.

    .venv/bin/python bench/layer_timer.py OUT.json serve bench/models/gateway_single.yaml ...
    .venv/bin/python bench/layer_timer.py OUT.json microservice BenchModel ...   (cwd bench/models)

Every timer adds its own wrapper coroutine (about 1 us, see `timer overhead` in the output)
to the layers around it.  Patches `seldon_serving` in this process only; changes nothing on disk.
"""

from __future__ import annotations

import collections
import functools
import inspect
import json
import sys
import time
from typing import Any

TOTALS: collections.Counter[str] = collections.Counter()
COUNTS: collections.Counter[str] = collections.Counter()
_clock = time.perf_counter_ns


def _wrap(name: str, fn: Any) -> Any:
    if inspect.iscoroutinefunction(fn):

        @functools.wraps(fn)
        async def timed_async(*args: Any, **kwargs: Any) -> Any:
            t0 = _clock()
            try:
                return await fn(*args, **kwargs)
            finally:
                TOTALS[name] += _clock() - t0
                COUNTS[name] += 1

        return timed_async

    @functools.wraps(fn)
    def timed(*args: Any, **kwargs: Any) -> Any:
        t0 = _clock()
        try:
            return fn(*args, **kwargs)
        finally:
            TOTALS[name] += _clock() - t0
            COUNTS[name] += 1

    return timed


def patch() -> None:
    from seldon_serving.components import adapter
    from seldon_serving.engine import deployment, graph, plane, runners
    from seldon_serving.protocol import json_codec
    from seldon_serving.servers import component_plane, gateway_rest, http, microservice_rest

    for owner, attr, name in [
        (http, "send_bytes", "http.send_bytes (2 transport writes)"),
        (http, "request_json", "http.request_json"),
        (http, "read_body", "http.read_body"),
        (json_codec, "decode_message", "json_codec.decode_message"),
        (json_codec, "encode_message", "json_codec.encode_message"),
        (json_codec, "dumps", "json_codec.dumps"),
        (plane.DataPlane, "predict", "DataPlane.predict"),
        (deployment.Deployment, "predict_on", "Deployment.predict_on"),
        (graph, "predict", "graph.predict"),
        (graph, "_walk", "graph._walk (per node)"),
        (graph, "_call", "graph._call (per node step, asyncio.timeout inside)"),
        (graph, "new_puid", "graph.new_puid"),
        (graph, "_merge_meta", "graph._merge_meta"),
        (runners.LocalRunner, "transform_input", "LocalRunner.transform_input"),
        (component_plane.ComponentPlane, "predict", "ComponentPlane.predict"),
        (adapter.ComponentAdapter, "predict", "ComponentAdapter.predict"),
        (adapter.ComponentAdapter, "transform_input", "ComponentAdapter.transform_input"),
    ]:
        setattr(owner, attr, _wrap(name, getattr(owner, attr)))
    # uvicorn inspects the app's signature (ASGI 2 or 3, factory): keep (scope, receive, send) exact.
    for cls, name in (
        (gateway_rest.GatewayApp, "GatewayApp.__call__ (whole app)"),
        (microservice_rest.MicroserviceApp, "MicroserviceApp.__call__ (whole app)"),
    ):
        cls.__call__ = _asgi_timer(name, cls.__call__)  # type: ignore[method-assign]


def _asgi_timer(name: str, call: Any) -> Any:
    async def __call__(self: Any, scope: Any, receive: Any, send: Any) -> None:
        t0 = _clock()
        try:
            await call(self, scope, receive, send)
        finally:
            if scope.get("type") == "http":
                TOTALS[name] += _clock() - t0
                COUNTS[name] += 1

    return __call__


def overhead_ns() -> float:
    """What one timer wrapper adds around an empty coroutine (uvloop)."""
    import uvloop

    async def empty() -> None:
        return None

    wrapped = _wrap("_overhead", empty)

    async def run() -> float:
        n = 20000
        t0 = _clock()
        for _ in range(n):
            await empty()
        bare = _clock() - t0
        t0 = _clock()
        for _ in range(n):
            await wrapped()
        return (_clock() - t0 - bare) / n

    result = uvloop.run(run())
    del TOTALS["_overhead"], COUNTS["_overhead"]
    return result


def main() -> int:
    out = sys.argv.pop(1)
    patch()
    from seldon_serving.cli.main import main as seldon_main

    sys.argv[0] = "seldon"
    try:
        code = seldon_main()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 0
    finally:
        requests = max(
            COUNTS.get("GatewayApp.__call__ (whole app)", 0),
            COUNTS.get("MicroserviceApp.__call__ (whole app)", 0),
        )
        table = {
            name: {"calls": COUNTS[name], "us_per_request": TOTALS[name] / 1000 / max(1, requests)}
            for name in TOTALS
        }
        with open(out, "w") as handle:
            json.dump(
                {"requests": requests, "timer_overhead_us": overhead_ns() / 1000, "layers": table}, handle
            )
    return code or 0


if __name__ == "__main__":
    sys.exit(main())
