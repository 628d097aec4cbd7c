"""gRPC server cores, measured side by side (issue 14): which core should carry our gRPC?

The same unary work everywhere: Seldon's ``/seldon.protos.Model/Predict`` with a [1, 4]
tensor SeldonMessage in, ``softmax(x @ W + b)`` (bench/models/BenchModel.py) as a [1, 3]
tensor out, the request parsed in the handler (bytes that are not a SeldonMessage answer
INVALID_ARGUMENT, as ours do).  The cores:

- ``aio``: a bare grpc.aio server on uvloop (bench/ceiling/ceiling_server.py's gRPC half);
  with ``--processes 2``, two such processes on one port behind SO_REUSEPORT;
- ``sync``: grpcio's threaded server (``grpc.server`` with a pool of 16 threads);
- ``grpclib``: grpclib (pure-Python HTTP/2 on the ``h2`` library) on uvloop;
- ``hypercorn``: hypercorn's HTTP/2 (also ``h2``) serving an ASGI app that speaks gRPC by
  hand: length-prefixed messages, ``application/grpc``, ``grpc-status`` in trailers (ASGI's
  ``http.response.trailers`` extension);
- ``granian``: granian's Rust HTTP/2 under the same ASGI app; granian implements neither
  trailers in RSGI nor ASGI's trailers extension, so it cannot answer gRPC: it is only
  probed, to record what a client gets;
- ``ours``: ``seldon microservice BenchModel --workers N`` as it is in this work tree.

Every server runs in its own process group; load comes from h2load (C) with our usual
settings (``-c16 -m1``, bench/lib/loadgen.py); the server group's CPU time comes from
/proc, so each cell gives req/s and requests per CPU-second (the per-core cost).  The
cells run round-robin, a fresh start per repeat, so drift on the shared machine spreads
over all of them.  Run it under the benchmark lock::

    flock /tmp/bench.lock .venv/bin/python bench/grpc_cores.py

The alternative cores run in a scratch venv (``--venv``, default /tmp/grpccores-venv) with
``pip install -e . grpclib hypercorn granian``; the runner itself and ``ours`` use .venv.
Writes bench/out/grpc_cores.json and bench/out/grpc_cores.md (the tables of RESULTS.md's
"gRPC cores" section).  ``serve`` is the subcommand the runner starts the cores with.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
METHOD = "/seldon.protos.Model/Predict"
NAMES = ["c0", "c1", "c2"]
ROW = [1.0, 2.0, 3.0, 4.0]
OK, INVALID_ARGUMENT, UNIMPLEMENTED = 0, 3, 12


# --- the servers (run in the scratch venv: import only what each core needs) ---


def _work() -> Callable[[bytes], bytes | None]:
    """The handler's work on raw bytes: the answer's bytes, None when the request is not a
    SeldonMessage."""
    sys.path.insert(0, str(BENCH / "models"))
    import numpy as np
    from BenchModel import softmax_rows
    from google.protobuf.message import DecodeError

    from seldon_serving.protocol._pb import prediction_pb2 as pb

    def work(raw: bytes) -> bytes | None:
        try:
            request = pb.SeldonMessage.FromString(raw)
        except DecodeError:
            return None
        tensor = request.data.tensor
        answer = softmax_rows(np.asarray(tensor.values, dtype=np.float64).reshape(tuple(tensor.shape)))
        return pb.SeldonMessage(
            data=pb.DefaultData(
                names=NAMES, tensor=pb.Tensor(shape=list(answer.shape), values=answer.ravel().tolist())
            )
        ).SerializeToString()

    return work


def serve_aio(port: int) -> None:
    import grpc
    import uvloop

    work = _work()

    async def predict(raw: bytes, context: grpc.aio.ServicerContext[Any, Any]) -> bytes:
        answer = work(raw)
        if answer is None:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "the request is not a SeldonMessage")
        return answer  # type: ignore[return-value]

    async def main() -> None:
        server = grpc.aio.server(options=[("grpc.so_reuseport", 1)])
        handler = grpc.unary_unary_rpc_method_handler(predict)
        server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler("seldon.protos.Model", {"Predict": handler}),)
        )
        server.add_insecure_port(f"127.0.0.1:{port}")
        await server.start()
        await server.wait_for_termination()

    uvloop.run(main())


def serve_sync(port: int) -> None:
    from concurrent.futures import ThreadPoolExecutor

    import grpc

    work = _work()

    def predict(raw: bytes, context: grpc.ServicerContext) -> bytes:
        answer = work(raw)
        if answer is None:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "the request is not a SeldonMessage")
        return answer  # type: ignore[return-value]

    # 16 threads: one per h2load connection, so no call waits for a free thread.
    server = grpc.server(ThreadPoolExecutor(max_workers=16), options=[("grpc.so_reuseport", 1)])
    handler = grpc.unary_unary_rpc_method_handler(predict)
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler("seldon.protos.Model", {"Predict": handler}),)
    )
    server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    server.wait_for_termination()


def serve_grpclib(port: int) -> None:
    import asyncio
    import signal

    import uvloop
    from grpclib.const import Cardinality, Handler, Status
    from grpclib.encoding.base import CodecBase
    from grpclib.exceptions import GRPCError
    from grpclib.server import Server, Stream

    work = _work()

    class RawCodec(CodecBase):
        """Bytes through: the handler parses, as ours do (grpclib would answer INTERNAL)."""

        __content_subtype__ = "proto"

        def encode(self, message: Any, message_type: Any) -> bytes:
            return message  # type: ignore[no-any-return]

        def decode(self, data: bytes, message_type: Any) -> Any:
            return data

    class Model:
        async def predict(self, stream: Stream[bytes, bytes]) -> None:
            raw = await stream.recv_message()
            answer = work(raw or b"")
            if answer is None:
                raise GRPCError(Status.INVALID_ARGUMENT, "the request is not a SeldonMessage")
            await stream.send_message(answer)

        def __mapping__(self) -> dict[str, Handler]:
            return {METHOD: Handler(self.predict, Cardinality.UNARY_UNARY, bytes, bytes)}

    async def main() -> None:
        server = Server([Model()], codec=RawCodec())
        await server.start("127.0.0.1", port, reuse_port=True)
        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        await stop.wait()
        server.close()
        await server.wait_closed()

    uvloop.run(main())


def grpc_asgi_app() -> Callable[..., Awaitable[None]]:
    """gRPC over any ASGI HTTP/2 server that implements the trailers extension."""
    work = _work()
    grpc_headers = [(b"content-type", b"application/grpc")]

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                event = await receive()
                await send({"type": event["type"] + ".complete"})
                if event["type"] == "lifespan.shutdown":
                    return
        body = b""
        while True:
            event = await receive()
            body += event.get("body", b"")
            if not event.get("more_body"):
                break
        status, message = OK, ""
        answer = None
        if scope["path"] != METHOD:
            status, message = UNIMPLEMENTED, f"no method {scope['path']}"
        elif len(body) < 5 or body[0] != 0 or int.from_bytes(body[1:5], "big") != len(body) - 5:
            status, message = INVALID_ARGUMENT, "not one uncompressed length-prefixed message"
        else:
            answer = work(body[5:])
            if answer is None:
                status, message = INVALID_ARGUMENT, "the request is not a SeldonMessage"
        # Always headers, then the message (if any), then the status in trailers: a "trailers-only"
        # error (grpc-status in the one HEADERS frame) is what hypercorn cannot send (it ends an
        # empty body with an empty DATA frame, which grpcio reads as a stream without status).
        await send({"type": "http.response.start", "status": 200, "headers": grpc_headers, "trailers": True})
        frame = b"" if answer is None else b"\x00" + len(answer).to_bytes(4, "big") + answer
        await send({"type": "http.response.body", "body": frame})
        trailers = [(b"grpc-status", str(status).encode())]
        if message:
            trailers.append((b"grpc-message", message.encode()))
        await send({"type": "http.response.trailers", "headers": trailers})

    return app


def serve_hypercorn(port: int) -> None:
    import uvloop
    from hypercorn.asyncio import serve
    from hypercorn.config import Config

    config = Config()
    config.bind = [f"127.0.0.1:{port}"]
    config.accesslog = None
    config.loglevel = "WARNING"
    uvloop.run(serve(grpc_asgi_app(), config))  # type: ignore[arg-type]


def serve_granian(port: int) -> None:
    from granian.constants import HTTPModes, Interfaces, Loops
    from granian.server import Server

    # granian imports the app by name: this module, grpc_asgi_app as a factory.
    sys.path.insert(0, str(BENCH))
    Server(
        "grpc_cores:grpc_asgi_app",
        address="127.0.0.1",
        port=port,
        interface=Interfaces.ASGI,
        http=HTTPModes.http2,
        loop=Loops.uvloop,
        workers=1,
        factory=True,
        log_access=False,
    ).serve()


CORES: dict[str, Callable[[int], None]] = {
    "aio": serve_aio,
    "sync": serve_sync,
    "grpclib": serve_grpclib,
    "hypercorn": serve_hypercorn,
    "granian": serve_granian,
}


def serve(core: str, port: int, processes: int) -> None:
    if processes == 1:
        CORES[core](port)
        return
    # Several processes on one port (SO_REUSEPORT): this parent only waits; the group's SIGTERM
    # reaches every child directly.
    argv = [sys.executable, __file__, "serve", "--core", core, "--port", str(port), "--processes", "1"]
    children = [subprocess.Popen(argv) for _ in range(processes)]
    with contextlib.suppress(KeyboardInterrupt):
        for child in children:
            child.wait()


# --- the runner (.venv: bench/lib, our stubs, grpcio) ---


@dataclass(frozen=True)
class Cell:
    key: str
    label: str
    core: str  # a CORES key, or "ours"
    processes: int


CELLS = (
    Cell("aio-1", "(a) grpc.aio bare, uvloop", "aio", 1),
    Cell("sync-1", "(b) grpcio sync server, 16 threads", "sync", 1),
    Cell("grpclib-1", "(c) grpclib 0.4 (h2), uvloop", "grpclib", 1),
    Cell(
        "hypercorn-1", "(d) hypercorn HTTP/2 + gRPC framing by hand (ASGI trailers), uvloop", "hypercorn", 1
    ),
    Cell("ours-1", "(e) ours: `seldon microservice --workers 1`", "ours", 1),
    Cell("aio-2", "(a) grpc.aio bare x 2 processes, SO_REUSEPORT", "aio", 2),
    Cell("ours-2", "(e) ours: `seldon microservice --workers 2`", "ours", 2),
)
PROBE_ONLY = (Cell("granian-1", "granian 2.8 HTTP/2 + the same ASGI app", "granian", 1),)


def request_bytes() -> bytes:
    from seldon_serving.protocol._pb import prediction_pb2 as pb

    return pb.SeldonMessage(
        data=pb.DefaultData(tensor=pb.Tensor(shape=[1, len(ROW)], values=ROW))
    ).SerializeToString()


def grpc_call(port: int, body: bytes, timeout: float = 2.0) -> tuple[str, bytes | None, str]:
    """One call with grpcio (SeldonClient's library): (status code name, answer, details)."""
    import grpc

    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        call = channel.unary_unary(METHOD)
        try:
            answer = call(body, timeout=timeout, metadata=(("x-probe", "1"),))
        except grpc.RpcError as error:
            return error.code().name, None, str(error.details())
    return "OK", answer, ""


def answer_problem(port: int) -> str | None:
    """None when a real client gets the expected softmax row, else why not."""
    from lib.scenarios import expected_output

    from seldon_serving.protocol._pb import prediction_pb2 as pb

    code, answer, details = grpc_call(port, request_bytes())
    if answer is None:
        return f"{code}: {details}"
    values = list(pb.SeldonMessage.FromString(answer).data.tensor.values)
    expected = expected_output()
    if len(values) != len(expected) or any(abs(a - b) > 1e-9 for a, b in zip(values, expected, strict=True)):
        return f"wrong numbers: {values}"
    return None


def capabilities(port: int) -> dict[str, str]:
    """What a grpcio client sees beyond the happy path."""
    code, _, details = grpc_call(port, b"\xff\xff\xff")
    return {"bad request": f"{code} ({details})"}


def launch(cell: Cell, port: int, venv: Path, out: Path) -> Any:
    from lib.config import MODELS, OUR_VENV
    from lib.processes import ProcessGroup

    log = out / "logs" / f"grpc_cores-{cell.key}.log"
    if cell.core == "ours":
        argv = [
            str(OUR_VENV / "bin" / "seldon"), "microservice", "BenchModel", "--grpc-port", str(port),
            "--http-port", str(_spare_port(port)), "--workers", str(cell.processes), "--host", "127.0.0.1",
        ]  # fmt: skip
        return ProcessGroup(argv, log, cwd=MODELS)
    argv = [
        str(venv / "bin" / "python"), str(Path(__file__).resolve()), "serve",
        "--core", cell.core, "--port", str(port), "--processes", str(cell.processes),
    ]  # fmt: skip
    return ProcessGroup(argv, log, cwd=BENCH)


def _spare_port(taken: int) -> int:
    from lib.processes import free_ports

    return free_ports(1, {taken})[0]


def measure(cell: Cell, args: argparse.Namespace, first: bool) -> dict[str, Any]:
    from lib.config import OUR_VENV, Settings
    from lib.loadgen import run_h2load
    from lib.processes import (
        StartFailed,
        children_cpu_seconds,
        connections_per_process,
        free_ports,
        group_cpu_seconds,
        group_pids,
        machine_busy_seconds,
    )
    from lib.scenarios import GrpcCall

    port = free_ports(1)[0]
    group = launch(cell, port, args.venv, args.out)
    record: dict[str, Any] = {"key": cell.key, "label": cell.label, "processes": cell.processes}
    call = GrpcCall(METHOD, "seldon", OUR_VENV / "bin" / "python", request_bytes(), body_key="grpc_cores")
    settings = Settings(duration=args.duration, h2load_clients=args.clients, h2load_streams=args.streams)
    try:
        group.start()
        try:
            record["start_s"] = round(group.wait_ready(lambda: answer_problem(port), 30.0, 0.05), 3)
        except StartFailed as failure:
            record["failed"] = str(failure)
            return record
        if first:
            record["capabilities"] = capabilities(port)
        run_h2load(call, port, Settings(duration=args.warmup, h2load_clients=args.clients), args.warmup, None)
        balance = (lambda: connections_per_process(group.pgid, port)) if cell.processes > 1 else None
        cpu0, client0, busy0, t0 = (
            group_cpu_seconds(group.pgid), children_cpu_seconds(), machine_busy_seconds(), time.perf_counter()
        )  # fmt: skip
        result = run_h2load(call, port, settings, args.duration, balance)
        wall = time.perf_counter() - t0
        server_cpu = group_cpu_seconds(group.pgid) - cpu0
        client_cpu = children_cpu_seconds() - client0
        other_cpu = machine_busy_seconds() - busy0 - server_cpu - client_cpu
        record.update(result)
        record.update(
            wall_s=round(wall, 2),
            server_cpu_s=round(server_cpu, 2),
            server_cpu_pct=round(100 * server_cpu / wall, 1),
            client_cpu_pct=round(100 * client_cpu / wall, 1),
            other_cpu_pct=round(max(0.0, 100 * other_cpu / wall / (os.cpu_count() or 1)), 1),
            server_processes=len(group_pids(group.pgid)),
        )
        if result.get("requests") and server_cpu > 0:
            record["req_per_cpu_s"] = round(result["requests"] / server_cpu, 1)
        return record
    finally:
        group.stop()


def measure_undisturbed(cell: Cell, args: argparse.Namespace, first: bool) -> dict[str, Any]:
    """Wait (bounded) for a quiet machine, measure; when other work took more than
    --disturbed % of the machine in the window, measure again (--retries) and keep the least
    disturbed attempt.  Others' tests share these 2 cores: this is the noise control."""
    from lib.config import Settings
    from lib.measure import wait_quiet

    attempts = []
    for _ in range(args.retries + 1):
        quiet = wait_quiet(Settings(max_idle_wait=args.max_idle_wait))
        record = {**measure(cell, args, first and not attempts), **quiet}
        attempts.append(record)
        if "failed" in record or record.get("other_cpu_pct", 0.0) <= args.disturbed:
            break
    best = min(attempts, key=lambda r: ("failed" in r, r.get("other_cpu_pct", 0.0)))
    best["attempts_other_cpu_pct"] = [r.get("other_cpu_pct") for r in attempts]
    for attempt in attempts:  # probed on the first attempt only
        if "capabilities" in attempt:
            best.setdefault("capabilities", attempt["capabilities"])
    return best


def probe_only(cell: Cell, args: argparse.Namespace) -> dict[str, Any]:
    """Start, call once with grpcio and once with h2load, stop: what a client gets."""
    from lib.processes import StartFailed, free_ports

    port = free_ports(1)[0]
    group = launch(cell, port, args.venv, args.out)
    record: dict[str, Any] = {"key": cell.key, "label": cell.label}
    try:
        group.start()
        deadline = time.monotonic() + 20
        problem = "no answer"
        while time.monotonic() < deadline and not group.exited():
            problem = answer_problem(port) or "answers correctly"
            if not problem.startswith("UNAVAILABLE"):
                break
            time.sleep(0.1)
        record["grpcio_client"] = problem
        done = subprocess.run(
            ["h2load", "-n1", "-c1", "-H", "content-type: application/grpc", "-H", "te: trailers",
             "-d", str(args.out / "grpc_body_grpc_cores.bin"), "-v", f"http://127.0.0.1:{port}{METHOD}"],
            capture_output=True, text=True, timeout=30,
        )  # fmt: skip
        record["h2load_headers"] = [
            line.strip() for line in done.stdout.splitlines() if "grpc-" in line or ":status" in line
        ]
        if group.exited():
            record["server_log"] = group.log_reason()
    except StartFailed as failure:
        record["failed"] = str(failure)
    finally:
        record["server_log_tail"] = group.log_tail(600)
        group.stop()
    return record


def versions(venv: Path) -> dict[str, str]:
    code = (
        "import importlib.metadata as m, json, sys\n"
        "names = ['grpcio', 'protobuf', 'grpclib', 'h2', 'hypercorn', 'granian', 'uvloop', 'numpy']\n"
        "print(json.dumps({'python': sys.version.split()[0], **{n: m.version(n) for n in names}}))\n"
    )
    found = json.loads(subprocess.run([str(venv / "bin" / "python"), "-c", code], capture_output=True,
                                      text=True, check=True).stdout)  # fmt: skip
    found["h2load"] = subprocess.run(["h2load", "--version"], capture_output=True, text=True).stdout.strip()
    found["kernel"] = platform.release()
    found["cpus"] = str(os.cpu_count())
    found["git"] = subprocess.run(
        ["git", "-C", str(BENCH.parent), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    return found


# --- the report ---


def _median_range(values: list[float], digits: int = 0) -> str:
    if not values:
        return "-"
    fmt = f"{{:,.{digits}f}}"
    text = fmt.format(statistics.median(values))
    return text if len(values) == 1 else f"{text} ({fmt.format(min(values))}-{fmt.format(max(values))})"


def report(data: dict[str, Any]) -> str:
    runs = data["runs"]
    lines = [
        "| core | processes | req/s, median (min-max) | req per server CPU-second | server CPU % | "
        "server CPU us/req | p50 ms | p99 ms | other CPU % (max) | errors |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    per_cpu: dict[str, float] = {}
    rps: dict[str, float] = {}
    for cell in CELLS:
        records = [r for r in runs if r["key"] == cell.key]
        good = [r for r in records if "failed" not in r and r.get("rps")]
        if not good:
            why = next((r["failed"] for r in records if "failed" in r), "not measured")
            lines.append(f"| {cell.label} | {cell.processes} | {why} | - | - | - | - | - | - | - |")
            continue
        per_cpu[cell.key] = statistics.median(r["req_per_cpu_s"] for r in good)
        rps[cell.key] = statistics.median(r["rps"] for r in good)
        us = [1e6 * r["server_cpu_s"] / r["requests"] for r in good]
        lines.append(
            f"| {cell.label} | {cell.processes} | {_median_range([r['rps'] for r in good])} | "
            f"{_median_range([r['req_per_cpu_s'] for r in good])} | "
            f"{_median_range([r['server_cpu_pct'] for r in good])} | {_median_range(us)} | "
            f"{_median_range([r['p50_ms'] for r in good], 2)} | "
            f"{_median_range([r['p99_ms'] for r in good], 2)} | "
            f"{max(r['other_cpu_pct'] for r in good):.0f} | {sum(r.get('errors', 0) for r in good)} |"
        )
    lines += [
        "",
        "Ratios of medians (req/s and req per server CPU-second) to ours at the same process count:",
        "",
    ]
    for cell in CELLS:
        base = f"ours-{cell.processes}"
        if cell.key in per_cpu and base in per_cpu and cell.core != "ours":
            lines.append(
                f"- {cell.label}: {rps[cell.key] / rps[base]:.2f}x req/s, "
                f"{per_cpu[cell.key] / per_cpu[base]:.2f}x per CPU-second"
            )
    # The same per CPU-second ratio over the quiet repeats only (other work <= 15% of the machine).
    quiet: dict[str, float] = {}
    for cell in CELLS:
        values = [
            r["req_per_cpu_s"]
            for r in runs
            if r["key"] == cell.key and r.get("req_per_cpu_s") and r.get("other_cpu_pct", 100.0) <= 15.0
        ]
        if values:
            quiet[cell.key] = statistics.median(values)
    for cell in CELLS:
        base = f"ours-{cell.processes}"
        if cell.key in quiet and base in quiet and cell.core != "ours":
            mine = [r for r in runs if r["key"] == cell.key]
            count = sum(1 for r in mine if r.get("other_cpu_pct", 100.0) <= 15.0)
            lines.append(
                f"- {cell.label}, quiet repeats only ({count} of {len(mine)}, ours' likewise): "
                f"{quiet[cell.key] / quiet[base]:.2f}x per CPU-second"
            )
    if "aio-2" in rps and "aio-1" in rps and "ours-2" in rps and "ours-1" in rps:
        lines.append(
            f"- scaling 1 -> 2 processes: grpc.aio bare {rps['aio-2'] / rps['aio-1']:.2f}x req/s, "
            f"ours {rps['ours-2'] / rps['ours-1']:.2f}x req/s"
        )
    balances = [
        f"{r['key']} run {r['repeat']}: {r['connections_per_process']}"
        for r in runs
        if r.get("connections_per_process") is not None
    ]
    if balances:
        lines += ["", "Connections per server process halfway through (SO_REUSEPORT): " + "; ".join(balances)]
    caps = [f"{r['key']}: {r['capabilities']['bad request']}" for r in runs if "capabilities" in r]
    if caps:
        lines += ["", "A grpcio client sending bytes that are not a SeldonMessage gets: " + "; ".join(caps)]
    for probe in data.get("probes", []):
        lines += ["", f"{probe['label']}: a grpcio client gets `{probe.get('grpcio_client')}`; "
                  f"h2load sees {probe.get('h2load_headers')}"]  # fmt: skip
    return "\n".join(lines) + "\n"


def run(args: argparse.Namespace) -> None:
    sys.path.insert(0, str(BENCH))
    args.out.mkdir(parents=True, exist_ok=True)
    data: dict[str, Any] = {
        "started": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items() if k != "func"},
        "versions": versions(args.venv),
        "runs": [],
        "probes": [],
    }
    cells = [c for c in CELLS if not args.only or c.key in args.only]
    (args.out / "grpc_body_grpc_cores.bin").write_bytes(
        b"\x00" + len(request_bytes()).to_bytes(4, "big") + request_bytes()
    )
    if not args.only or "granian-1" in args.only:
        for cell in PROBE_ONLY:
            data["probes"].append(probe_only(cell, args))
            print(json.dumps(data["probes"][-1]), flush=True)
    for repeat in range(1, args.repeat + 1):
        for cell in cells:
            record = measure_undisturbed(cell, args, first=repeat == 1)
            record["repeat"] = repeat
            data["runs"].append(record)
            shown = {k: record.get(k) for k in ("key", "repeat", "rps", "req_per_cpu_s", "server_cpu_pct",
                                                  "p99_ms", "other_cpu_pct", "failed")}  # fmt: skip
            print(json.dumps(shown), flush=True)
    data["finished"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    (args.out / "grpc_cores.json").write_text(json.dumps(data, indent=1))
    text = report(data)
    (args.out / "grpc_cores.md").write_text(text)
    print(text)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command")
    server = sub.add_parser("serve", help="run one core (used by the runner)")
    server.add_argument("--core", choices=sorted(CORES), required=True)
    server.add_argument("--port", type=int, required=True)
    server.add_argument("--processes", type=int, default=1)
    parser.add_argument("--venv", type=Path, default=Path("/tmp/grpccores-venv"))
    parser.add_argument("--out", type=Path, default=BENCH / "out")
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--clients", type=int, default=16, help="h2load connections (-c)")
    parser.add_argument("--streams", type=int, default=1, help="h2load streams per connection (-m)")
    parser.add_argument("--max-idle-wait", type=float, default=20.0, help="s to wait for a quiet machine")
    parser.add_argument("--disturbed", type=float, default=15.0, help="other CPU %% that voids a cell")
    parser.add_argument("--retries", type=int, default=1, help="extra attempts for a disturbed cell")
    parser.add_argument("--only", nargs="*", help="cell keys (aio-1, ..., granian-1)")
    parser.add_argument("--report-only", action="store_true", help="re-render grpc_cores.md from the json")
    args = parser.parse_args()
    if args.command == "serve":
        serve(args.core, args.port, args.processes)
    elif args.report_only:
        text = report(json.loads((args.out / "grpc_cores.json").read_text()))
        (args.out / "grpc_cores.md").write_text(text)
        print(text)
    else:
        run(args)


if __name__ == "__main__":
    main()
