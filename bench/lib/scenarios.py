"""The servers under test: their launch commands, the requests they take and the answers expected.

Adding a scenario (e.g. another peer, or a gateway graph) means adding one ``Scenario`` to
``build_scenarios``: a key, a label, a worker count, a ``launch(ports) -> Launch`` function
and the REST and/or gRPC call to load it with.  The report compares every scenario of a
protocol and worker count with the one marked ``ours``; to judge targets against it, add its
key to ``PEERS``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache, partial
from pathlib import Path
from typing import Any

from . import model_servers
from .config import BENCH, MLSERVER_MODEL, MLSERVER_VENV, MODELS, OUR_VENV, OUT, REPO, SELDON_VENV
from .model_servers import SERVER_KEYS
from .processes import free_ports

ROW = [1.0, 2.0, 3.0, 4.0]
SELDON_JSON = json.dumps({"data": {"ndarray": [ROW]}}, separators=(",", ":")).encode()
V2_JSON = json.dumps(
    {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP64", "data": ROW}]}, separators=(",", ":")
).encode()

GATEWAY_PATH = "/seldon/bench/api/v1.0/predictions"
# Gateway scenarios, in report order; they get their own section of the report.
GATEWAY_KEYS = (
    "gw-single",
    "gw-single-thread",
    "gw-single-process",
    "gw-ab",
    "gw-chain3",
    "gw-chain3-thread",
    "gw-chain3-process",
    "gw-remote3",
)
# Peers for the targets: a target is judged against the FASTEST variant of a peer.
PEERS = {"seldon-core": ("seldon", "seldon-notf"), "MLServer": ("mlserver",)}
ROW_ORDER = ["ours", "seldon", "seldon-notf", "mlserver", "ceiling", *GATEWAY_KEYS, *SERVER_KEYS]
# Scenarios that have sections of their own, not rows of the peer tables.
SECTION_KEYS = (*GATEWAY_KEYS, *SERVER_KEYS)


@cache
def expected_output() -> list[float]:
    """The softmax row every server must answer, computed by the very class the servers load."""
    sys.path.insert(0, str(MODELS))
    try:
        import BenchModel

        return [float(v) for v in BenchModel.softmax_rows([ROW])[0]]
    finally:
        sys.path.remove(str(MODELS))


def _close(values: Any) -> bool:
    expected = expected_output()
    try:
        flat = [float(v) for v in values]
    except (TypeError, ValueError):
        return False
    return len(flat) == len(expected) and all(abs(a - b) < 1e-9 for a, b in zip(flat, expected, strict=True))


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


@dataclass(frozen=True)
class Ports:
    http: int
    grpc: int
    metrics: int


def fresh_ports() -> Ports:
    http, grpc_port, metrics = sorted(free_ports(3))
    return Ports(http, grpc_port, metrics)


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
    body_key: str = ""  # names the h2load body file when one proto has several requests


@dataclass(frozen=True)
class Scenario:
    key: str  # stack id: "ours", "seldon", "mlserver", "gw-single", ...
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


def _gateway(ports: Ports, key: str, manifest: str, execution: str = "inline", workers: int = 1) -> Launch:
    """`seldon serve` of a manifest of bench/models (its MODEL_NAME classes live there), the
    classes run in `execution` mode (inline: in the gateway's event loop)."""
    argv = [
        str(OUR_VENV / "bin" / "seldon"), "serve", str(MODELS / manifest),
        "--http-port", str(ports.http), "--grpc-port", str(ports.grpc),
        "--workers", str(workers), "--state-dir", str(_gateway_dir(key, ports) / "state"),
        "--host", "127.0.0.1", "--execution", execution, "--admin-port", "0",  # no admin API: none needed
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


def grpc_body_path(proto: str) -> Path:
    """The request of `proto` (or of a GrpcCall's body_key) as an h2load body (gRPC framing),
    written by `_grpc_call`."""
    return OUT / f"grpc_body_{proto}.bin"


def _grpc_call(method: str, proto: str, python: Path, *extra: str, body_key: str = "") -> GrpcCall:
    """Serialize the request once with the stubs of the interpreter that will load it; `extra`:
    more arguments of grpc_load.py (another row, a model name)."""
    OUT.mkdir(parents=True, exist_ok=True)
    path = grpc_body_path(body_key or proto)
    try:
        subprocess.run(
            [str(python), str(BENCH / "grpc_load.py"), "--proto", proto, *extra, "--dump-body", str(path)],
            check=True,
            capture_output=True,
            timeout=60,
        )
        framed = path.read_bytes()
        # without the 5-byte gRPC frame header
        return GrpcCall(method, proto, python, framed[5:], body_key=body_key)
    except (OSError, subprocess.SubprocessError) as exc:
        stderr = getattr(exc, "stderr", b"") or b""
        reason = stderr.decode(errors="replace").strip().splitlines()[-1:] or [str(exc)]
        error = f"cannot build the {proto} request: {reason[0]}"
        return GrpcCall(method, proto, python, None, error, body_key=body_key)


def _missing(path: Path) -> str:
    return "" if path.exists() else f"{path} is not installed"


def build_scenarios() -> list[Scenario]:
    """Every server of the benchmark.  Add new ones here."""
    seldon_rest = RestCall("/api/v1.0/predictions", SELDON_JSON, check_seldon_json)
    seldon_grpc = _grpc_call("/seldon.protos.Model/Predict", "seldon", OUR_VENV / "bin" / "python")
    v2_rest = RestCall("/v2/models/bench/infer", V2_JSON, check_v2_json)
    v2_grpc = _grpc_call("/inference.GRPCInferenceService/ModelInfer", "v2", MLSERVER_VENV / "bin" / "python")
    scenarios = []
    seldon_missing = _missing(SELDON_VENV / "bin" / "seldon-core-microservice")
    for workers in (1, 2):
        count = f"{workers} worker" + ("s" if workers > 1 else "")
        scenarios.append(
            Scenario(
                "ours", f"**Seldon Serving (ours)**, {count}", workers,
                partial(_ours, workers=workers), seldon_rest, seldon_grpc, ours=True,
                unavailable=_missing(OUR_VENV / "bin" / "seldon"), latency=workers == 1,
            )
        )  # fmt: skip
        scenarios.append(
            Scenario(
                "seldon", f"seldon-core 1.18.2 as installed here (imports tensorflow), {count}", workers,
                partial(_seldon, workers=workers), seldon_rest, seldon_grpc,
                note="--workers N --grpc-workers N", unavailable=seldon_missing,
            )
        )  # fmt: skip
        scenarios.append(
            Scenario(
                "seldon-notf", f"seldon-core 1.18.2 without tensorflow, {count}", workers,
                partial(_seldon, workers=workers, hide_tensorflow=True), seldon_rest, seldon_grpc,
                note="--workers N --grpc-workers N; tensorflow hidden", unavailable=seldon_missing,
            )
        )  # fmt: skip
        scenarios.append(
            Scenario(
                "mlserver",
                "MLServer 1.7.1, parallel_workers=0 (one process)" if workers == 1
                else f"MLServer 1.7.1, parallel_workers={workers}",
                workers, partial(_mlserver, workers=workers), v2_rest, v2_grpc,
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
    for key, label, launch, note, latency in (
        ("gw-single", "gateway, 1 in-process node (BenchModel)",
         partial(_gateway, key="gw-single", manifest="gateway_single.yaml"),
         "bench/models/gateway_single.yaml", True),
        ("gw-single-thread", "gateway, 1 node in a thread pool (--execution thread)",
         partial(_gateway, key="gw-single-thread", manifest="gateway_single.yaml", execution="thread"),
         "bench/models/gateway_single.yaml --execution thread", True),
        ("gw-single-process", "gateway, 1 node in its own process (--execution process)",
         partial(_gateway, key="gw-single-process", manifest="gateway_single.yaml", execution="process"),
         "bench/models/gateway_single.yaml --execution process", True),
        ("gw-ab", "gateway, RANDOM_ABTEST over 2 in-process BenchModel",
         partial(_gateway, key="gw-ab", manifest="gateway_ab.yaml"),
         "bench/models/gateway_ab.yaml", False),
        ("gw-chain3", "gateway, 3-node in-process chain (transformer -> transformer -> model)",
         partial(_gateway, key="gw-chain3", manifest="gateway_chain3.yaml"),
         "bench/models/gateway_chain3.yaml", True),
        ("gw-chain3-thread", "gateway, 3-node chain, each node in a thread pool",
         partial(_gateway, key="gw-chain3-thread", manifest="gateway_chain3.yaml", execution="thread"),
         "bench/models/gateway_chain3.yaml --execution thread", False),
        ("gw-chain3-process", "gateway, 3-node chain, each node in its own process",
         partial(_gateway, key="gw-chain3-process", manifest="gateway_chain3.yaml", execution="process"),
         "bench/models/gateway_chain3.yaml --execution process", False),
        ("gw-remote3", "gateway, 3-node chain of remote microservices over REST",
         partial(_gateway_remote, key="gw-remote3"),
         "bench/gateway_remote.py: 3 x `seldon microservice --workers 1` + gateway", True),
    ):  # fmt: skip
        scenarios.append(
            Scenario(key, label, 1, launch, gateway_rest, note=note, unavailable=no_seldon, latency=latency)
        )
    return scenarios + _model_server_scenarios()


def _model_server_scenarios() -> list[Scenario]:
    """Issue 12: one saved sklearn model served by us, MLServer and KServe (lib/model_servers.py)."""
    made = model_servers.prepared()
    if isinstance(made, str):
        return [Scenario(key, key, w, _ours, unavailable=made) for key in SERVER_KEYS for w in (1, 2)]
    row, expected = made
    model_servers.row_file().write_text(json.dumps(row))
    calls = model_servers.requests(row, expected)
    rest = {name: RestCall(path, body, check) for name, (path, body, check) in calls.items()}
    row_args = ("--row-file", str(model_servers.row_file()))
    seldon_grpc = _grpc_call(
        "/seldon.protos.Model/Predict", "seldon", OUR_VENV / "bin" / "python", *row_args,
        body_key="seldon-digits",
    )  # fmt: skip
    # KServe and MLServer both speak the Open Inference Protocol over gRPC: one body for both.
    v2_grpc = _grpc_call(
        "/inference.GRPCInferenceService/ModelInfer", "v2", MLSERVER_VENV / "bin" / "python", *row_args,
        "--model-name", model_servers.MODEL_NAME, "--output", "predict_proba", body_key="v2-digits",
    )  # fmt: skip
    scenarios = []
    for workers in (1, 2):
        count = f"{workers} worker" + ("s" if workers > 1 else "")
        scenarios += [
            Scenario(
                "sk-ours", f"**Seldon Serving (ours)** `--server sklearn`, {count}", workers,
                lambda p, w=workers: Launch(model_servers.ours_argv(p.http, p.grpc, w), OUT),
                rest["seldon"], seldon_grpc, ours=True, note="Seldon protocol",
                unavailable=_missing(OUR_VENV / "bin" / "seldon"),
            ),
            Scenario(
                "sk-mlserver", f"MLServer 1.7.1 + mlserver-sklearn, {count}", workers,
                lambda p, w=workers: Launch(model_servers.mlserver_argv(w), OUT, _mlserver_env(p)),
                rest["v2"], v2_grpc, note="V2 protocol; parallel_workers 0 (1 worker) or N",
                unavailable=_missing(MLSERVER_VENV / "bin" / "mlserver"),
            ),
            Scenario(
                "sk-kserve", f"KServe `kserve.Model` (same joblib file), {count}", workers,
                lambda p, w=workers: Launch(model_servers.kserve_argv(p.http, p.grpc, w), OUT),
                rest["kserve-v1"], v2_grpc, note="KServe v1 REST, V2 gRPC; --workers N",
                unavailable=_missing(model_servers.KSERVE_VENV / "bin" / "python"),
            ),
        ]  # fmt: skip
    return scenarios


def _mlserver_env(ports: Ports) -> dict[str, str]:
    return {
        "MLSERVER_HTTP_PORT": str(ports.http),
        "MLSERVER_GRPC_PORT": str(ports.grpc),
        "MLSERVER_METRICS_PORT": str(ports.metrics),
    }
