"""Benchmark orchestration: our microservice vs seldon-core-microservice vs MLServer.

Every measurement starts its server fresh in its own process group, measures the
cold start (Popen to first correct predict answer, polled every 10 ms), warms up
for 2 s with the same load generator, reads idle RSS/PSS of the whole process
group, runs the load (wrk for REST; grpc_load.py and h2load for gRPC), then stops
the group (SIGTERM, SIGKILL after 5 s).  Results go to bench/out/results.json and
bench/RESULTS.md.

Adding a scenario (e.g. a gateway in front of a model) means adding one
``Scenario`` to ``build_scenarios``: a launch command, and the REST and/or gRPC
call to load it with.  The report compares every scenario of a protocol and worker
count against the one marked ``ours``.

Entry point: ``bash bench/run.sh [--quick] [--repeat N] [--only KEY ...]``.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import hashlib
import json
import os
import platform
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
OUT = BENCH / "out"
MODELS = BENCH / "models"
MLSERVER_MODEL = BENCH / "mlserver_model"
OUR_VENV = REPO / ".venv"
SELDON_VENV = REPO / ".venv-compat"
MLSERVER_VENV = Path(os.environ.get("MLSERVER_VENV", "/tmp/mlsvenv"))

ROW = [1.0, 2.0, 3.0, 4.0]
SELDON_JSON = json.dumps({"data": {"ndarray": [ROW]}}, separators=(",", ":")).encode()
V2_JSON = json.dumps(
    {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP64", "data": ROW}]}, separators=(",", ":")
).encode()

# Targets from the issue (ratios: ours / peer at equal worker count).
TARGET_REST_VS_SELDON = 5.0
TARGET_REST_VS_MLSERVER = 3.0
TARGET_GRPC_VS_SELDON = 3.0
TARGET_COLD_START_S = 1.0
TARGET_IDLE_RSS_MB = 80.0
# Gateway targets (issue 3): 1 worker each, REST.
TARGET_GATEWAY_SHARE = 0.80  # in-process single-model gateway req/s / bare microservice req/s (wrk -c16)
TARGET_INPROCESS_HOP_US = 50.0  # p50 added per in-process graph hop (1 connection)
TARGET_REMOTE_HOP_US = 1000.0  # p50 added per remote (REST) hop (1 connection)

GATEWAY_PATH = "/seldon/bench/api/v1.0/predictions"
# Gateway scenarios, in report order; they get their own section of the report.
GATEWAY_KEYS = ("gw-single", "gw-ab", "gw-chain3", "gw-remote3")
LATENCY_CLIENTS = ("wrk-c1", "seq")  # one request in flight: only for scenarios with latency=True

CLK_TCK = os.sysconf("SC_CLK_TCK")


def expected_output() -> list[float]:
    sys.path.insert(0, str(MODELS))
    try:
        import BenchModel  # the very class the servers load

        return [float(v) for v in BenchModel.softmax_rows([ROW])[0]]
    finally:
        sys.path.remove(str(MODELS))


EXPECTED = expected_output()


def _close(values: Any) -> bool:
    try:
        flat = [float(v) for v in values]
    except (TypeError, ValueError):
        return False
    return len(flat) == len(EXPECTED) and all(abs(a - b) < 1e-9 for a, b in zip(flat, EXPECTED, strict=True))


def check_seldon_json(body: bytes) -> str | None:
    """None when the answer is the expected softmax row, else why not."""
    try:
        data = json.loads(body)["data"]
        values = data["ndarray"][0] if "ndarray" in data else data["tensor"]["values"]
    except (ValueError, KeyError, IndexError, TypeError):
        return f"unexpected answer: {body[:200]!r}"
    return None if _close(values) else f"wrong numbers: {values}"


def check_v2_json(body: bytes) -> str | None:
    try:
        values = json.loads(body)["outputs"][0]["data"]
    except (ValueError, KeyError, IndexError, TypeError):
        return f"unexpected answer: {body[:200]!r}"
    return None if _close(values) else f"wrong numbers: {values}"


# ---------------------------------------------------------------- scenarios


@dataclass(frozen=True)
class Ports:
    http: int
    grpc: int
    metrics: int


@dataclass
class Launch:
    argv: list[str]
    cwd: Path
    env: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class RestCall:
    path: str
    body: bytes
    check: Callable[[bytes], str | None]
    content_type: str = "application/json"


@dataclass(frozen=True)
class GrpcCall:
    method: str  # /package.Service/Method
    proto: str  # grpc_load.py --proto
    client_python: Path  # an interpreter that has the stubs grpc_load.py needs
    request: bytes | None  # serialized request message (None: could not be built)
    request_error: str = ""


@dataclass(frozen=True)
class Scenario:
    key: str  # stack id: "ours", "seldon", "mlserver", later "gateway"...
    label: str
    workers: int
    launch: Callable[[Ports], Launch]
    rest: RestCall | None = None
    grpc: GrpcCall | None = None
    ours: bool = False
    note: str = ""
    unavailable: str = ""  # non-empty: do not even try (e.g. venv missing)
    latency: bool = False  # also measured at one request in flight (wrk -c1, seq_latency.py)


def _ours(ports: Ports, workers: int) -> Launch:
    argv = [
        str(OUR_VENV / "bin" / "seldon"), "microservice", "BenchModel",
        "--http-port", str(ports.http), "--grpc-port", str(ports.grpc),
        "--workers", str(workers), "--host", "127.0.0.1",
    ]  # fmt: skip
    return Launch(argv, MODELS)


def _gateway_dir(key: str, ports: Ports) -> Path:
    """A fresh work directory (state, generated manifest) for one gateway start."""
    path = OUT / "gateway" / f"{key}-{ports.http}"
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


def _gateway(ports: Ports, key: str, manifest: str, workers: int = 1) -> Launch:
    """`seldon serve` of a manifest of bench/models (its MODEL_NAME classes live there)."""
    argv = [
        str(OUR_VENV / "bin" / "seldon"), "serve", str(MODELS / manifest),
        "--http-port", str(ports.http), "--grpc-port", str(ports.grpc),
        "--workers", str(workers), "--state-dir", str(_gateway_dir(key, ports) / "state"),
        "--host", "127.0.0.1",
    ]  # fmt: skip
    return Launch(argv, MODELS)


def _gateway_remote(ports: Ports, key: str, workers: int = 1) -> Launch:
    """bench/gateway_remote.py: 3 `seldon microservice` processes, then exec `seldon serve`."""
    argv = [
        str(OUR_VENV / "bin" / "python"), str(BENCH / "gateway_remote.py"),
        "--http-port", str(ports.http), "--grpc-port", str(ports.grpc),
        "--work-dir", str(_gateway_dir(key, ports)), "--workers", str(workers),
    ]  # fmt: skip
    return Launch(argv, MODELS)


def _seldon(ports: Ports, workers: int, hide_tensorflow: bool = False) -> Launch:
    # --workers only sets gunicorn's REST workers; --grpc-workers sets the gRPC
    # processes (default 1), so both are given for an equal worker count.
    argv = [
        str(SELDON_VENV / "bin" / "seldon-core-microservice"), "BenchModel",
        "--http-port", str(ports.http), "--grpc-port", str(ports.grpc),
        "--metrics-port", str(ports.metrics),
        "--workers", str(workers), "--grpc-workers", str(workers),
    ]  # fmt: skip
    env = {"TF_CPP_MIN_LOG_LEVEL": "3"}
    if hide_tensorflow:
        # seldon-core imports tensorflow whenever it is importable (imports_helper.py); this
        # venv has it.  A package that fails to import makes it behave as a plain
        # `pip install seldon-core` (no tensorflow extra), as in BASELINE.md.
        shim = OUT / "no_tensorflow" / "tensorflow"
        shim.mkdir(parents=True, exist_ok=True)
        (shim / "__init__.py").write_text('raise ImportError("tensorflow hidden by bench/run_bench.py")\n')
        env["PYTHONPATH"] = str(shim.parent)
    return Launch(argv, MODELS, env)


def _ceiling(ports: Ports) -> Launch:
    argv = [
        str(OUR_VENV / "bin" / "python"), str(BENCH / "ceiling" / "ceiling_server.py"),
        "--http-port", str(ports.http), "--grpc-port", str(ports.grpc),
    ]  # fmt: skip
    return Launch(argv, REPO)


def _mlserver(ports: Ports, workers: int) -> Launch:
    env = {
        "MLSERVER_HTTP_PORT": str(ports.http),
        "MLSERVER_GRPC_PORT": str(ports.grpc),
        "MLSERVER_METRICS_PORT": str(ports.metrics),
    }
    folder = MLSERVER_MODEL
    if workers > 1:
        # bench/mlserver_model/settings.json pins parallel_workers=0 (one process);
        # for N inference workers use a copy of the settings with parallel_workers=N.
        folder = OUT / f"mlserver_parallel_{workers}"
        folder.mkdir(parents=True, exist_ok=True)
        settings = json.loads((MLSERVER_MODEL / "settings.json").read_text())
        settings["parallel_workers"] = workers
        (folder / "settings.json").write_text(json.dumps(settings, indent=2) + "\n")
        shutil.copy(MLSERVER_MODEL / "model-settings.json", folder / "model-settings.json")
        env["PYTHONPATH"] = str(MLSERVER_MODEL)  # bench_runtime.py stays in one place
    return Launch([str(MLSERVER_VENV / "bin" / "mlserver"), "start", str(folder)], REPO, env)


def _seldon_request() -> GrpcCall:
    return _grpc_call("/seldon.protos.Model/Predict", "seldon", OUR_VENV / "bin" / "python")


def _v2_request() -> GrpcCall:
    return _grpc_call("/inference.GRPCInferenceService/ModelInfer", "v2", MLSERVER_VENV / "bin" / "python")


def _grpc_call(method: str, proto: str, python: Path) -> GrpcCall:
    """Serialize the request once with the stubs of the interpreter that will load it."""
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"grpc_body_{proto}.bin"
    try:
        subprocess.run(
            [str(python), str(BENCH / "grpc_load.py"), "--proto", proto, "--dump-body", str(path)],
            check=True,
            capture_output=True,
            timeout=60,
        )
        framed = path.read_bytes()
        return GrpcCall(method, proto, python, framed[5:])
    except (OSError, subprocess.SubprocessError) as exc:
        stderr = getattr(exc, "stderr", b"") or b""
        reason = stderr.decode(errors="replace").strip().splitlines()[-1:] or [str(exc)]
        return GrpcCall(method, proto, python, None, f"cannot build the {proto} request: {reason[0]}")


def _missing(path: Path) -> str:
    return "" if path.exists() else f"{path} is not installed"


def build_scenarios() -> list[Scenario]:
    """Every server of the benchmark.  Add new ones here."""
    seldon_rest = RestCall("/api/v1.0/predictions", SELDON_JSON, check_seldon_json)
    seldon_grpc = _seldon_request()
    v2_rest = RestCall("/v2/models/bench/infer", V2_JSON, check_v2_json)
    v2_grpc = _v2_request()
    scenarios = []
    seldon_missing = _missing(SELDON_VENV / "bin" / "seldon-core-microservice")
    for workers in (1, 2):
        count = f"{workers} worker" + ("s" if workers > 1 else "")
        scenarios.append(
            Scenario(
                "ours", f"**Seldon Serving (ours)**, {count}", workers,
                lambda ports, w=workers: _ours(ports, w), seldon_rest, seldon_grpc, ours=True,
                unavailable=_missing(OUR_VENV / "bin" / "seldon"), latency=workers == 1,
            )
        )  # fmt: skip
        scenarios.append(
            Scenario(
                "seldon", f"seldon-core 1.18.2 as installed here (imports tensorflow), {count}", workers,
                lambda ports, w=workers: _seldon(ports, w), seldon_rest, seldon_grpc,
                note="--workers N --grpc-workers N", unavailable=seldon_missing,
            )
        )  # fmt: skip
        scenarios.append(
            Scenario(
                "seldon-notf", f"seldon-core 1.18.2 without tensorflow, {count}", workers,
                lambda ports, w=workers: _seldon(ports, w, hide_tensorflow=True), seldon_rest, seldon_grpc,
                note="--workers N --grpc-workers N; tensorflow hidden", unavailable=seldon_missing,
            )
        )  # fmt: skip
        scenarios.append(
            Scenario(
                "mlserver",
                "MLServer 1.7.1, parallel_workers=0 (one process)" if workers == 1
                else f"MLServer 1.7.1, parallel_workers={workers}",
                workers, lambda ports, w=workers: _mlserver(ports, w), v2_rest, v2_grpc,
                note="V2 protocol",
                unavailable=_missing(MLSERVER_VENV / "bin" / "mlserver"),
            )
        )  # fmt: skip
    scenarios.append(
        Scenario(
            "ceiling", "_ceiling: bare uvicorn ASGI + grpc.aio, same work (reference, not a product)_", 1,
            _ceiling, seldon_rest, seldon_grpc, note="bench/ceiling/ceiling_server.py",
        )
    )  # fmt: skip
    gateway_rest = RestCall(GATEWAY_PATH, SELDON_JSON, check_seldon_json)
    no_seldon = _missing(OUR_VENV / "bin" / "seldon")
    scenarios += [
        Scenario(
            "gw-single", "gateway, 1 in-process node (BenchModel)", 1,
            lambda ports: _gateway(ports, "gw-single", "gateway_single.yaml"), gateway_rest,
            note="bench/models/gateway_single.yaml", unavailable=no_seldon, latency=True,
        ),
        Scenario(
            "gw-ab", "gateway, RANDOM_ABTEST over 2 in-process BenchModel", 1,
            lambda ports: _gateway(ports, "gw-ab", "gateway_ab.yaml"), gateway_rest,
            note="bench/models/gateway_ab.yaml", unavailable=no_seldon,
        ),
        Scenario(
            "gw-chain3", "gateway, 3-node in-process chain (transformer -> transformer -> model)", 1,
            lambda ports: _gateway(ports, "gw-chain3", "gateway_chain3.yaml"), gateway_rest,
            note="bench/models/gateway_chain3.yaml", unavailable=no_seldon, latency=True,
        ),
        Scenario(
            "gw-remote3", "gateway, 3-node chain of remote microservices over REST", 1,
            lambda ports: _gateway_remote(ports, "gw-remote3"), gateway_rest,
            note="bench/gateway_remote.py: 3 x `seldon microservice --workers 1` + gateway",
            unavailable=no_seldon, latency=True,
        ),
    ]  # fmt: skip
    return scenarios


# Peers for the targets: a target is judged against the FASTEST variant of a peer.
PEERS = {"seldon-core": ("seldon", "seldon-notf"), "MLServer": ("mlserver",)}
ROW_ORDER = ["ours", "seldon", "seldon-notf", "mlserver", "ceiling", *GATEWAY_KEYS]


# ---------------------------------------------------------------- processes


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def fresh_ports() -> Ports:
    ports: set[int] = set()
    while len(ports) < 3:
        ports.add(free_port())
    http, grpc_port, metrics = sorted(ports)
    return Ports(http, grpc_port, metrics)


def _proc_stat(pid: int | str) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2 :].split()  # fields from 3 (state) on


def group_pids(pgid: int) -> list[int]:
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = _proc_stat(entry)
            if fields is not None and int(fields[2]) == pgid:
                pids.append(int(entry))
    return sorted(pids)


def group_cpu_seconds(pgid: int) -> float:
    total = 0
    for pid in group_pids(pgid):
        fields = _proc_stat(pid)
        if fields is not None:
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / CLK_TCK


def machine_busy_seconds() -> float:
    """CPU seconds spent busy by the whole machine so far (all cores)."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = values[:8]
    return (user + nice + system + irq + softirq + steal) / CLK_TCK


def children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def memory(pgid: int) -> dict[str, Any]:
    """RSS and PSS (MB) of every process of the group, from smaps_rollup."""
    processes = []
    for pid in group_pids(pgid):
        values = {}
        try:
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                name, _, rest = line.partition(":")
                if name in ("Rss", "Pss"):
                    values[name.lower()] = int(rest.split()[0]) / 1024.0
        except OSError:
            continue
        if values:
            processes.append({"pid": pid, **values})
    return {
        "rss_mb": sum(p.get("rss", 0.0) for p in processes),
        "pss_mb": sum(p.get("pss", 0.0) for p in processes),
        "max_process_rss_mb": max((p.get("rss", 0.0) for p in processes), default=0.0),
        "processes": len(processes),
        "per_process": processes,
    }


def connections_per_process(pgid: int, port: int) -> list[int]:
    """Established TCP connections on `port` held by each process of the group (balance check)."""
    inodes: dict[str, int] = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                parts = line.split()
                local_port = int(parts[1].rsplit(":", 1)[1], 16)
                if local_port == port and parts[3] == "01":
                    inodes[parts[9]] = 0
    counts = []
    for pid in group_pids(pgid):
        seen = 0
        with contextlib.suppress(OSError):
            for fd in os.listdir(f"/proc/{pid}/fd"):
                with contextlib.suppress(OSError):
                    target = os.readlink(f"/proc/{pid}/fd/{fd}")
                    if target.startswith("socket:[") and target[8:-1] in inodes:
                        seen += 1
        if seen:
            counts.append(seen)
    return sorted(counts, reverse=True)


class StartFailed(Exception):
    pass


class Server:
    """One server under test, alive inside a `with` block, in its own process group."""

    def __init__(self, scenario: Scenario, log_path: Path) -> None:
        self.scenario = scenario
        self.ports = fresh_ports()
        self.launch = scenario.launch(self.ports)
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None
        self.cold_start_s: float | None = None

    def __enter__(self) -> Server:
        env = {**os.environ, **self.launch.env}
        env.pop("VIRTUAL_ENV", None)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "wb") as log:
            started = time.perf_counter()
            self.proc = subprocess.Popen(
                self.launch.argv,
                cwd=self.launch.cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            self._wait_ready(started)
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def pgid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def _wait_ready(self, started: float, timeout: float = 30.0) -> None:
        rest = self.scenario.rest
        assert rest is not None and self.proc is not None
        url = f"http://127.0.0.1:{self.ports.http}{rest.path}"
        last = "no answer"
        while True:
            if self.proc.poll() is not None:
                raise StartFailed(f"exited with code {self.proc.returncode}: {self.log_reason()}")
            try:
                status, body = http_post(url, rest.body, rest.content_type, timeout=2.0)
            except OSError as exc:
                last = f"{type(exc).__name__}: {exc}"
            else:
                problem = None if status == 200 else f"HTTP {status}: {body[:200]!r}"
                problem = problem or rest.check(body)
                if problem is None:
                    self.cold_start_s = time.perf_counter() - started
                    return
                last = problem
            if time.perf_counter() - started > timeout:
                raise StartFailed(
                    f"no correct answer within {timeout:.0f} s (last: {last}); log: {self.log_reason()}"
                )
            time.sleep(0.01)

    def wait_grpc(self, timeout: float = 30.0) -> None:
        call = self.scenario.grpc
        assert call is not None and call.request is not None
        import grpc

        deadline = time.perf_counter() + timeout
        last = ""
        with grpc.insecure_channel(f"127.0.0.1:{self.ports.grpc}") as channel:
            rpc = channel.unary_unary(call.method)  # raw bytes in and out
            while time.perf_counter() < deadline:
                try:
                    answer = rpc(call.request, timeout=2.0)
                    if answer:
                        return
                    last = "empty answer"
                except grpc.RpcError as exc:
                    last = f"{exc.code().name}: {exc.details()}"  # type: ignore[attr-defined]
                time.sleep(0.01)
        raise StartFailed(f"gRPC never answered within {timeout:.0f} s (last: {last})")

    def log_reason(self) -> str:
        """The most telling line of the server's log (last error or last line)."""
        with contextlib.suppress(OSError):
            lines = [line.strip() for line in self.log_path.read_text(errors="replace").splitlines()]
            lines = [line for line in lines if line]
            errors = [line for line in lines if re.search(r"(Error|Exception|error:)", line)]
            if errors:
                return errors[-1][:300]
            if lines:
                return lines[-1][:300]
        return "empty log"

    def stop(self) -> None:
        if self.proc is None:
            return
        pgid = self.proc.pid
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGTERM)
        deadline = time.monotonic() + 5.0
        while time.monotonic() < deadline and group_pids(pgid):
            with contextlib.suppress(ChildProcessError):
                self.proc.poll()
            time.sleep(0.05)
        if group_pids(pgid):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=5.0)
        deadline = time.monotonic() + 5.0
        while group_pids(pgid) and time.monotonic() < deadline:  # reparented grandchildren
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, signal.SIGKILL)
            time.sleep(0.05)
        self.proc = None


def http_post(url: str, body: bytes, content_type: str, timeout: float) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=body, headers={"Content-Type": content_type}, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


# ---------------------------------------------------------------- load generators


@dataclass
class Settings:
    duration: float = 10.0
    warmup: float = 2.0
    connections: int = 16
    grpc_processes: int = 2
    grpc_channels: int = 8  # per client process: 16 connections, one call in flight each
    h2load_clients: int = 16  # connections, like wrk's 16
    h2load_streams: int = 1
    latency_connections: int = 1  # wrk-c1: one request in flight
    seq_min_requests: int = 2000  # seq_latency.py: at least this many timed requests
    idle_quiet_pct: float = 15.0  # machine busy % under which a cell may start
    max_idle_wait: float = 30.0  # ... or after waiting this long
    disturbed_pct: float = 15.0  # other processes' share of the machine that voids a cell
    retries: int = 2  # extra attempts for a disturbed cell


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
    body_file = OUT / f"body_{hashlib.sha1(rest.body).hexdigest()[:12]}.txt"
    body_file.write_bytes(rest.body)
    return body_file


def run_wrk(
    server: Server, settings: Settings, duration: float, connections: int | None = None
) -> dict[str, Any]:
    rest = server.scenario.rest
    assert rest is not None
    body_file = _body_file(rest)
    env = {**os.environ, "BENCH_BODY_FILE": str(body_file), "BENCH_CONTENT_TYPE": rest.content_type}
    command = [
        "wrk", "-t1", f"-c{connections or settings.connections}", f"-d{_secs(duration)}", "--latency",
        "-s", str(BENCH / "post.lua"), f"http://127.0.0.1:{server.ports.http}{rest.path}",
    ]  # fmt: skip
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=duration + 60)
    if done.returncode != 0:
        return {"client": "wrk", "failed": f"wrk exit {done.returncode}: {done.stderr.strip()[-300:]}"}
    result = parse_wrk(done.stdout)
    result["command"] = " ".join([*command[:-3], "post.lua", command[-1]])
    return result


def run_seq(server: Server, settings: Settings, duration: float) -> dict[str, Any]:
    """bench/seq_latency.py: one keep-alive connection, one request at a time, every request timed."""
    rest = server.scenario.rest
    assert rest is not None
    command = [
        str(OUR_VENV / "bin" / "python"), str(BENCH / "seq_latency.py"),
        "--url", f"http://127.0.0.1:{server.ports.http}{rest.path}", "--body-file", str(_body_file(rest)),
        "--content-type", rest.content_type, "--duration", str(duration),
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


def _secs(value: float) -> str:
    return f"{round(value)}s" if value >= 1 else f"{max(1, round(value * 1000))}ms"


def run_grpc_client(server: Server, settings: Settings, duration: float, sample: bool) -> dict[str, Any]:
    call = server.scenario.grpc
    assert call is not None
    command = [
        str(call.client_python), str(BENCH / "grpc_load.py"),
        "--target", f"127.0.0.1:{server.ports.grpc}", "--proto", call.proto,
        "--duration", str(duration), "--warmup", "0",
        "--inflight", str(settings.connections),
        "--processes", str(settings.grpc_processes), "--channels", str(settings.grpc_channels),
    ]  # fmt: skip
    return _run_sampled(command, server, duration, sample, _parse_grpc_load, startup=1.0)


def _parse_grpc_load(stdout: str) -> dict[str, Any]:
    return json.loads(stdout.strip().splitlines()[-1])


def run_h2load(server: Server, settings: Settings, duration: float, sample: bool) -> dict[str, Any]:
    call = server.scenario.grpc
    assert call is not None and call.request is not None
    body = OUT / f"grpc_body_{call.proto}.bin"
    body.write_bytes(b"\x00" + len(call.request).to_bytes(4, "big") + call.request)
    fd, log_name = tempfile.mkstemp(prefix="h2load-", suffix=".log", dir=OUT)
    os.close(fd)
    command = [
        "h2load", "-t1", f"-c{settings.h2load_clients}", f"-m{settings.h2load_streams}",
        "-D", _secs(duration), "-d", str(body),
        "-H", "content-type: application/grpc", "-H", "te: trailers",
        "--log-file", log_name,
        f"http://127.0.0.1:{server.ports.grpc}{call.method}",
    ]  # fmt: skip
    try:
        result = _run_sampled(
            command, server, duration, sample, lambda out: parse_h2load(out, log_name, call)
        )
    finally:
        with contextlib.suppress(OSError):
            os.unlink(log_name)
    result["command"] = " ".join([*command[:-4], command[-1]])
    return result


def parse_h2load(output: str, log_name: str, call: GrpcCall) -> dict[str, Any]:
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
    server: Server,
    duration: float,
    sample: bool,
    parse: Callable[[str], dict[str, Any]],
    startup: float = 0.0,
) -> dict[str, Any]:
    """Run a load generator; halfway through, count connections per server process."""
    # Own process group: grpc_load.py forks client processes, which must go down with it.
    proc = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    balance = None
    try:
        if sample:
            time.sleep(startup + duration / 2)
            balance = connections_per_process(server.pgid, server.ports.grpc)
        out, err = proc.communicate(timeout=startup + duration + 90)
    finally:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    if proc.returncode != 0:
        return {"failed": f"{Path(command[0]).name} exit {proc.returncode}: {err.strip()[-300:]}"}
    result = parse(out)
    if balance is not None:
        result["connections_per_process"] = balance
    return result


# ---------------------------------------------------------------- one measurement


def wait_quiet(settings: Settings) -> dict[str, float]:
    """Wait (bounded) until other work on the machine calms down; report how busy it was."""
    started = time.monotonic()
    cores = os.cpu_count() or 1
    while True:
        before = machine_busy_seconds()
        time.sleep(1.0)
        busy_pct = (machine_busy_seconds() - before) / cores * 100.0
        waited = time.monotonic() - started
        if busy_pct <= settings.idle_quiet_pct or waited >= settings.max_idle_wait:
            return {"machine_busy_pct_before": round(busy_pct, 1), "waited_for_quiet_s": round(waited, 1)}


def measure(
    scenario: Scenario, protocol: str, client: str, settings: Settings, run_index: int
) -> dict[str, Any]:
    record: dict[str, Any] = {
        "key": scenario.key,
        "label": scenario.label,
        "workers": scenario.workers,
        "protocol": protocol,
        "client": client,
        "ours": scenario.ours,
        "note": scenario.note,
        "run": run_index,
    }
    if scenario.unavailable:
        record["did_not_start"] = scenario.unavailable
        return record
    if protocol == "grpc" and scenario.grpc is not None and scenario.grpc.request is None:
        record["did_not_start"] = scenario.grpc.request_error
        return record
    record.update(wait_quiet(settings))
    log_path = OUT / "logs" / f"{scenario.key}-w{scenario.workers}-{protocol}-{client}-r{run_index}.log"
    try:
        with Server(scenario, log_path) as server:
            record["cold_start_s"] = server.cold_start_s
            record["command"] = " ".join(
                Path(a).name if i == 0 else a for i, a in enumerate(server.launch.argv)
            )
            if protocol == "grpc":
                server.wait_grpc()

            def load(seconds: float, sample: bool = False) -> dict[str, Any]:
                if client == "wrk":
                    return run_wrk(server, settings, seconds)
                if client == "wrk-c1":
                    return run_wrk(server, settings, seconds, settings.latency_connections)
                if client == "seq":
                    return run_seq(server, settings, seconds)
                if client == "grpc_load":
                    return run_grpc_client(server, settings, seconds, sample)
                return run_h2load(server, settings, seconds, sample)

            warm = load(settings.warmup)
            if warm.get("failed"):
                record["failed"] = f"warm-up: {warm['failed']}"
                return record
            time.sleep(0.5)
            record["idle_memory"] = memory(server.pgid)
            busy0, server0, client0 = (
                machine_busy_seconds(),
                group_cpu_seconds(server.pgid),
                children_cpu_seconds(),
            )
            wall0 = time.perf_counter()
            result = load(settings.duration, sample=protocol == "grpc")
            wall = time.perf_counter() - wall0
            server_cpu = group_cpu_seconds(server.pgid) - server0
            client_cpu = children_cpu_seconds() - client0
            other = machine_busy_seconds() - busy0 - server_cpu - client_cpu
            record["cpu"] = {
                "server_pct_of_one_core": round(server_cpu / wall * 100.0, 1),
                "client_pct_of_one_core": round(client_cpu / wall * 100.0, 1),
                "other_pct_of_machine": round(max(0.0, other) / wall / (os.cpu_count() or 1) * 100.0, 1),
            }
            record["result"] = result
            if result.get("failed"):
                record["failed"] = result["failed"]
            elif not result.get("requests"):
                record["failed"] = f"no successful request ({result.get('first_error') or 'see log'})"
            if server.proc is not None and server.proc.poll() is not None:
                record["failed"] = f"server exited during the run: {server.log_reason()}"
    except StartFailed as exc:
        record["did_not_start"] = str(exc)
    return record


def _other_pct(record: dict[str, Any]) -> float:
    return record.get("cpu", {}).get("other_pct_of_machine", 0.0)


def measure_undisturbed(
    scenario: Scenario, protocol: str, client: str, settings: Settings, run_index: int
) -> dict[str, Any]:
    """Measure a cell; if other work on the machine took more than `disturbed_pct` of it
    during the window, measure again (up to `retries` times) and keep the least disturbed."""
    attempts = []
    for attempt in range(settings.retries + 1):
        record = measure(scenario, protocol, client, settings, run_index)
        attempts.append(record)
        if record.get("did_not_start") or _other_pct(record) <= settings.disturbed_pct:
            break
        if attempt < settings.retries:
            print(f"    disturbed (other CPU {_other_pct(record)}% of the machine): again", flush=True)
    measured = [r for r in attempts if r.get("result") and not r.get("failed")] or attempts
    best = min(measured, key=_other_pct)
    best["attempts"] = len(attempts)
    best["other_pct_of_attempts"] = [_other_pct(r) for r in attempts]
    return best


# ---------------------------------------------------------------- report


def _fmt(value: float | None, digits: int = 0, suffix: str = "") -> str:
    if value is None:
        return "-"
    return f"{value:,.{digits}f}{suffix}"


def _ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b == 0:
        return None
    return a / b


def median_records(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One record per (key, workers, protocol, client): the run with the median req/s (for the
    one-request-in-flight clients: the run with the median p50)."""
    groups: dict[tuple[str, int, str, str], list[dict[str, Any]]] = {}
    for record in records:
        groups.setdefault(
            (record["key"], record["workers"], record["protocol"], record["client"]), []
        ).append(record)
    chosen = []
    for group in groups.values():
        ok = [r for r in group if r.get("result", {}).get("rps") and not r.get("failed")]
        if not ok:
            chosen.append(group[-1])
            continue
        if group[0]["client"] in LATENCY_CLIENTS:
            ok.sort(key=lambda r: r["result"].get("p50_ms") or float("inf"))
        else:
            ok.sort(key=lambda r: r["result"]["rps"])
        pick = dict(ok[len(ok) // 2])
        rps = [r["result"]["rps"] for r in ok]
        pick["runs"] = len(group)
        pick["rps_range"] = [min(rps), max(rps)]
        pick["p50_ms_runs"] = [r["result"].get("p50_ms") for r in ok]
        pick["cold_start_median_s"] = statistics.median(r["cold_start_s"] for r in ok)
        chosen.append(pick)
    return chosen


def find(
    records: list[dict[str, Any]], key: str, workers: int, protocol: str, client: str
) -> dict[str, Any] | None:
    for record in records:
        if (record["key"], record["workers"], record["protocol"], record["client"]) == (
            key,
            workers,
            protocol,
            client,
        ):
            return record
    return None


def _ok(record: dict[str, Any] | None) -> bool:
    return bool(record) and not record.get("did_not_start") and not record.get("failed")  # type: ignore[union-attr]


def _rps(record: dict[str, Any] | None) -> float | None:
    return record["result"].get("rps") if _ok(record) else None  # type: ignore[index]


def _p99(record: dict[str, Any] | None) -> float | None:
    return record["result"].get("p99_ms") if _ok(record) else None  # type: ignore[index]


def results_table(
    records: list[dict[str, Any]], protocol: str, client: str, memory_columns: bool
) -> list[str]:
    rows = [
        r
        for r in records
        if r["protocol"] == protocol and r["client"] == client and r["key"] not in GATEWAY_KEYS
    ]
    if not rows:
        return ["_Not measured in this run._"]
    rows.sort(
        key=lambda r: (r["workers"], ROW_ORDER.index(r["key"]) if r["key"] in ROW_ORDER else 99, r["key"])
    )
    head = "| server | workers | req/s | p50 ms | p99 ms | errors |"
    rule = "|---|---|---|---|---|---|"
    if memory_columns:
        head += " idle RSS MB (sum) | idle PSS MB (sum) | largest process RSS MB | processes |"
        rule += "---|---|---|---|"
    head += " cold start s | server CPU % | server CPU us/req | client CPU % | other CPU % |"
    head += " ours / this req/s | this p99 / ours p99 |"
    rule += "---|---|---|---|---|---|---|"
    lines = [head, rule]
    for record in rows:
        cells = [record["label"], str(record["workers"])]
        if record.get("did_not_start") or record.get("failed"):
            reason = record.get("did_not_start") and f"did not start: {record['did_not_start']}"
            reason = reason or f"failed: {record['failed']}"
            blanks = 3 + (4 if memory_columns else 0) + 7
            cells += [_escape(reason)] + ["-"] * blanks
            lines.append("| " + " | ".join(cells) + " |")
            continue
        result = record["result"]
        rps = result.get("rps")
        rps_text = _fmt(rps)
        if record.get("rps_range") and record.get("runs", 1) > 1:
            low, high = record["rps_range"]
            rps_text += f" ({low:,.0f}-{high:,.0f})"
        cells += [
            rps_text,
            _fmt(result.get("p50_ms"), 2),
            _fmt(result.get("p99_ms"), 2),
            str(result.get("errors", 0)),
        ]
        if memory_columns:
            mem = record.get("idle_memory", {})
            cells += [
                _fmt(mem.get("rss_mb"), 0),
                _fmt(mem.get("pss_mb"), 0),
                _fmt(mem.get("max_process_rss_mb"), 0),
                str(mem.get("processes", "-")),
            ]
        cpu = record.get("cpu", {})
        ours = find(
            records,
            next((r["key"] for r in records if r["ours"]), "ours"),
            record["workers"],
            protocol,
            client,
        )
        if record["ours"]:
            vs_rps, vs_p99 = "-", "-"
        else:
            ratio = _ratio(_rps(ours), rps)
            p99_ratio = _ratio(result.get("p99_ms"), _p99(ours))
            vs_rps = _fmt(ratio, 2, "x")
            vs_p99 = _fmt(p99_ratio, 1, "x")
        cells += [
            _fmt(record.get("cold_start_s"), 2),
            _fmt(cpu.get("server_pct_of_one_core"), 0),
            _fmt(_cpu_per_request(record), 0),
            _fmt(cpu.get("client_pct_of_one_core"), 0),
            _fmt(cpu.get("other_pct_of_machine"), 0),
            vs_rps,
            vs_p99,
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _cpu_per_request(record: dict[str, Any]) -> float | None:
    """Server CPU microseconds per answered request: less sensitive to a busy machine than req/s."""
    pct = record.get("cpu", {}).get("server_pct_of_one_core")
    rps = record.get("result", {}).get("rps")
    return pct / 100.0 / rps * 1e6 if pct and rps else None


def _escape(text: str) -> str:
    return text.replace("|", "/").replace("\n", " ")[:400]


@dataclass
class Verdict:
    target: str
    measured: str
    ratio: float | None
    met: bool | None  # None: could not be measured

    def row(self) -> str:
        status = "n/a (not measured)" if self.met is None else ("**met**" if self.met else "**missed**")
        return f"| {self.target} | {self.measured} | {_fmt(self.ratio, 2, 'x')} | {status} |"


def _workers(n: int) -> str:
    return f"{n} worker" + ("s" if n > 1 else "")


def best_peer(
    records: list[dict[str, Any]],
    peer: str,
    workers: int,
    protocol: str,
    client: str,
    lower_p99: bool = False,
) -> dict[str, Any] | None:
    """The fastest (or lowest-p99) variant of a peer that was measured."""
    found = [find(records, key, workers, protocol, client) for key in PEERS[peer]]
    measured = [r for r in found if _ok(r)]
    if not measured:
        return None
    if lower_p99:
        return min(measured, key=lambda r: _p99(r) or float("inf"))
    return max(measured, key=lambda r: _rps(r) or 0.0)


def _vs(record: dict[str, Any] | None) -> str:
    return f" ({record['key']})" if record else " (peer not measured: did not start or not run)"


def _throughput_verdict(
    records: list[dict[str, Any]], peer: str, workers: int, protocol: str, client: str, target: float
) -> Verdict:
    ours = find(records, "ours", workers, protocol, client)
    other = best_peer(records, peer, workers, protocol, client)
    ratio = _ratio(_rps(ours), _rps(other))
    name = "REST" if protocol == "rest" else f"gRPC ({client})"
    client_cpu = ""
    if client == "grpc_load" and _ok(ours):
        client_cpu = f"; the Python client used {ours['cpu']['client_pct_of_one_core']:.0f}% CPU"  # type: ignore[index]
    return Verdict(
        f"{name} req/s >= {target:g}x {peer}, {_workers(workers)}",
        f"{_fmt(_rps(ours))} vs {_fmt(_rps(other))}{_vs(other)} req/s{client_cpu}",
        ratio,
        None if ratio is None else ratio >= target,
    )


def verdicts(records: list[dict[str, Any]]) -> list[Verdict]:
    out: list[Verdict] = []
    for workers in (1, 2):
        out.append(_throughput_verdict(records, "seldon-core", workers, "rest", "wrk", TARGET_REST_VS_SELDON))
    for workers in (1, 2):
        out.append(_throughput_verdict(records, "MLServer", workers, "rest", "wrk", TARGET_REST_VS_MLSERVER))
    for workers in (1, 2):
        ours = find(records, "ours", workers, "rest", "wrk")
        for peer in PEERS:
            other = best_peer(records, peer, workers, "rest", "wrk", lower_p99=True)
            ratio = _ratio(_p99(other), _p99(ours))
            out.append(
                Verdict(
                    f"REST p99 lower than {peer}, {_workers(workers)}",
                    f"{_fmt(_p99(ours), 2)} vs {_fmt(_p99(other), 2)}{_vs(other)} ms (ratio = peer / ours)",
                    ratio,
                    None if ratio is None else ratio > 1.0,
                )
            )
    for client in ("h2load", "grpc_load"):
        for workers in (1, 2):
            out.append(
                _throughput_verdict(records, "seldon-core", workers, "grpc", client, TARGET_GRPC_VS_SELDON)
            )
    for workers in (1, 2):
        starts = [
            r.get("cold_start_median_s", r.get("cold_start_s"))
            for r in records
            if r["key"] == "ours" and r["workers"] == workers and r.get("cold_start_s") is not None
        ]
        worst = max(starts) if starts else None
        out.append(
            Verdict(
                f"cold start (launch to first answer) < {TARGET_COLD_START_S:g} s, {_workers(workers)}",
                f"slowest of its {len(starts)} measured starts: {_fmt(worst, 3)} s",
                _ratio(worst, TARGET_COLD_START_S),
                None if worst is None else worst < TARGET_COLD_START_S,
            )
        )
    for workers in (1, 2):
        record = find(records, "ours", workers, "rest", "wrk")
        mem = record.get("idle_memory") if _ok(record) else None  # type: ignore[union-attr]
        if not mem:
            out.append(
                Verdict(
                    f"idle RSS < {TARGET_IDLE_RSS_MB:g} MB per worker, {_workers(workers)}", "-", None, None
                )
            )
            continue
        largest = mem["max_process_rss_mb"]
        out.append(
            Verdict(
                f"idle RSS < {TARGET_IDLE_RSS_MB:g} MB per worker, {_workers(workers)}",
                f"largest process {largest:.1f} MB RSS; group {mem['rss_mb']:.1f} MB RSS, "
                f"{mem['pss_mb']:.1f} MB PSS = {mem['pss_mb'] / workers:.1f} MB PSS per worker",
                _ratio(largest, TARGET_IDLE_RSS_MB),
                largest < TARGET_IDLE_RSS_MB,
            )
        )
    return out


METHOD = """\
Same model everywhere: a 1x4 float64 row in, softmax(x @ W + b) out (W 4x3, b 3, the same
numbers: `bench/models/BenchModel.py`, which the MLServer runtime
`bench/mlserver_model/bench_runtime.py` imports). Every answer used for readiness is checked
against the expected numbers.

- Each cell is a fresh server start. Cold start = Popen to the first correct REST predict
  answer (polled every 10 ms). Then a {warmup:g} s warm-up with the same load generator, then
  idle RSS/PSS summed over the server's process group (`/proc/<pid>/smaps_rollup`), then
  {duration:g} s of measured load.
- REST: `wrk -t1 -c{connections} -d{duration:g}s --latency -s bench/post.lua` (ours and
  seldon-core: `POST /api/v1.0/predictions` with `{{"data":{{"ndarray":[[1.0,2.0,3.0,4.0]]}}}}`;
  MLServer: `POST /v2/models/bench/infer` with a FP64 [1,4] V2 tensor).
- gRPC, Python client: `bench/grpc_load.py` (grpc.aio), {connections} calls in flight in total:
  {processes} client processes x {per_process} in flight, {channels} channels (TCP connections)
  per process. Ours and seldon-core: `/seldon.protos.Model/Predict` with a [1,4] tensor, built
  with our generated stubs (same wire format). MLServer: V2 `ModelInfer` with its own stubs.
- gRPC, h2load (C client, not limited by Python): `h2load -t1 -c{h2_clients} -m{h2_streams}`
  ({h2_total} streams in flight), body = the same serialized request with gRPC framing;
  p50/p99 from h2load's per-request log.
- seldon-core is started with `--workers N --grpc-workers N` (`--workers` alone sets only its
  gunicorn REST workers; gRPC would stay at one process). MLServer 1.7.1 with its default
  `parallel_workers=1` does not start with uvloop 0.23 (BASELINE.md), so its 1-worker row is
  `parallel_workers=0` (one process); its 2-worker row tries `parallel_workers=2` and records
  what happens.
- `server CPU %` = CPU time of the server's process group / wall time (100 = one core);
  `server CPU us/req` = server CPU time per answered request (the cost of one request,
  whatever the load generator managed to send); `client CPU %` the same as server CPU % for the
  load generator.
  `other CPU %` = share of the whole machine used during the measured window by processes that
  are neither the server nor the load generator: more than a few % means other work on the
  machine disturbed that cell.
- The load generator shares the 2 cores with the server, and repeat runs minutes apart differ
  by up to 20% (BASELINE.md): compare rows of the same run only.
"""


def render(meta: dict[str, Any], records: list[dict[str, Any]], settings: Settings, lesson: str) -> str:
    lines = [
        "# Benchmark results",
        "",
        f"Generated by `{meta.get('command', 'bash bench/run.sh')}` on {meta['date']} "
        f"in {meta['elapsed_s']:.0f} s ({meta['repeat']} run(s) per cell"
        + ("; cells show the median run and the min-max req/s" if meta["repeat"] > 1 else "")
        + f"). Raw data: `{meta.get('json', 'bench/out/results.json')}`; server logs: `bench/out/logs/`.",
        "",
        "## Machine and versions",
        "",
        "- CPUs: {nproc} x {cpu_model}; RAM {ram_gb:.1f} GB; kernel {kernel}".format(**meta["machine"]),
    ]
    lines += [f"- {name}: {version}" for name, version in meta["versions"].items()]
    lines += [
        "",
        "## Method",
        "",
        *METHOD.format(
            warmup=settings.warmup,
            duration=settings.duration,
            connections=settings.connections,
            processes=settings.grpc_processes,
            per_process=settings.connections // settings.grpc_processes,
            channels=settings.grpc_channels,
            h2_clients=settings.h2load_clients,
            h2_streams=settings.h2load_streams,
            h2_total=settings.h2load_clients * settings.h2load_streams,
        ).splitlines(),
        "",
        "## REST (wrk, 16 connections)",
        "",
        *results_table(records, "rest", "wrk", memory_columns=True),
        "",
        "## gRPC, h2load",
        "",
        *results_table(records, "grpc", "h2load", memory_columns=False),
        "",
        "## gRPC, Python client (bench/grpc_load.py)",
        "",
        *results_table(records, "grpc", "grpc_load", memory_columns=False),
        "",
    ]
    balance = [
        f"- {r['label']}, {r['client']}: {r['result']['connections_per_process']}"
        for r in records
        if r["protocol"] == "grpc"
        and r["workers"] > 1
        and _ok(r)
        and r["result"].get("connections_per_process")
    ]
    if balance:
        lines += [
            "Established gRPC connections per server process halfway through the 2-worker runs "
            "(SO_REUSEPORT balances per connection):",
            "",
            *balance,
            "",
        ]
    lines += [
        "## Targets",
        "",
        "Ratios are ours / peer at equal worker count (for p99: peer p99 / ours, so > 1 means ours is lower; "
        "for cold start and RSS: measured / limit, so < 1 is within the limit). Each peer is the faster of "
        "its measured variants. For gRPC, h2load decides: the Python client (`grpc_load`) rows are given "
        "for completeness but are bounded by the client itself on these 2 shared cores (see the ceiling row "
        "of that table).",
        "",
        "| target | measured | ratio | verdict |",
        "|---|---|---|---|",
        *(v.row() for v in verdicts(records)),
        "",
    ]
    if lesson:
        lines += ["## Where the time goes (profile)", "", lesson.strip(), ""]
    return "\n".join(lines)


# ---------------------------------------------------------------- gateway section


GATEWAY_METHOD = """\
Same model and request body as above; every answer used for readiness is checked against
the expected numbers (so the A/B graph and the chains answer exactly what BenchModel alone
answers). Everything runs with 1 worker, on the same 2 cores as the load generator.

Scenarios:

- `ours` (the baseline): `seldon microservice BenchModel --workers 1`, `POST /api/v1.0/predictions`;
- `gw-single`: `seldon serve bench/models/gateway_single.yaml --workers 1`, one graph node with
  `MODEL_NAME=BenchModel` run inside the gateway process; `POST /seldon/bench/api/v1.0/predictions`
  (all gateway scenarios);
- `gw-ab`: `bench/models/gateway_ab.yaml`, the built-in `RANDOM_ABTEST` router (ratioA 0.5) over
  two in-process BenchModel nodes;
- `gw-chain3`: `bench/models/gateway_chain3.yaml`, `BenchTransformer` -> `BenchTransformer` ->
  `BenchModel`, all in-process (`bench/models/BenchTransformer.py` returns X unchanged);
- `gw-remote3`: the same chain with every node a separate `seldon microservice ... --workers 1`
  process reached over REST (`endpoint: {{type: REST, service_host: 127.0.0.1, service_port: N}}`),
  started by `bench/gateway_remote.py`, the gateway with `--workers 1`. Its server CPU, memory and
  process count cover all 4 processes; its cold start includes starting the 3 components.

- Throughput: `wrk -t1 -c{connections} -d{duration:g}s --latency`, as in the REST table above.
- Latency at one request in flight (no queueing: p50 is processing time plus the loopback round
  trip): `wrk -t1 -c1 -d{duration:g}s --latency` (wrk keeps its latency statistics in
  microseconds), and `bench/seq_latency.py`: Python `http.client`, one keep-alive connection,
  sequential requests for {duration:g} s (at least {seq_min} of them), every request timed with
  `perf_counter_ns`, exact median. The client's own time per request is in every figure alike
  and cancels in the differences below.
- Hop costs, from the p50s at one request in flight:
  - per in-process hop = (p50 of `gw-chain3` - p50 of `gw-single`) / 2: the chain has the same
    model plus 2 more in-process nodes, so the difference is the cost of 2 graph hops (each
    one's trivial user code included);
  - per remote hop = (p50 of `gw-remote3` - p50 of `gw-chain3`) / 3: the same 3 nodes, once
    called in-process and once each over REST in its own process, so the difference divided by
    3 is what moving one node out of the gateway costs (serialising the message, the HTTP
    round trip over loopback, the component's own REST edge and parsing the answer back).
"""


def _p50_us(record: dict[str, Any] | None) -> float | None:
    if not _ok(record):
        return None
    value = record["result"].get("p50_ms")  # type: ignore[index]
    return None if value is None else value * 1000.0


def _result_us(record: dict[str, Any] | None, name: str) -> float | None:
    if not _ok(record):
        return None
    value = record["result"].get(name)  # type: ignore[index]
    return None if value is None else value * 1000.0


def hop_costs(cells: list[dict[str, Any]], client: str) -> dict[str, float | None]:
    """p50s (us) of the three graphs at one request in flight and the per-hop costs."""
    single = _p50_us(find(cells, "gw-single", 1, "rest", client))
    chain = _p50_us(find(cells, "gw-chain3", 1, "rest", client))
    remote = _p50_us(find(cells, "gw-remote3", 1, "rest", client))
    return {
        "single": single,
        "chain": chain,
        "remote": remote,
        "inprocess_hop": None if single is None or chain is None else (chain - single) / 2,
        "remote_hop": None if chain is None or remote is None else (remote - chain) / 3,
    }


def paired_shares(runs: list[dict[str, Any]]) -> list[tuple[float, float | None]]:
    """Per repeat: (gw-single req/s / ours req/s, ours CPU us/req / gw-single CPU us/req), wrk -c16."""
    out = []
    for index in sorted({r.get("run", 0) for r in runs}):
        pair = [
            next(
                (
                    r
                    for r in runs
                    if r["key"] == key
                    and r["workers"] == 1
                    and r["client"] == "wrk"
                    and r.get("run", 0) == index
                ),
                None,
            )
            for key in ("ours", "gw-single")
        ]
        share = _ratio(_rps(pair[1]), _rps(pair[0]))
        if share is not None:
            cpu = _ratio(_cpu_per_request(pair[0]), _cpu_per_request(pair[1]))  # type: ignore[arg-type]
            out.append((share, cpu))
    return out


def gateway_verdicts(cells: list[dict[str, Any]], runs: list[dict[str, Any]] | None = None) -> list[Verdict]:
    base = find(cells, "ours", 1, "rest", "wrk")
    single = find(cells, "gw-single", 1, "rest", "wrk")
    share = _ratio(_rps(single), _rps(base))
    paired = paired_shares(runs or [])
    detail = ""
    if len(paired) > 1:
        detail = (
            "; run by run (the two measured back to back): "
            + ", ".join(f"{a:.2f}" for a, _ in paired)
            + "; server CPU per request, microservice / gateway: "
            + ", ".join(_fmt(b, 2) for _, b in paired)
        )
    cpu_share = (
        _ratio(_cpu_per_request(base), _cpu_per_request(single)) if _ok(base) and _ok(single) else None
    )
    out = [
        Verdict(
            f"gateway with 1 in-process model >= {TARGET_GATEWAY_SHARE:.0%} of the bare microservice's "
            "REST req/s (wrk -c16, 1 worker each)",
            f"{_fmt(_rps(single))} vs {_fmt(_rps(base))} req/s (ratio = gateway / microservice; medians of "
            f"the runs){detail}; server CPU per request {_fmt(_cpu_per_request(single))} vs "
            f"{_fmt(_cpu_per_request(base))} us ({_fmt(cpu_share, 2)})",
            share,
            None if share is None else share >= TARGET_GATEWAY_SHARE,
        )
    ]
    names = {"seq": "seq_latency.py", "wrk-c1": "wrk -c1"}
    for key, limit, formula, label in (
        ("inprocess_hop", TARGET_INPROCESS_HOP_US, "(chain3 - single) / 2", "in-process"),
        ("remote_hop", TARGET_REMOTE_HOP_US, "(remote3 - chain3) / 3", "remote (REST)"),
    ):
        for client in ("seq", "wrk-c1"):
            costs = hop_costs(cells, client)
            value = costs[key]
            first, second, div = ("chain", "single", 2) if key == "inprocess_hop" else ("remote", "chain", 3)
            measured = (
                f"{formula} = ({_fmt(costs[first], 1)} - {_fmt(costs[second], 1)}) / {div} = "
                f"{_fmt(value, 1)} us ({names[client]}; ratio = measured / limit)"
            )
            out.append(
                Verdict(
                    f"each {label} graph hop adds < {_fmt_limit(limit)} at p50 ({names[client]})",
                    measured,
                    _ratio(value, limit),
                    None if value is None else value < limit,
                )
            )
    return out


def _fmt_limit(us: float) -> str:
    return f"{us / 1000:g} ms" if us >= 1000 else f"{us:g} us"


def gateway_throughput_table(cells: list[dict[str, Any]]) -> list[str]:
    base = find(cells, "ours", 1, "rest", "wrk")
    head = (
        "| scenario | req/s | p50 ms | p99 ms | errors | processes | idle RSS MB (sum) | idle PSS MB (sum) "
        "| cold start s | server CPU % | server CPU us/req | other CPU % | req/s / microservice's |"
    )
    lines = [head, "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for key in ("ours", *GATEWAY_KEYS):
        record = find(cells, key, 1, "rest", "wrk")
        if record is None:
            continue
        label = f"`{key}`: {record['label']}"
        if not _ok(record):
            reason = record.get("did_not_start") and f"did not start: {record['did_not_start']}"
            reason = reason or f"failed: {record.get('failed')}"
            lines.append("| " + " | ".join([label, _escape(reason)] + ["-"] * 11) + " |")
            continue
        result, mem, cpu = record["result"], record.get("idle_memory", {}), record.get("cpu", {})
        rps_text = _fmt(result.get("rps"))
        if record.get("runs", 1) > 1 and record.get("rps_range"):
            rps_text += " ({:,.0f}-{:,.0f})".format(*record["rps_range"])
        cells_text = [
            label,
            rps_text,
            _fmt(result.get("p50_ms"), 2),
            _fmt(result.get("p99_ms"), 2),
            str(result.get("errors", 0)),
            str(mem.get("processes", "-")),
            _fmt(mem.get("rss_mb")),
            _fmt(mem.get("pss_mb")),
            _fmt(record.get("cold_start_s"), 2),
            _fmt(cpu.get("server_pct_of_one_core")),
            _fmt(_cpu_per_request(record)),
            _fmt(cpu.get("other_pct_of_machine")),
            "-" if key == "ours" else _fmt(_ratio(_rps(record), _rps(base)), 2, "x"),
        ]
        lines.append("| " + " | ".join(cells_text) + " |")
    return lines


def gateway_latency_table(cells: list[dict[str, Any]]) -> list[str]:
    head = (
        "| scenario | wrk -c1 p50 us | wrk -c1 p99 us | wrk -c1 req/s | seq p50 us | seq p90 us | seq p99 us "
        "| seq requests | server CPU us/req (seq) | other CPU % (wrk / seq) | p50 of each run, seq (us) |"
    )
    lines = [head, "|---|---|---|---|---|---|---|---|---|---|---|"]
    for key in ("ours", *GATEWAY_KEYS):
        wrk1 = find(cells, key, 1, "rest", "wrk-c1")
        seq = find(cells, key, 1, "rest", "seq")
        if wrk1 is None and seq is None:
            continue
        label = f"`{key}`"
        problems = [
            r.get("did_not_start") or r.get("failed") for r in (wrk1, seq) if r is not None and not _ok(r)
        ]
        runs = seq.get("p50_ms_runs") if _ok(seq) else None  # type: ignore[union-attr]
        lines.append(
            "| "
            + " | ".join(
                [
                    label + (f" ({_escape('; '.join(map(str, problems)))})" if problems else ""),
                    _fmt(_p50_us(wrk1)),
                    _fmt(_result_us(wrk1, "p99_ms")),
                    _fmt(_rps(wrk1)),
                    _fmt(_p50_us(seq), 1),
                    _fmt(_result_us(seq, "p90_ms"), 1),
                    _fmt(_result_us(seq, "p99_ms"), 1),
                    _fmt(seq["result"].get("requests") if _ok(seq) else None),  # type: ignore[index]
                    _fmt(_cpu_per_request(seq) if _ok(seq) else None),  # type: ignore[arg-type]
                    " / ".join(
                        _fmt(r.get("cpu", {}).get("other_pct_of_machine")) if r else "-" for r in (wrk1, seq)
                    ),
                    ", ".join(f"{v * 1000:.0f}" for v in runs if v is not None) if runs else "-",
                ]
            )
            + " |"
        )
    return lines


def gateway_hop_table(cells: list[dict[str, Any]]) -> list[str]:
    lines = [
        "| client | p50 gw-single us | p50 gw-chain3 us | p50 gw-remote3 us "
        "| per in-process hop us = (chain3 - single) / 2 | per remote hop us = (remote3 - chain3) / 3 |",
        "|---|---|---|---|---|---|",
    ]
    for client, name in (("seq", "seq_latency.py"), ("wrk-c1", "wrk -c1")):
        costs = hop_costs(cells, client)
        lines.append(
            f"| {name} | {_fmt(costs['single'], 1)} | {_fmt(costs['chain'], 1)} | {_fmt(costs['remote'], 1)} "
            f"| {_fmt(costs['inprocess_hop'], 1)} | {_fmt(costs['remote_hop'], 1)} |"
        )
    return lines


def render_gateway(saved: dict[str, Any], source: str, notes: str) -> list[str]:
    """The report's Gateway section, from the cells of one run (`saved`, read from `source`)."""
    meta, cells = saved["meta"], saved["cells"]
    settings = Settings(**saved.get("settings", {}))
    disturbed = [
        f"`{r['key']}` {r['client']} ({r['cpu']['other_pct_of_machine']:.0f}%)"
        for r in cells
        if (r["key"] in GATEWAY_KEYS or r["key"] == "ours")
        and r.get("cpu", {}).get("other_pct_of_machine", 0.0) > 5.0
    ]
    lines = [
        "## Gateway (`seldon serve`): in-process and remote graphs vs the bare microservice",
        "",
        f"Measured by `{meta.get('command', 'bash bench/run.sh')}` on {meta['date']} in "
        f"{meta.get('elapsed_s', 0):.0f} s ({meta['repeat']} fresh run(s) per cell"
        + (
            "; each cell shows the run with the median req/s, for the one-connection clients the median p50"
            if meta["repeat"] > 1
            else ""
        )
        + f"). Raw data: `{source}`; server logs: `bench/out/logs/gw-*.log`. Baseline and gateway were "
        "measured in the same run, interleaved, each start fresh. Code measured: "
        + meta.get("versions", {}).get("Seldon Serving (ours)", "?").rpartition("; ")[2]
        + ".",
        "",
        *GATEWAY_METHOD.format(
            connections=settings.connections, duration=settings.duration, seq_min=settings.seq_min_requests
        ).splitlines(),
        "",
        "### Throughput (REST, wrk, 16 connections, 1 worker)",
        "",
        *gateway_throughput_table(cells),
        "",
        "### Latency at one request in flight",
        "",
        *gateway_latency_table(cells),
        "",
        "### Cost per graph hop (p50, one request in flight)",
        "",
        *gateway_hop_table(cells),
        "",
        "### Gateway targets",
        "",
        "Ratios: gateway / microservice for throughput (>= 0.80 needed); measured / limit for the hop "
        "costs (< 1 is within the limit). Both latency clients are judged.",
        "",
        "| target | measured | ratio | verdict |",
        "|---|---|---|---|",
        *(v.row() for v in gateway_verdicts(cells, saved.get("runs"))),
        "",
    ]
    if disturbed:
        lines += [
            "Cells in which other work on the machine took more than 5% of it (the runner re-measures "
            "above 15%): " + ", ".join(disturbed) + ".",
            "",
        ]
    if notes:
        lines += [notes.strip(), ""]
    return lines


def _load(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def write_report(main_json: Path, gateway_json: Path, results: Path, lesson: Path, notes: Path) -> str:
    """RESULTS.md from `main_json`, with the Gateway section from the same data when it has gateway
    cells, else from `gateway_json` (a separate gateway run), when that exists."""
    saved = _load(main_json)
    gateway = None
    if saved is not None and any(c["key"] in GATEWAY_KEYS for c in saved["cells"]):
        gateway, source = saved, main_json
    elif gateway_json.resolve() != main_json.resolve():
        gateway, source = _load(gateway_json), gateway_json
    if saved is None:
        if gateway is None:
            raise SystemExit(f"no results to report: neither {main_json} nor {gateway_json} can be read")
        saved = gateway
    report = render(
        saved["meta"],
        saved["cells"],
        Settings(**saved["settings"]),
        lesson.read_text() if lesson.exists() else "",
    )
    if gateway is not None:
        section = render_gateway(
            gateway, os.path.relpath(source, REPO), notes.read_text() if notes.exists() else ""
        )
        report += "\n" + "\n".join(section)
    kept = kept_sections(results.read_text() if results.exists() else "")
    if kept:
        report = report.rstrip("\n") + "\n\n" + kept
    results.write_text(report.rstrip("\n") + "\n")
    return report


KEPT_HEADINGS = ("## Soak",)  # sections written by hand (bench/soak.py's summary): kept on re-render


def kept_sections(text: str) -> str:
    """The sections of an earlier report that this script does not generate, to carry over."""
    kept: list[str] = []
    keeping = False
    for line in text.splitlines():
        if line.startswith("## "):
            keeping = line.startswith(KEPT_HEADINGS)
        if keeping:
            kept.append(line)
    return "\n".join(kept).strip("\n")


# ---------------------------------------------------------------- metadata


def _run(command: list[str]) -> str:
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError) as exc:
        return f"unavailable ({exc})"
    text = (done.stdout or done.stderr).strip()
    return text.splitlines()[0] if text else "unavailable"


def _package_versions(python: Path, names: list[str]) -> str:
    code = (
        "import importlib.metadata as m, sys\n"
        "out = []\n"
        f"for n in {names!r}:\n"
        "    try: out.append(n + ' ' + m.version(n))\n"
        "    except Exception: out.append(n + ' missing')\n"
        "print(sys.version.split()[0] + '; ' + ', '.join(out))\n"
    )
    return _run([str(python), "-c", code]) if python.exists() else "not installed"


def metadata(quick: bool, repeat: int) -> dict[str, Any]:
    meminfo = Path("/proc/meminfo").read_text()
    ram_kb = int(re.search(r"MemTotal:\s+(\d+)", meminfo).group(1))  # type: ignore[union-attr]
    model = re.search(r"model name\s*:\s*(.+)", Path("/proc/cpuinfo").read_text())
    cpu_model = model.group(1).strip() if model else platform.processor()
    lscpu = _run(["sh", "-c", "lscpu | grep -m1 'Model name'"])
    if lscpu and "unavailable" not in lscpu:
        cpu_model = lscpu.split(":", 1)[-1].strip() or cpu_model
    git = _run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"])
    if not re.fullmatch(r"[0-9a-f]{4,40}", git):
        git = "no commit yet (working tree)"
    elif _run(["git", "-C", str(REPO), "status", "--porcelain", "--", "src"]) not in ("", "unavailable"):
        git += " + uncommitted changes in src/"
    return {
        "date": dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
        "quick": quick,
        "repeat": repeat,
        "machine": {
            "nproc": len(os.sched_getaffinity(0)),
            "cpu_model": cpu_model,
            "ram_gb": ram_kb / 1024 / 1024,
            "kernel": platform.release(),
        },
        "versions": {
            "Seldon Serving (ours)": f"{_package_versions(OUR_VENV / 'bin' / 'python', ['seldon-serving', 'uvicorn', 'uvloop', 'httptools', 'orjson', 'grpcio', 'protobuf', 'numpy'])}; git {git}",  # noqa: E501
            "seldon-core": _package_versions(
                SELDON_VENV / "bin" / "python", ["seldon-core", "flask", "gunicorn", "grpcio", "numpy"]
            ),
            "MLServer": _package_versions(
                MLSERVER_VENV / "bin" / "python",
                ["mlserver", "uvicorn", "uvloop", "fastapi", "grpcio", "numpy"],
            ),
            "wrk": _run(["sh", "-c", "wrk -v 2>&1 | head -1"]),
            "h2load": _run(["h2load", "--version"]),
        },
    }


# ---------------------------------------------------------------- main


def plan(
    scenarios: list[Scenario],
    only: set[str],
    clients_wanted: set[str],
    workers_wanted: set[int] | None = None,
) -> Iterator[tuple[Scenario, str, str]]:
    """Interleave the stacks so slow drifts of the machine hit them alike."""
    chosen = [s for s in scenarios if not only or s.key in only]
    for protocol, clients in (("rest", ("wrk", *LATENCY_CLIENTS)), ("grpc", ("h2load", "grpc_load"))):
        for workers in (1, 2):
            if workers_wanted and workers not in workers_wanted:
                continue
            for client in clients:
                if clients_wanted and client not in clients_wanted:
                    continue
                for scenario in chosen:
                    if scenario.workers != workers:
                        continue
                    if client in LATENCY_CLIENTS and not scenario.latency:
                        continue
                    if protocol == "rest" and scenario.rest is None:
                        continue
                    if protocol == "grpc" and scenario.grpc is None:
                        continue
                    yield scenario, protocol, client


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="3 s runs, 1 s warm-up (smoke test)")
    parser.add_argument("--repeat", type=int, default=1, help="fresh runs per cell; the median is reported")
    parser.add_argument("--only", nargs="*", default=[], help="scenario keys to run (ours, seldon, mlserver)")
    parser.add_argument("--max-idle-wait", type=float, default=30.0,
                        help="seconds to wait for a quiet machine before each cell")  # fmt: skip
    parser.add_argument("--retries", type=int, default=2,
                        help="extra attempts for a cell disturbed by other work on the machine")  # fmt: skip
    parser.add_argument("--lesson", type=Path, default=BENCH / "profile_notes.md",
                        help="markdown for the profile section of RESULTS.md")  # fmt: skip
    parser.add_argument("--clients", nargs="*", default=[],
                        choices=("wrk", *LATENCY_CLIENTS, "h2load", "grpc_load"),
                        help="load generators to run (default: all)")  # fmt: skip
    parser.add_argument("--workers", nargs="*", type=int, default=[], choices=(1, 2),
                        help="worker counts to run (default: 1 and 2)")  # fmt: skip
    parser.add_argument("--gateway", action="store_true",
                        help="only the gateway scenarios and the bare microservice (1 worker, REST); "
                        "raw data to bench/out/gateway.json; RESULTS.md is re-rendered from "
                        "bench/out/results.json with this run as its Gateway section")  # fmt: skip
    parser.add_argument("--results", type=Path, default=BENCH / "RESULTS.md")
    parser.add_argument("--json", type=Path, default=None,
                        help="where the raw results go (default bench/out/results.json; "
                        "with --gateway bench/out/gateway.json)")  # fmt: skip
    parser.add_argument("--gateway-json", type=Path, default=OUT / "gateway.json",
                        help="data of the Gateway section when the main data has no gateway "
                        "cells")  # fmt: skip
    parser.add_argument("--gateway-notes", type=Path, default=BENCH / "gateway_notes.md",
                        help="markdown appended to the Gateway section (profile, disturbances)")  # fmt: skip
    parser.add_argument("--report-only", action="store_true",
                        help="re-render RESULTS.md from bench/out/results.json "
                        "(+ bench/out/gateway.json)")  # fmt: skip
    args = parser.parse_args()
    main_json = OUT / "results.json"
    if args.gateway:
        args.json = args.json or args.gateway_json
        args.gateway_json = args.json
        args.only = args.only or ["ours", *GATEWAY_KEYS]
        args.workers = args.workers or [1]
        args.clients = args.clients or ["wrk", *LATENCY_CLIENTS]
    else:
        args.json = args.json or main_json
        main_json = args.json

    if args.report_only:
        print(write_report(main_json, args.gateway_json, args.results, args.lesson, args.gateway_notes))
        return 0
    settings = Settings(max_idle_wait=args.max_idle_wait, retries=args.retries)
    if args.quick:
        settings.duration, settings.warmup = 3.0, 1.0
    for tool in ("wrk", "h2load"):
        if shutil.which(tool) is None:
            print(f"{tool} is missing: apt-get install -y wrk nghttp2-client", file=sys.stderr)
            return 2
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "logs").mkdir(exist_ok=True)

    def on_term(signum: int, frame: object) -> None:
        raise KeyboardInterrupt  # unwinds through Server.__exit__: no server is left behind

    signal.signal(signal.SIGTERM, on_term)
    started = time.monotonic()
    meta = metadata(args.quick, args.repeat)
    meta["command"] = " ".join(["bash bench/run.sh", *sys.argv[1:]])
    meta["json"] = os.path.relpath(args.json, REPO)
    scenarios = build_scenarios()
    records: list[dict[str, Any]] = []
    # A server that did not start is not retried in later cells: (key, workers, "*") when it
    # never answered REST, (key, workers, "grpc") when only its gRPC side failed.
    skipped: dict[tuple[str, int, str], str] = {}
    steps = list(plan(scenarios, set(args.only), set(args.clients), set(args.workers)))
    if any(scenario.key in GATEWAY_KEYS for scenario, _, _ in steps):
        shutil.rmtree(OUT / "gateway", ignore_errors=True)  # work directories of earlier gateway starts
    try:
        for run_index in range(args.repeat):
            for number, (scenario, protocol, client) in enumerate(steps, 1):
                cell = f"[{run_index + 1}/{args.repeat} {number}/{len(steps)}] {scenario.key} w{scenario.workers} {protocol} {client}"  # noqa: E501
                print(f"{cell} ...", flush=True)
                why = skipped.get((scenario.key, scenario.workers, "*")) or skipped.get(
                    (scenario.key, scenario.workers, protocol)
                )
                if why:
                    record = {**asdict_light(scenario), "protocol": protocol, "client": client,
                              "run": run_index, "did_not_start": why}  # fmt: skip
                else:
                    record = measure_undisturbed(scenario, protocol, client, settings, run_index)
                    reason = record.get("did_not_start")
                    if reason:
                        scope = protocol if reason.startswith("gRPC") else "*"
                        skipped[(scenario.key, scenario.workers, scope)] = f"(as in its first start) {reason}"
                records.append(record)
                print(f"{cell}: {summary_line(record)}", flush=True)
    except KeyboardInterrupt:
        print("interrupted: writing what was measured", file=sys.stderr)
    meta["elapsed_s"] = time.monotonic() - started
    cells = median_records(records)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(
        json.dumps({"meta": meta, "settings": asdict(settings), "cells": cells, "runs": records}, indent=2)
        + "\n"
    )
    report = write_report(main_json, args.gateway_json, args.results, args.lesson, args.gateway_notes)
    print()
    print(report)
    print(f"\nwrote {args.results} and {args.json}")
    return 0


def asdict_light(scenario: Scenario) -> dict[str, Any]:
    return {
        "key": scenario.key,
        "label": scenario.label,
        "workers": scenario.workers,
        "ours": scenario.ours,
        "note": scenario.note,
    }


def summary_line(record: dict[str, Any]) -> str:
    if record.get("did_not_start"):
        return f"did not start: {record['did_not_start']}"
    if record.get("failed"):
        return f"failed: {record['failed']}"
    result = record["result"]
    mem = record.get("idle_memory", {})
    cpu = record.get("cpu", {})
    return (
        f"{_fmt(result.get('rps'))} req/s, p50 {_fmt(result.get('p50_ms'), 2)} ms, "
        f"p99 {_fmt(result.get('p99_ms'), 2)} ms, errors {result.get('errors', 0)}, "
        f"RSS {_fmt(mem.get('rss_mb'))} MB, PSS {_fmt(mem.get('pss_mb'))} MB, "
        f"cold start {_fmt(record.get('cold_start_s'), 3)} s, "
        f"server CPU {cpu.get('server_pct_of_one_core')}%, other CPU {cpu.get('other_pct_of_machine')}%"
    )


if __name__ == "__main__":
    sys.exit(main())
