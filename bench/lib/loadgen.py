"""The load generators and their output parsers.

- ``wrk`` (REST, closed loop, 16 connections) and ``wrk-c1`` (one connection: latency);
- ``seq``: bench/seq_latency.py, one keep-alive connection, every request timed;
- ``h2load`` (gRPC from C: not limited by Python) and ``grpc_load``: bench/grpc_load.py (grpc.aio).

Each ``run_*`` returns one result dict as stored in results.json (``rps``, ``p50_ms``,
``p99_ms``, ``requests``, ``errors``, ...) or ``{"failed": why}``.  They know nothing of the
server but its port: the gRPC ones take an optional ``balance`` callable, sampled halfway
through the load, that counts the connections each server process holds.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .config import BENCH, OUR_VENV, OUT, Settings
from .scenarios import GrpcCall, RestCall, grpc_body_path

CLIENTS = ("wrk", "wrk-c1", "seq", "h2load", "grpc_load")
LATENCY_CLIENTS = ("wrk-c1", "seq")  # one request in flight: only for scenarios with latency=True
REST_CLIENTS = ("wrk", *LATENCY_CLIENTS)
GRPC_CLIENTS = ("h2load", "grpc_load")

Balance = Callable[[], list[int]]  # established connections per server process, right now


def secs(value: float) -> str:
    """A duration as wrk and h2load take it."""
    return f"{round(value)}s" if value >= 1 else f"{max(1, round(value * 1000))}ms"


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if not match:
        raise ValueError(f"cannot read the duration {text!r}")
    return float(match.group(1)) * _UNITS[match.group(2)]


def parse_wrk(output: str) -> dict[str, Any]:
    result: dict[str, Any] = {"client": "wrk"}
    match = re.search(r"Requests/sec:\s+([\d.]+)", output)
    result["rps"] = float(match.group(1)) if match else None
    for pct in ("50", "99"):
        match = re.search(rf"^\s+{pct}%\s+(\S+)", output, re.M)
        result[f"p{pct}_ms"] = _ms(match.group(1)) if match else None
    match = re.search(r"(\d+) requests in", output)
    result["requests"] = int(match.group(1)) if match else None
    match = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    result["non_2xx"] = int(match.group(1)) if match else 0
    match = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    result["socket_errors"] = (
        dict(zip(("connect", "read", "write", "timeout"), map(int, match.groups()), strict=True))
        if match
        else {}
    )
    result["errors"] = result["non_2xx"] + sum(result["socket_errors"].values())
    return result


def _body_file(rest: RestCall) -> Path:
    """The request body in a file, for wrk's post.lua and seq_latency.py."""
    body_file = OUT / f"body_{hashlib.sha1(rest.body).hexdigest()[:12]}.txt"
    body_file.write_bytes(rest.body)
    return body_file


def run_wrk(
    rest: RestCall, port: int, settings: Settings, duration: float, connections: int | None = None
) -> dict[str, Any]:
    env = {**os.environ, "BENCH_BODY_FILE": str(_body_file(rest)), "BENCH_CONTENT_TYPE": rest.content_type}
    command = [
        "wrk", "-t1", f"-c{connections or settings.connections}", f"-d{secs(duration)}", "--latency",
        "-s", str(BENCH / "post.lua"), f"http://127.0.0.1:{port}{rest.path}",
    ]  # fmt: skip
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=duration + 60)
    if done.returncode != 0:
        return {"client": "wrk", "failed": f"wrk exit {done.returncode}: {done.stderr.strip()[-300:]}"}
    result = parse_wrk(done.stdout)
    result["command"] = " ".join([*command[:-3], "post.lua", command[-1]])
    return result


def run_seq(rest: RestCall, port: int, settings: Settings, duration: float) -> dict[str, Any]:
    """bench/seq_latency.py: one keep-alive connection, one request at a time, every request timed."""
    command = [
        str(OUR_VENV / "bin" / "python"), str(BENCH / "seq_latency.py"),
        "--url", f"http://127.0.0.1:{port}{rest.path}", "--body-file", str(_body_file(rest)),
        "--content-type", rest.content_type, "--duration", str(duration),
        # the warm-up (shorter than a measurement) need not reach the minimum count
        "--min-requests", str(settings.seq_min_requests if duration >= settings.duration else 1),
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=duration + 120)
    if done.returncode != 0:
        return {
            "client": "seq",
            "failed": f"seq_latency.py exit {done.returncode}: {done.stderr.strip()[-300:]}",
        }
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["command"] = f"seq_latency.py --duration {duration:g} --min-requests {command[-1]}"
    return result


def run_grpc_client(
    call: GrpcCall, port: int, settings: Settings, duration: float, balance: Balance | None
) -> dict[str, Any]:
    command = [
        str(call.client_python), str(BENCH / "grpc_load.py"),
        "--target", f"127.0.0.1:{port}", "--proto", call.proto,
        "--duration", str(duration), "--warmup", "0",
        "--inflight", str(settings.connections),
        "--processes", str(settings.grpc_processes), "--channels", str(settings.grpc_channels),
    ]  # fmt: skip
    # startup: the client processes start measuring about a second after launch
    return _run_sampled(command, duration, balance, _last_json_line, startup=1.0)


def _last_json_line(stdout: str) -> dict[str, Any]:
    return json.loads(stdout.strip().splitlines()[-1])


def run_h2load(
    call: GrpcCall, port: int, settings: Settings, duration: float, balance: Balance | None
) -> dict[str, Any]:
    assert call.request is not None
    body = grpc_body_path(call.body_key or call.proto)
    body.write_bytes(b"\x00" + len(call.request).to_bytes(4, "big") + call.request)
    fd, log_name = tempfile.mkstemp(prefix="h2load-", suffix=".log", dir=OUT)
    os.close(fd)
    command = [
        "h2load", "-t1", f"-c{settings.h2load_clients}", f"-m{settings.h2load_streams}",
        "-D", secs(duration), "-d", str(body),
        "-H", "content-type: application/grpc", "-H", "te: trailers",
        "--log-file", log_name,
        f"http://127.0.0.1:{port}{call.method}",
    ]  # fmt: skip
    try:
        result = _run_sampled(command, duration, balance, lambda out: parse_h2load(out, log_name))
    finally:
        with contextlib.suppress(OSError):
            os.unlink(log_name)
    result["command"] = " ".join([*command[:-4], command[-1]])
    return result


def parse_h2load(output: str, log_name: str) -> dict[str, Any]:
    """h2load's summary, with p50/p99 from its per-request log (tab-separated: start, status, us)."""
    result: dict[str, Any] = {"client": "h2load"}
    match = re.search(r"finished in [\d.]+\w+, ([\d.]+) req/s", output)
    result["rps"] = float(match.group(1)) if match else None
    match = re.search(
        r"requests: (\d+) total, \d+ started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored",
        output,
    )
    if match:
        total, done, ok, failed, errored = map(int, match.groups())
        result.update(requests=done, succeeded=ok, errors=failed + errored + (total - done))
    match = re.search(r"traffic: .*?, [\d.]+\w*B \((\d+)\) data", output)
    if match and result.get("requests"):
        per_answer = int(match.group(1)) / result["requests"]
        result["data_bytes_per_answer"] = round(per_answer, 1)
        # A gRPC error answers HTTP 200 with no message: a data frame per answer proves real answers.
        if per_answer < 10:
            result["failed"] = f"answers carry {per_answer:.1f} data bytes: gRPC errors, not predictions"
    elapsed = []
    with contextlib.suppress(OSError):
        for line in Path(log_name).read_text().splitlines():
            parts = line.split("\t")
            if len(parts) >= 3 and parts[1] == "200":
                elapsed.append(int(parts[2]) / 1000.0)
    elapsed.sort()
    if elapsed:
        result["p50_ms"] = elapsed[min(len(elapsed) - 1, int(0.50 * len(elapsed)))]
        result["p99_ms"] = elapsed[min(len(elapsed) - 1, int(0.99 * len(elapsed)))]
    if result.get("rps") is None:
        result["failed"] = f"cannot read h2load output: {output.strip()[-300:]}"
    return result


def _run_sampled(
    command: list[str],
    duration: float,
    balance: Balance | None,
    parse: Callable[[str], dict[str, Any]],
    startup: float = 0.0,
) -> dict[str, Any]:
    """Run a load generator; halfway through, count connections per server process."""
    # Own process group: grpc_load.py forks client processes, which must go down with it.
    proc = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    connections = None
    try:
        if balance is not None:
            time.sleep(startup + duration / 2)
            connections = balance()
        out, err = proc.communicate(timeout=startup + duration + 90)
    finally:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    if proc.returncode != 0:
        return {"failed": f"{Path(command[0]).name} exit {proc.returncode}: {err.strip()[-300:]}"}
    result = parse(out)
    if connections is not None:
        result["connections_per_process"] = connections
    return result
