"""REST core: granian (RSGI) vs uvicorn (ASGI) under the same work, one process each, one run.

    flock /tmp/bench.lock .venv/bin/python bench/rest_core.py [--repeat 3] [--duration 10]

Needs granian 2.x in .venv (`.venv/bin/pip install 'granian>=2.8,<3'`; not a dependency of ours).

Scenarios, started fresh in turn within every repeat (a busy moment of the machine hits all of
them alike), each measured with `wrk -t1 -c16` on the 1x4 ndarray predict of
bench/models/BenchModel.py, POST /api/v1.0/predictions:
  bare-asgi     bench/ceiling/ceiling_server.py: a bare ASGI callable on uvicorn (httptools, uvloop)
  bare-rsgi     the same work as a bare RSGI callable on granian, embedded in a uvloop loop (this
                script, --serve-bare-rsgi): the ceiling of one granian process
  bare-asgi-runner  the bare ASGI callable served by our runner (servers/runner.py: our uvicorn
                settings, the connection limits; no gRPC port): our server's cost without our app
  ours-uvicorn  `seldon microservice BenchModel`, one worker, as shipped
  ours-granian  the same server with its REST port on granian (this script, --serve-ours): the
                worker's uvicorn server replaced by granian embedded in the same loop, beside
                grpc.aio; the message paths answered natively (`MicroserviceOnRsgi`: the body
                read with one `await protocol()`, the answer written with `response_bytes`), every
                other path through an RSGI->ASGI shim (`AsgiOnRsgi`)
  gw-uvicorn    `seldon serve bench/models/gateway_single.yaml` (one inline node),
                POST /seldon/bench/api/v1.0/predictions
  gw-granian    the same with its REST port on granian (through the shim)
Beside req/s (which swings with whatever else runs on the 2 cores), the server's CPU time per
answer (its process group's user+system time over the measured 10 s, Rust threads included).
Writes bench/out/rest_core.json and prints a Markdown table (median and min-max over repeats).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
OUT = BENCH / "out"
VENV = REPO / ".venv" / "bin"
BODY = b'{"data":{"ndarray":[[1.0,2.0,3.0,4.0]]}}'
NAMES = ["c0", "c1", "c2"]

sys.path.insert(0, str(BENCH / "models"))
sys.path.insert(0, str(BENCH))


# --- granian under our edges ----------------------------------------------------------------

_ASGI = {"version": "3.0", "spec_version": "2.3"}
_DISCONNECT: dict[str, Any] = {"type": "http.disconnect"}
_NOT_PLAIN_JSON = ("application/x-www-form-urlencoded", "multipart/form-data")
# Header lists of answers as granian takes them (str pairs), by the identity of the list: the
# fast paths answer with a few constant lists (kept here, so that an id stays theirs).
_HEADERS: dict[int, tuple[Any, list[tuple[str, str]]]] = {}


def _str_headers(headers: Any) -> list[tuple[str, str]]:
    known = _HEADERS.get(id(headers))
    if known is not None and known[0] is headers:
        return known[1]
    converted = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in headers]
    if len(_HEADERS) < 256:
        _HEADERS[id(headers)] = (headers, converted)
    return converted


def _address(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host.strip("[]"), int(port) if port.isdigit() else 0


class _Exchange:
    """One request's ASGI `receive` and `send` over an RSGI protocol object."""

    __slots__ = ("body", "chunks", "headers", "length", "limit", "protocol", "read", "sent", "status")

    def __init__(self, protocol: Any, length: int, limit: int) -> None:
        self.protocol = protocol
        self.length = length  # the content-length, -1 when the client sent none
        self.limit = limit
        self.chunks: Any = None
        self.status = 500
        self.headers: list[tuple[str, str]] = []
        self.body: list[bytes] = []
        self.sent = False
        self.read = False

    async def receive(self) -> MutableMapping[str, Any]:
        if not self.read:
            if 0 <= self.length <= self.limit:
                self.read = True
                return {"type": "http.request", "body": await self.protocol(), "more_body": False}
            # Unknown or oversized length: chunk by chunk, so that the app stops at its limit.
            if self.chunks is None:
                self.chunks = self.protocol.__aiter__()
            try:
                chunk = await self.chunks.__anext__()
            except StopAsyncIteration:
                self.read = True
                return {"type": "http.request", "body": b"", "more_body": False}
            return {"type": "http.request", "body": bytes(chunk), "more_body": True}
        await self.protocol.client_disconnect()
        return _DISCONNECT

    async def send(self, event: MutableMapping[str, Any]) -> None:
        kind = event["type"]
        if kind == "http.response.start":
            self.status = event["status"]
            self.headers = _str_headers(event.get("headers", ()))
        elif kind == "http.response.body":
            body = event.get("body", b"")
            if body:
                self.body.append(body)
            if not event.get("more_body", False) and not self.sent:
                self.sent = True
                data = self.body[0] if len(self.body) == 1 else b"".join(self.body)
                self.protocol.response_bytes(self.status, self.headers, data)


class AsgiOnRsgi:
    """An RSGI application serving an ASGI one (HTTP only: our edges have no websockets)."""

    def __init__(self, app: Any, max_body: int) -> None:
        self.app = app
        self.max_body = max_body

    async def __rsgi__(self, scope: Any, protocol: Any) -> None:
        headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in scope.headers.items()]
        length = scope.headers.get("content-length")
        exchange = _Exchange(
            protocol, int(length) if length is not None and length.isdigit() else -1, self.max_body
        )
        path = scope.path
        asgi_scope = {
            "type": "http",
            "asgi": _ASGI,
            "http_version": scope.http_version,
            "method": scope.method,
            "scheme": scope.scheme,
            "path": path,
            "raw_path": path.encode("latin-1"),
            "root_path": "",
            "query_string": scope.query_string.encode("latin-1"),
            "headers": headers,
            "client": _address(scope.client),
            "server": _address(scope.server),
        }
        await self.app(asgi_scope, exchange.receive, exchange.send)
        if not exchange.sent:  # an app that ended without answering
            protocol.response_bytes(500, [], b"")


def _microservice_on_rsgi(app: Any, max_body: int) -> AsgiOnRsgi:
    """A microservice's message paths answered straight from RSGI: a POST of plain JSON with a
    length within the limit (the body in one read, no ASGI scope); the rest through the shim.
    Answers and errors are the ASGI path's byte for byte (`rest.on_message_path`)."""
    from seldon_serving.protocol import json_codec
    from seldon_serving.servers import microservice_rest, rest

    dumps = microservice_rest._wrapper_json
    log = microservice_rest.log
    routes = app.message_routes
    shim = AsgiOnRsgi(app, max_body)

    class MicroserviceOnRsgi(AsgiOnRsgi):
        async def __rsgi__(self, scope: Any, protocol: Any) -> None:
            handler = routes.get(scope.path)
            if handler is None or scope.method != "POST":
                return await shim.__rsgi__(scope, protocol)
            headers = scope.headers
            length = headers.get("content-length", "")
            if (
                not length.isdigit()
                or not 0 < int(length) <= max_body
                or headers.get("content-type", "").startswith(_NOT_PLAIN_JSON)
            ):
                return await shim.__rsgi__(scope, protocol)
            body = await protocol()
            exchange = _Exchange(protocol, 0, 0)

            async def handle() -> Any:
                return await handler(json_codec.loads(body))

            where = {"method": "POST", "path": scope.path}  # what a failure's log line names
            await rest.on_message_path(where, exchange.send, handle, log, dumps=dumps)

    return MicroserviceOnRsgi(app, max_body)


async def serve_rsgi(app: Any, sock: socket.socket, stopping: asyncio.Event, header_timeout: float) -> None:
    """Serve `app` (an RSGI application) with granian on the bound, listening `sock`, in the
    running loop, until `stopping` is set: what granian's `server.embed` does, minus its own
    socket (ours is bound with SO_REUSEPORT before the worker starts) and its signal handling."""
    from granian._futures import _future_watcher_wrapper, _new_cbscheduler
    from granian._granian import RSGIWorker, SocketHolder, WorkerSignal
    from granian.http import HTTP1Settings

    loop = asyncio.get_running_loop()
    signal = WorkerSignal()
    callback = app.__rsgi__ if hasattr(app, "__rsgi__") else app
    worker = RSGIWorker(
        1,
        # granian closes the descriptor it is given when it stops: a duplicate, so that the
        # runner's own close of its socket still finds one.
        (None, SocketHolder(os.dup(sock.fileno()), sock.family == socket.AF_UNIX, 2048)),
        None,
        threads=1,
        blocking_threads=512,
        py_threads=1,
        py_threads_idle_timeout=30,
        backpressure=1024,
        http_mode="1",
        http1_opts=HTTP1Settings(header_read_timeout=max(1, round(header_timeout * 1000))),
        http2_opts=None,
        websockets_enabled=False,
        static_files=None,
        ssl_enabled=False,
        ssl_protocol_min="tls1.2",
        metrics=(None, None),
    )
    scheduler = _new_cbscheduler(loop, _future_watcher_wrapper(callback), impl_asyncio=True)
    worker.serve_async(scheduler, loop, signal)
    try:
        await stopping.wait()
    finally:
        signal.set()


def serve_ours_on_granian(argv: list[str]) -> None:
    """`seldon <argv>` with every REST port of its workers on granian instead of uvicorn."""
    from seldon_serving.cli.main import main as seldon_main
    from seldon_serving.servers import microservice_rest, runner

    class GranianServer:
        """Stands in for runner's uvicorn server: serve(sockets=[sock]) until should_exit."""

        def __init__(self, config: Any, handshake_timeout: float) -> None:
            self.config = config
            self.should_exit = False

        async def serve(self, sockets: list[socket.socket]) -> None:
            app = self.config.app
            max_body = getattr(app, "max_body", 4 * 1024 * 1024)
            if isinstance(app, microservice_rest.MicroserviceApp):
                rsgi_app = _microservice_on_rsgi(app, max_body)
            else:
                rsgi_app = AsgiOnRsgi(app, max_body)
            stopping = asyncio.Event()
            task = asyncio.create_task(serve_rsgi(rsgi_app, sockets[0], stopping, 10.0))
            while not self.should_exit:
                await asyncio.sleep(0.2)
            stopping.set()
            await task

    runner._Uvicorn = GranianServer  # type: ignore[misc,assignment]
    sys.argv = ["seldon", *argv]
    seldon_main()


def serve_bare_rsgi(port: int) -> None:
    """The ceiling's work as an RSGI callable, served by granian inside a uvloop loop."""
    import numpy as np
    import orjson
    import uvloop
    from BenchModel import softmax_rows

    async def app(scope: Any, protocol: Any) -> None:
        rows = orjson.loads(await protocol())["data"]["ndarray"]
        answer = softmax_rows(np.asarray(rows, dtype=np.float64))
        out = orjson.dumps(
            {"data": {"names": NAMES, "ndarray": answer}, "meta": {}}, option=orjson.OPT_SERIALIZE_NUMPY
        )
        protocol.response_bytes(200, [("content-type", "application/json")], out)

    async def main() -> None:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))
        sock.listen(2048)
        await serve_rsgi(app, sock, asyncio.Event(), 10.0)

    uvloop.run(main())


def serve_bare_on_runner(port: int) -> None:
    """The ceiling's ASGI callable served by our runner (our uvicorn settings and connection
    limits, one worker, no gRPC): what our server costs around an app, without our app."""
    from ceiling.ceiling_server import app

    from seldon_serving.servers.runner import Edges, serve
    from seldon_serving.settings import ServerSettings

    settings = ServerSettings(host="127.0.0.1", http_port=port, grpc_port=None, workers=1)
    serve(lambda: Edges(asgi_app=app), settings)


# --- the measurement ------------------------------------------------------------------------


def _scenarios(
    port: int, grpc_port: int, work: Path, workers: int = 1
) -> dict[str, tuple[list[str], Path, str]]:
    """key -> (argv, cwd, request path); `workers`: of ours (the bare apps are one process)."""
    micro = [
        "microservice", "BenchModel", "--http-port", str(port), "--grpc-port", str(grpc_port),
        "--host", "127.0.0.1", "--workers", str(workers),
    ]  # fmt: skip
    gateway = [
        "serve", str(BENCH / "models" / "gateway_single.yaml"), "--http-port", str(port),
        "--grpc-port", str(grpc_port), "--host", "127.0.0.1", "--workers", str(workers),
        "--execution", "inline", "--admin-port", "0", "--state-dir", str(work / f"state-{port}"),
    ]  # fmt: skip
    python, seldon, this = str(VENV / "python"), str(VENV / "seldon"), str(Path(__file__).resolve())
    predictions = "/api/v1.0/predictions"
    ceiling = [python, str(BENCH / "ceiling" / "ceiling_server.py"), "--http-port", str(port)]
    models = BENCH / "models"
    return {
        "bare-asgi": ([*ceiling, "--grpc-port", str(grpc_port)], REPO, predictions),
        "bare-rsgi": ([python, this, "--serve-bare-rsgi", str(port)], REPO, predictions),
        "bare-asgi-runner": ([python, this, "--serve-bare-on-runner", str(port)], REPO, predictions),
        "ours-uvicorn": ([seldon, *micro], models, predictions),
        "ours-granian": ([python, this, "--serve-ours", *micro], models, predictions),
        "gw-uvicorn": ([seldon, *gateway], models, "/seldon/bench" + predictions),
        "gw-granian": ([python, this, "--serve-ours", *gateway], models, "/seldon/bench" + predictions),
    }


def _ready(port: int, path: str) -> str | None:
    from lib.httpclient import http_request

    try:
        status, body = http_request(f"http://127.0.0.1:{port}{path}", BODY)
    except OSError as exc:
        return str(exc)
    if status != 200 or b"ndarray" not in body:
        return f"HTTP {status}: {body[:200]!r}"
    return None


def _wrk(port: int, path: str, duration: float) -> dict[str, Any]:
    from lib.loadgen import parse_wrk

    body_file = OUT / "rest_core_body.json"
    body_file.write_bytes(BODY)
    env = {**os.environ, "BENCH_BODY_FILE": str(body_file), "BENCH_CONTENT_TYPE": "application/json"}
    command = [
        "wrk", "-t1", "-c16", f"-d{duration:g}s", "--latency", "-s", str(BENCH / "post.lua"),
        f"http://127.0.0.1:{port}{path}",
    ]  # fmt: skip
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=duration + 60)
    return parse_wrk(done.stdout)


def _server_header(port: int, path: str) -> str:
    """The Server header of an answer: proof of which core served it."""
    import http.client

    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request("POST", path, BODY, {"content-type": "application/json"})
        return connection.getresponse().getheader("server") or ""
    finally:
        connection.close()


def measure(
    keys: list[str], repeat: int, duration: float, warmup: float, workers: int = 1
) -> dict[str, list[dict[str, Any]]]:
    from lib.processes import ProcessGroup, free_ports, group_cpu_seconds

    results: dict[str, list[dict[str, Any]]] = {key: [] for key in keys}
    work = OUT / "rest_core"
    work.mkdir(parents=True, exist_ok=True)
    for run in range(repeat):
        for key in keys:
            port, grpc_port = free_ports(2)
            argv, cwd, path = _scenarios(port, grpc_port, work, workers)[key]
            group = ProcessGroup(argv, work / f"{key}.log", cwd=cwd)
            group.start()
            try:
                group.wait_ready(lambda: _ready(port, path), timeout=60, interval=0.05)  # noqa: B023
                server = _server_header(port, path)
                _wrk(port, path, warmup)
                cpu = group_cpu_seconds(group.pgid)
                record = _wrk(port, path, duration)
                cpu = group_cpu_seconds(group.pgid) - cpu
                # CPU time per answer: steadier than req/s when other work shares the 2 cores.
                record.update(run=run, server=server, workers=workers)
                record["cpu_us"] = cpu / record["requests"] * 1e6 if record.get("requests") else None
                results[key].append(record)
                print(
                    f"run {run} {key} (server: {server}): {record['rps']} req/s, p50 {record['p50_ms']} ms, "
                    f"p99 {record['p99_ms']} ms, {record['cpu_us'] or 0:.0f} us CPU/answer, "
                    f"errors {record['errors']}",
                    flush=True,
                )
            finally:
                group.stop()
    return results


def table(results: dict[str, list[dict[str, Any]]], reference: str = "bare-rsgi") -> str:
    def med(key: str, field: str) -> float:
        return statistics.median(r[field] for r in results[key] if r.get(field))

    lines = [
        "| scenario | req/s, median (min-max) | p50 ms | p99 ms | server CPU µs per answer, median (min-max) "
        "| share of bare RSGI: req/s; 1/CPU |",
        "|---|---|---|---|---|---|",
    ]
    for key, records in results.items():
        rps = [r["rps"] for r in records if r.get("rps")]
        cpu = [r["cpu_us"] for r in records if r.get("cpu_us")]
        if not rps or not cpu:
            lines.append(f"| {key} | failed | | | | |")
            continue
        share = ""
        if results.get(reference):
            rps_share = med(key, "rps") / med(reference, "rps")
            share = f"{rps_share:.0%}; {med(reference, 'cpu_us') / med(key, 'cpu_us'):.0%}"
        lines.append(
            f"| {key} | {med(key, 'rps'):,.0f} ({min(rps):,.0f}-{max(rps):,.0f}) | {med(key, 'p50_ms'):.2f} "
            f"| {med(key, 'p99_ms'):.2f} | {med(key, 'cpu_us'):.0f} ({min(cpu):.0f}-{max(cpu):.0f}) "
            f"| {share} |"
        )
    return "\n".join(lines)


def main() -> None:
    if sys.argv[1:2] == ["--serve-ours"]:
        serve_ours_on_granian(sys.argv[2:])
        return
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--only", nargs="*", help="a subset of the scenarios")
    parser.add_argument("--workers", type=int, default=1, help="workers of ours (the bare apps: one process)")
    parser.add_argument("--json", type=Path, default=OUT / "rest_core.json")
    parser.add_argument("--report-only", action="store_true", help="print the table of --json")
    parser.add_argument("--serve-bare-rsgi", type=int, metavar="PORT", help=argparse.SUPPRESS)
    parser.add_argument("--serve-bare-on-runner", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_bare_rsgi:
        serve_bare_rsgi(args.serve_bare_rsgi)
        return
    if args.serve_bare_on_runner:
        serve_bare_on_runner(args.serve_bare_on_runner)
        return
    if args.report_only:
        print(table(json.loads(args.json.read_text())))
        return
    keys = args.only or list(_scenarios(0, 0, OUT))
    if any("rsgi" in key or "granian" in key for key in keys):
        done = subprocess.run([str(VENV / "python"), "-c", "import granian"], capture_output=True)
        if done.returncode != 0:
            sys.exit("granian is not installed in .venv: .venv/bin/pip install 'granian>=2.8,<3'")
    results = measure(keys, args.repeat, args.duration, args.warmup, args.workers)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2) + "\n")
    print(table(results))


if __name__ == "__main__":
    main()
