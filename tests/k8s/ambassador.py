"""A small stand-in for Ambassador that routes by the `getambassador.io/config` Mappings a
rendered Service carries, so tests call deployments by the paths users call on a cluster.

Only what our Mappings use: REST by `prefix` (rewritten to `/`, Ambassador's default), gRPC
(`grpc: true`) by `headers`, `weight` between Mappings of one prefix, `shadow` copies whose
answers are dropped.  Each Mapping's `service` (`<svc>.<ns>:<port>`) is resolved by the
caller, as cluster DNS would.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import threading
from collections.abc import Callable, Iterator
from typing import Any

import aiohttp
import grpc
import yaml
from aiohttp import web

Resolve = Callable[[str], tuple[str, int]]  # "<svc>.<ns>:<port>" -> (host, port)


def mappings_of(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every Mapping in the annotations of the Services among `objects`."""
    found: list[dict[str, Any]] = []
    for obj in objects:
        text = (obj.get("metadata", {}).get("annotations") or {}).get("getambassador.io/config")
        if obj.get("kind") == "Service" and text:
            found += [m for m in yaml.safe_load_all(text) if m and m.get("kind") == "Mapping"]
    return found


def _pick(candidates: list[dict[str, Any]]) -> dict[str, Any]:
    if len(candidates) == 1:
        return candidates[0]
    weights = [float(m.get("weight", 0)) for m in candidates]
    if not any(weights):
        return random.choice(candidates)
    return random.choices(candidates, weights=weights)[0]


class Ambassador:
    """REST and gRPC on loopback ports, routed by `mappings`; run with `with Ambassador(...)`."""

    def __init__(self, mappings: list[dict[str, Any]], resolve: Resolve) -> None:
        self.rest_mappings = [m for m in mappings if not m.get("grpc")]
        self.grpc_mappings = [m for m in mappings if m.get("grpc")]
        self.resolve = resolve
        self.http_port = 0
        self.grpc_port = 0
        self.routed: list[str] = []  # the Mapping names that served each request, in order
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    # --- REST ------------------------------------------------------------------------------------

    def _rest_route(self, path: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        matching = [m for m in self.rest_mappings if path.startswith(m["prefix"])]
        if not matching:
            return [], []
        longest = max(len(m["prefix"]) for m in matching)
        best = [m for m in matching if len(m["prefix"]) == longest]
        return [m for m in best if not m.get("shadow")], [m for m in best if m.get("shadow")]

    async def _forward_rest(self, request: web.Request) -> web.StreamResponse:
        serving, shadows = self._rest_route(request.path)
        if not serving:
            return web.Response(status=404, text=f"no mapping for {request.path}")
        mapping = _pick(serving)
        self.routed.append(mapping["name"])
        body = await request.read()
        headers = {k: v for k, v in request.headers.items() if k.lower() in ("content-type", "authorization")}

        async def send(target: dict[str, Any]) -> tuple[int, bytes, str]:
            host, port = self.resolve(target["service"])
            url = f"http://{host}:{port}/" + request.path_qs[len(target["prefix"]) :]
            timeout = aiohttp.ClientTimeout(total=float(target.get("timeout_ms", 3000)) / 1000)
            async with (
                aiohttp.ClientSession(timeout=timeout) as session,
                session.request(request.method, url, data=body, headers=headers) as answer,
            ):
                return answer.status, await answer.read(), answer.headers.get("content-type", "")

        for shadow in shadows:
            task = asyncio.ensure_future(send(shadow))
            task.add_done_callback(lambda t: t.exception())  # a shadow's answer (or failure) is dropped
        try:
            status, data, content_type = await send(mapping)
        except TimeoutError:
            return web.Response(status=504, text="upstream request timeout")
        except aiohttp.ClientError as exc:
            return web.Response(status=503, text=f"upstream connect error: {exc}")
        response = web.Response(status=status, body=data)
        if content_type:
            response.headers["content-type"] = content_type
        return response

    # --- gRPC ------------------------------------------------------------------------------------

    def _grpc_route(self, method: str, metadata: dict[str, str]) -> dict[str, Any] | None:
        candidates = [
            m
            for m in self.grpc_mappings
            if method.startswith(m["prefix"])
            and not m.get("shadow")
            and all(metadata.get(k) == str(v) for k, v in (m.get("headers") or {}).items())
        ]
        if not candidates:
            return None
        most = max(len(m.get("headers") or {}) for m in candidates)
        return _pick([m for m in candidates if len(m.get("headers") or {}) == most])

    def _grpc_handler(self) -> grpc.GenericRpcHandler:
        proxy = self

        class Handler(grpc.GenericRpcHandler):
            def service(self, details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler | None:
                method = details.method

                async def unary(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
                    metadata = {k: v for k, v in context.invocation_metadata() or () if isinstance(v, str)}
                    mapping = proxy._grpc_route(method, metadata)
                    if mapping is None:
                        await context.abort(
                            grpc.StatusCode.UNIMPLEMENTED, f"no mapping for {method} {metadata}"
                        )
                    assert mapping is not None
                    proxy.routed.append(mapping["name"])
                    host, port = proxy.resolve(mapping["service"])
                    async with grpc.aio.insecure_channel(f"{host}:{port}") as channel:
                        call = channel.unary_unary(method)  # bytes in, bytes out
                        try:
                            answer: bytes = await call(request, timeout=float(mapping["timeout_ms"]) / 1000)
                        except grpc.aio.AioRpcError as exc:
                            await context.abort(exc.code(), exc.details() or "")
                            raise
                        return answer

                return grpc.unary_unary_rpc_method_handler(unary)

        return Handler()

    # --- lifecycle -------------------------------------------------------------------------------

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._forward_rest)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.http_port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self._grpc = grpc.aio.server()
        self._grpc.add_generic_rpc_handlers((self._grpc_handler(),))
        self.grpc_port = self._grpc.add_insecure_port("127.0.0.1:0")
        await self._grpc.start()

    async def _stop(self) -> None:
        await self._grpc.stop(0)
        await self._runner.cleanup()

    def __enter__(self) -> Ambassador:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    def __exit__(self, *exc: object) -> None:
        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()


@contextlib.contextmanager
def ambassador(objects: list[dict[str, Any]], resolve: Resolve) -> Iterator[Ambassador]:
    with Ambassador(mappings_of(objects), resolve) as running:
        yield running
