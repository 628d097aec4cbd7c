"""V2 (Open Inference Protocol) benchmark, issue 14: the same model served over V2 by

- `seldon microservice BenchModel` (ours, `--model-name bench`),
- `seldon serve bench/models/gateway_single.yaml` (our gateway, deployment `bench`, one node),
- MLServer 1.7.1 (bench/mlserver_model: a custom runtime doing the same maths), one process
  (`parallel_workers` 0) and its default one inference worker (`parallel_workers` 1) at 1
  worker, `parallel_workers` 2 at 2 workers,
- KServe (bench/v2/kserve_bench.py: a `kserve.Model` doing the same maths; `--workers N`),

at 1 and 2 workers, REST with `wrk -t1 -c16` (a FP64 [1, 4] V2 JSON body to
`/v2/models/bench/infer`) and gRPC with h2load (16 connections, one serialized
`ModelInferRequest` with `raw_input_contents`, which all of them take, to `ModelInfer`).

    flock /tmp/bench.lock .venv/bin/python bench/v2_bench.py [--quick] [--repeat N] [--write-results]
    .venv/bin/python bench/v2_bench.py --report-only [--write-results]

Before any measurement every server is started once and its REST and gRPC answers are
checked against the softmax the model computes (to 1e-9); the 2-worker servers are then
loaded for a few seconds while the CPU time of each of their processes is sampled, which
shows whether the second worker really takes a share of the load.  Each cell is then measured
by bench/lib (fresh start, warm-up, measured window, re-measured when other work disturbed
it).  Printed: req/s, p50, p99 per cell and ours / best peer at equal workers (target: >= 3x);
`--write-results` puts the tables in bench/RESULTS.md's V2 section (replaced if there, else
appended; nothing else touched), followed by bench/v2/notes.md (the profile's reading) if
present.  Needs /tmp/mlsvenv and /tmp/kservevenv (see bench/README.md).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from dataclasses import asdict
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

# bench/lib: this script's directory is on sys.path
from lib.cells import Record, cpu_per_request, find, median_records, ok, ratio, rps
from lib.config import BENCH, MLSERVER_MODEL, MLSERVER_VENV, OUR_VENV, OUT, REPO, Settings
from lib.machine import _package_versions, metadata
from lib.markdown import escape, fmt, problem_cell, table_head, table_row, workers_label
from lib.measure import Server, base_record, measure_undisturbed, plan
from lib.model_servers import KSERVE_VENV
from lib.processes import CLK_TCK, StartFailed, _proc_stat, group_pids
from lib.report import summary_line
from lib.scenarios import (
    ROW,
    V2_JSON,
    GrpcCall,
    Launch,
    Ports,
    RestCall,
    Scenario,
    _close,
    _gateway,
    _mlserver,
    _ours,
    check_v2_json,
)

SECTION = "## V2 protocol: ours vs MLServer and KServe (issue 14)"
RESULTS = BENCH / "RESULTS.md"
JSON_PATH = OUT / "v2_bench.json"
NOTES = BENCH / "v2" / "notes.md"  # the profile and its reading, appended to the section when present
MODEL = "bench"  # the V2 model name on every server (the gateway's: the deployment's name)
METHOD = "/inference.GRPCInferenceService/ModelInfer"
OURS_KEYS = ("v2-ours", "v2-gateway")
PEER_KEYS = ("v2-mlserver", "v2-mlserver-pw1", "v2-kserve")
TARGET = 3.0  # ours / best peer, req/s at equal workers
SPREAD_SECONDS = 3.0  # the per-process CPU probe of the 2-worker servers


def grpc_request() -> bytes:
    """The ModelInferRequest every server gets: one FP64 [1, 4] input, its data raw (little-endian)."""
    from seldon_serving.protocol._pb import open_inference_v2_pb2 as pb

    tensor = pb.ModelInferRequest.InferInputTensor(name="x", datatype="FP64", shape=[1, len(ROW)])
    raw = np.asarray(ROW, dtype="<f8").tobytes()
    return bytes(
        pb.ModelInferRequest(model_name=MODEL, inputs=[tensor], raw_input_contents=[raw]).SerializeToString()
    )


def read_grpc_answer(answer: bytes) -> tuple[str | None, str]:
    """(None when the ModelInferResponse holds the expected softmax row, else why not; its form)."""
    from seldon_serving.protocol._pb import open_inference_v2_pb2 as pb

    response = pb.ModelInferResponse.FromString(answer)
    if not response.outputs:
        return f"no outputs in {answer[:200]!r}", "-"
    output = response.outputs[0]
    if response.raw_output_contents:
        values, form = (
            np.frombuffer(response.raw_output_contents[0], dtype="<f8").tolist(),
            "raw_output_contents",
        )
    else:
        values, form = list(output.contents.fp64_contents), "typed contents"
    if output.datatype != "FP64" or list(output.shape) != [1, 3]:
        return f"output {output.name!r} is {output.datatype} {list(output.shape)}, not FP64 [1, 3]", form
    return (None if _close(values) else f"wrong numbers: {values}"), form


def _ours_v2(ports: Ports, workers: int) -> Launch:
    launch = _ours(ports, workers)
    launch.env["SELDON_MODEL_NAME"] = MODEL  # = --model-name: the same V2 name, body and path as the peers
    return launch


def _mlserver_default(ports: Ports) -> Launch:
    """MLServer with its default parallel_workers=1: the model in one inference process behind the
    front process (bench/mlserver_model pins 0, one process)."""
    folder = OUT / "v2" / "mlserver_parallel_1"
    folder.mkdir(parents=True, exist_ok=True)
    settings = json.loads((MLSERVER_MODEL / "settings.json").read_text()) | {"parallel_workers": 1}
    (folder / "settings.json").write_text(json.dumps(settings, indent=2) + "\n")
    shutil.copy(MLSERVER_MODEL / "model-settings.json", folder / "model-settings.json")
    launch = _mlserver(ports, 1)
    launch.argv[-1] = str(folder)
    launch.env["PYTHONPATH"] = str(MLSERVER_MODEL)
    return launch


def _kserve(ports: Ports, workers: int) -> Launch:
    argv = [
        str(KSERVE_VENV / "bin" / "python"), str(BENCH / "v2" / "kserve_bench.py"),
        "--model_name", MODEL, "--http_port", str(ports.http), "--grpc_port", str(ports.grpc),
        "--workers", str(workers),
        # KServe logs two lines per request (access log, timings) unless told not to: measured
        # without them, its fastest setting (ours and MLServer log none).
        "--enable_latency_logging", "false", "--configure_logging", "false",
    ]  # fmt: skip
    return Launch(argv, BENCH / "v2")


def _missing(path: Path) -> str:
    return "" if path.exists() else f"{path} is not installed"


def build_scenarios() -> list[Scenario]:
    rest = RestCall(f"/v2/models/{MODEL}/infer", V2_JSON, check_v2_json)
    grpc = GrpcCall(METHOD, "v2", OUR_VENV / "bin" / "python", grpc_request(), body_key="v2-raw")
    no_seldon = _missing(OUR_VENV / "bin" / "seldon")
    no_mlserver = _missing(MLSERVER_VENV / "bin" / "mlserver")
    scenarios = []
    for w in (1, 2):
        count = workers_label(w)
        scenarios += [
            Scenario("v2-ours", f"**ours**: `seldon microservice`, {count}", w, partial(_ours_v2, workers=w),
                     rest, grpc, ours=True, unavailable=no_seldon),
            Scenario("v2-gateway", f"**ours**: `seldon serve` gateway, 1 in-process node, {count}", w,
                     partial(_gateway, key=f"v2-gateway-w{w}", manifest="gateway_single.yaml", workers=w),
                     rest, grpc, unavailable=no_seldon),
            Scenario("v2-mlserver",
                     "MLServer 1.7.1, parallel_workers=0 (one process)" if w == 1
                     else f"MLServer 1.7.1, parallel_workers={w}",
                     w, partial(_mlserver, workers=w), rest, grpc, unavailable=no_mlserver),
            Scenario("v2-kserve", f"KServe `kserve.Model`, --workers {w}", w, partial(_kserve, workers=w),
                     rest, grpc, unavailable=_missing(KSERVE_VENV / "bin" / "python")),
        ]  # fmt: skip
    scenarios.append(
        Scenario("v2-mlserver-pw1", "MLServer 1.7.1, parallel_workers=1 (its default)", 1,
                 _mlserver_default, rest, grpc, unavailable=no_mlserver)
    )  # fmt: skip
    return scenarios


def _process_cpu(pgid: int) -> dict[int, float]:
    """CPU seconds used so far by each live process of the group."""
    seconds = {}
    for pid in group_pids(pgid):
        fields = _proc_stat(pid)
        if fields is not None:
            seconds[pid] = (int(fields[11]) + int(fields[12])) / CLK_TCK
    return seconds


def _spread(server: Server, client: str, settings: Settings) -> dict[str, Any]:
    """Load the server for SPREAD_SECONDS and return each process's share of one core meanwhile."""
    before = _process_cpu(server.group.pgid)
    started = time.perf_counter()
    result = server.load(client, settings, SPREAD_SECONDS)
    wall = time.perf_counter() - started
    after = _process_cpu(server.group.pgid)
    shares = sorted(((after[p] - before.get(p, 0.0)) / wall * 100.0 for p in after), reverse=True)
    return {"rps": result.get("rps"), "failed": result.get("failed"), "cpu_pct": [round(s) for s in shares]}


def preflight(scenario: Scenario, settings: Settings, spread: bool = True) -> dict[str, Any]:
    """Start the server once: its REST answer (the readiness check) and its gRPC answer must be the
    expected numbers; a 2-worker server is also probed for how it spreads the load (`spread`)."""
    out: dict[str, Any] = {"key": scenario.key, "workers": scenario.workers}
    if scenario.unavailable:
        return out | {"problem": scenario.unavailable}
    log = OUT / "logs" / f"{scenario.key}-w{scenario.workers}-preflight.log"
    assert scenario.grpc is not None and scenario.grpc.request is not None
    import grpc  # the runner's venv has it; only needed once servers run

    try:
        with Server(scenario, log) as server:
            server.wait_grpc()
            with grpc.insecure_channel(f"127.0.0.1:{server.ports.grpc}") as channel:
                answer = channel.unary_unary(METHOD)(scenario.grpc.request, timeout=5.0)
            problem, form = read_grpc_answer(answer)
            out |= {"grpc_answer_form": form, "grpc_answer_bytes": len(answer)}
            if problem:
                return out | {"problem": f"gRPC answer: {problem}"}
            if spread and scenario.workers > 1:
                out["spread"] = {
                    "rest": _spread(server, "wrk", settings),
                    "grpc": _spread(server, "h2load", settings),
                }
    except StartFailed as exc:
        return out | {"problem": str(exc)}
    except grpc.RpcError as exc:
        return out | {"problem": f"gRPC: {exc.code().name}: {exc.details()}"}  # type: ignore[attr-defined]
    return out


SIZE_PROBLEM = "answers averaged"


def _answer_size_problem(record: Record, checked: dict[str, Any]) -> str | None:
    """h2load sees every gRPC answer as HTTP 200: its data bytes per answer must be about the
    checked answer's (5-byte gRPC prefix + message), or some answers were something else (an
    error carries none).  About: the gateway's puid has 32 or 33 hex digits, so its answers vary
    by a byte."""
    per_answer = record.get("result", {}).get("data_bytes_per_answer")
    size = checked.get("grpc_answer_bytes")
    if per_answer is None or size is None or abs(per_answer - (size + 5)) <= max(2.0, 0.01 * (size + 5)):
        return None
    return f"{SIZE_PROBLEM} {per_answer} data bytes, the checked answer has {size + 5}"


def recheck_answer_sizes(saved: dict[str, Any]) -> None:
    """Apply _answer_size_problem to the saved gRPC records again (the rule of this file, not the
    one of the run that saved them)."""
    checks = {(c["key"], c["workers"]): c for c in saved["checks"]}
    for record in (*saved["runs"], *saved["cells"]):
        if str(record.get("failed", "")).startswith(SIZE_PROBLEM):
            del record["failed"]
        checked = checks.get((record["key"], record["workers"]), {})
        problem = (
            record["protocol"] == "grpc"
            and not record.get("failed")
            and _answer_size_problem(record, checked)
        )
        if problem:
            record["failed"] = problem


def run(args: argparse.Namespace, settings: Settings) -> dict[str, Any]:
    scenarios = [
        s for s in build_scenarios() if (not args.only or s.key in args.only) and s.workers in args.workers
    ]
    checks: dict[tuple[str, int], dict[str, Any]] = {}
    print("checking every server's answers (REST and gRPC) and the 2-worker spread ...", flush=True)
    for scenario in scenarios:
        checked = preflight(scenario, settings, spread=not args.check_only)
        checks[(scenario.key, scenario.workers)] = checked
        print(f"  {scenario.key} w{scenario.workers}: {json.dumps(checked)}", flush=True)
    if args.check_only:
        problems = [c for c in checks.values() if c.get("problem")]
        raise SystemExit(1 if problems else 0)
    clients = {"wrk": "rest", "h2load": "grpc"}
    wanted = {client for client, protocol in clients.items() if protocol in args.protocols}
    steps = list(plan(scenarios, set(), wanted, set(args.workers)))
    records: list[Record] = []
    try:
        for run_index in range(args.repeat):
            for number, (scenario, protocol, client) in enumerate(steps, 1):
                cell = f"[{run_index + 1}/{args.repeat} {number}/{len(steps)}] {scenario.key}"
                cell += f" w{scenario.workers} {protocol}"
                checked = checks[(scenario.key, scenario.workers)]
                if checked.get("problem"):
                    record = base_record(scenario, protocol, client, run_index)
                    record["did_not_start"] = f"(answer check) {checked['problem']}"
                else:
                    record = measure_undisturbed(scenario, protocol, client, settings, run_index)
                    problem = protocol == "grpc" and _answer_size_problem(record, checked)
                    if problem and not record.get("failed"):
                        record["failed"] = problem
                records.append(record)
                print(f"{cell}: {summary_line(record)}", flush=True)
    except KeyboardInterrupt:
        print("interrupted: writing what was measured", file=sys.stderr)
    return {"checks": list(checks.values()), "runs": records, "cells": median_records(records)}


# ---------------------------------------------------------------------------------------------- report


def _best_peer(cells: list[Record], workers: int, protocol: str) -> Record | None:
    client = "wrk" if protocol == "rest" else "h2load"
    measured = [c for k in PEER_KEYS if ok(c := find(cells, k, workers, protocol, client))]  # type: ignore[arg-type]
    return max(measured, key=lambda c: rps(c) or 0.0) if measured else None


def _label(record: Record) -> str:
    return record["label"].replace(", " + workers_label(record["workers"]), "")


def _table(cells: list[Record], protocol: str) -> list[str]:
    client = "wrk" if protocol == "rest" else "h2load"
    lines = table_head(
        [
            "workers",
            "server",
            "req/s",
            "p50 ms",
            "p99 ms",
            "server CPU us/req",
            "other CPU %",
            "ours / best peer",
        ]
    )
    for workers in (1, 2):
        best = _best_peer(cells, workers, protocol)
        for key in (*OURS_KEYS, *PEER_KEYS):
            record = find(cells, key, workers, protocol, client)
            if record is None:
                continue
            if not ok(record):
                lines.append(
                    table_row([str(workers), _label(record), problem_cell(record), "", "", "", "", ""])
                )
                continue
            result = record["result"]
            rps_text = fmt(result.get("rps"))
            if record.get("runs", 1) > 1 and record.get("rps_range"):
                rps_text += " ({:,.0f}-{:,.0f})".format(*record["rps_range"])
            if key in OURS_KEYS:
                versus = ratio(rps(record), rps(best))
                ratio_text = f"**{fmt(versus, 2, 'x')}**" if versus is not None else "-"
            else:
                ratio_text = "(best peer)" if record is best else ""
            lines.append(
                table_row([
                    str(workers), _label(record), rps_text,
                    fmt(result.get("p50_ms"), 2), fmt(result.get("p99_ms"), 2),
                    fmt(cpu_per_request(record)), fmt(record.get("cpu", {}).get("other_pct_of_machine"), 1),
                    ratio_text,
                ])
            )  # fmt: skip
    return lines


def _verdicts(cells: list[Record]) -> list[str]:
    lines = []
    for protocol, name in (("rest", "REST"), ("grpc", "gRPC")):
        client = "wrk" if protocol == "rest" else "h2load"
        for workers in (1, 2):
            ours, best = (
                find(cells, "v2-ours", workers, protocol, client),
                _best_peer(cells, workers, protocol),
            )
            versus = ratio(rps(ours), rps(best))
            if versus is None:
                lines.append(f"- {name}, {workers_label(workers)}: not measured.")
                continue
            verdict = "met" if versus >= TARGET else "**missed**"
            lines.append(
                f"- {name}, {workers_label(workers)}: ours {fmt(rps(ours))} req/s vs {_label(best)} "  # type: ignore[arg-type]
                f"{fmt(rps(best))}: **{versus:.2f}x**; target >= {TARGET:g}x: {verdict}."
            )
    return lines


def _spread_lines(checks: list[dict[str, Any]], labels: dict[tuple[str, int], str]) -> list[str]:
    lines = []
    for checked in checks:
        spread = checked.get("spread")
        if not spread:
            continue
        parts = []
        for protocol, name in (("rest", "REST"), ("grpc", "gRPC")):
            probe = spread[protocol]
            if probe.get("failed"):
                parts.append(f"{name} failed ({escape(probe['failed'])})")
            else:
                shares = " / ".join(str(v) for v in probe["cpu_pct"] if v >= 1) or "0"
                parts.append(f"{name} {fmt(probe.get('rps'))} req/s, {shares}")
        label = labels.get((checked["key"], checked["workers"]), checked["key"])
        lines.append(f"- {label}: {'; '.join(parts)}.")
    return lines


def render(saved: dict[str, Any]) -> str:
    recheck_answer_sizes(saved)
    meta, settings, cells = saved["meta"], saved["settings"], saved["cells"]
    labels = {(c["key"], c["workers"]): _label(c) for c in cells}
    by_form: dict[str, list[str]] = {}
    for checked in saved["checks"]:
        if checked.get("grpc_answer_form"):
            label = labels.get((checked["key"], checked["workers"]), checked["key"])
            by_form.setdefault(checked["grpc_answer_form"], []).append(label)
    forms = [f"{form}: {len(names)} of {len(saved['checks'])} servers" for form, names in by_form.items()]
    versions = "; ".join(f"{name}: {text}" for name, text in meta["versions"].items())
    others = [c.get("cpu", {}).get("other_pct_of_machine") for c in cells if ok(c)]
    others = [v for v in others if v is not None]
    attempts = sum(max(0, c.get("attempts", 1) - 1) for c in saved["runs"])
    lines = [
        SECTION,
        "",
        f"`bench/v2_bench.py` ({meta['date']}{', --quick' if meta['quick'] else ''}; "
        f"{meta['repeat']} run(s) of {settings['duration']:g} s per cell after {settings['warmup']:g} s "
        f"of warm-up, every server started fresh per cell, all cells in one run, interleaved): the bench "
        f"model (one FP64 [1, 4] row in, softmax(x @ W + b) out) over the Open Inference Protocol. REST: "
        f"`wrk -t1 -c{settings['connections']}` POSTing a V2 JSON body to `/v2/models/{MODEL}/infer`; "
        f"gRPC: `h2load -c{settings['h2load_clients']} -m{settings['h2load_streams']}` sending one "
        "serialized `ModelInferRequest` (input data in `raw_input_contents`, which every server takes) to "
        "`ModelInfer`. Every server's REST and gRPC answers were checked against the model's numbers "
        "(to 1e-9) before it was measured, and h2load's data bytes per answer against the checked "
        "answer's size.",
        "",
        f"Machine: {meta['machine']['nproc']} cores ({meta['machine']['cpu_model']}); the load "
        "generator runs on the same cores. Versions: " + versions + ".",
        "",
        "### REST (wrk, V2 JSON)",
        "",
        *_table(cells, "rest"),
        "",
        "### gRPC (h2load, `ModelInfer`, raw contents)",
        "",
        *_table(cells, "grpc"),
        "",
        f"### Target: ours >= {TARGET:g}x the best peer in req/s at equal workers (`seldon microservice`)",
        "",
        *_verdicts(cells),
        "",
        "### How the 2-worker servers spread the load",
        "",
        f"CPU of each process of the server, % of one core, over {SPREAD_SECONDS:g} s of the same load "
        "(processes under 1% left out), measured before the cells:",
        "",
        *_spread_lines(saved["checks"], labels),
        "",
        "gRPC answers (the form each server chose for a raw request): " + "; ".join(forms) + ".",
        "",
        f"Noise: other work took {fmt(min(others, default=None), 1)}-{fmt(max(others, default=None), 1)}% "
        f"of the machine during the measured windows; {attempts} cell(s) were measured again because "
        "other work took more than 15% of the machine.",
    ]
    if NOTES.exists():
        lines += ["", NOTES.read_text().strip("\n")]
    return "\n".join(lines) + "\n"


def write_section(text: str) -> None:
    """RESULTS.md with this section replaced (or appended): every other section kept as it is."""
    current = RESULTS.read_text()
    start = current.find(f"\n{SECTION}\n")
    if start < 0:
        RESULTS.write_text(current.rstrip("\n") + "\n\n" + text)
        return
    end = current.find("\n## ", start + len(SECTION) + 2)
    RESULTS.write_text(current[: start + 1] + text + (current[end:] if end >= 0 else ""))


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="3 s per cell after 1 s of warm-up (smoke test)")
    parser.add_argument("--repeat", type=int, default=1, help="fresh runs per cell; the median is reported")
    keys = ", ".join(dict.fromkeys((*OURS_KEYS, *PEER_KEYS)))
    parser.add_argument("--only", nargs="*", default=[], help=f"scenario keys ({keys})")
    parser.add_argument("--workers", nargs="*", type=int, default=[1, 2], choices=(1, 2))
    parser.add_argument("--protocols", nargs="*", default=["rest", "grpc"], choices=("rest", "grpc"))
    parser.add_argument("--max-idle-wait", type=float, default=20.0,
                        help="seconds to wait for a quiet machine before each cell")  # fmt: skip
    parser.add_argument("--retries", type=int, default=1, help="extra attempts for a disturbed cell")
    parser.add_argument("--json", type=Path, default=JSON_PATH)
    parser.add_argument("--check-only", action="store_true",
                        help="only start each server once and check its answers (no load)")  # fmt: skip
    parser.add_argument("--report-only", action="store_true", help="render the report of the saved --json")
    parser.add_argument("--write-results", action="store_true", help="write the section of bench/RESULTS.md")
    args = parser.parse_args()
    if not args.report_only:
        for tool in ("wrk", "h2load"):
            if shutil.which(tool) is None:
                print(f"{tool} is missing: apt-get install -y wrk nghttp2-client", file=sys.stderr)
                return 2
        settings = Settings(max_idle_wait=args.max_idle_wait, retries=args.retries)
        if args.quick:
            settings.duration, settings.warmup = 3.0, 1.0
        (OUT / "logs").mkdir(parents=True, exist_ok=True)
        meta = metadata(args.quick, args.repeat)
        meta["versions"].pop("seldon-core", None)  # not in this benchmark
        kserve = ["kserve", "uvicorn", "fastapi", "grpcio", "numpy"]
        meta["versions"]["KServe"] = _package_versions(KSERVE_VENV / "bin" / "python", kserve)
        meta["command"] = " ".join(["bench/v2_bench.py", *sys.argv[1:]])
        started = time.monotonic()
        saved = {"meta": meta, "settings": asdict(settings), **run(args, settings)}
        meta["elapsed_s"] = round(time.monotonic() - started)
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(saved, indent=2) + "\n")
        print(f"wrote {os.path.relpath(args.json, REPO)}")
    else:
        saved = json.loads(args.json.read_text())
    text = render(saved)
    print()
    print(text)
    if args.write_results:
        write_section(text)
        print(f"wrote the section {SECTION!r} of {os.path.relpath(RESULTS, REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
