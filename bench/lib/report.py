"""RESULTS.md: the peer comparison (REST and gRPC tables, targets) and the file as a whole.

``write_report`` renders the report from results.json alone, so ``--report-only`` re-renders
an old run exactly as it was measured (its settings are saved with it).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from .cells import Record, best_peer, cpu_per_request, find, ok, p99, ratio, rps
from .config import REPO, Settings
from .gateway_report import render_gateway
from .markdown import (
    VERDICT_HEAD,
    Verdict,
    fmt,
    problem_cell,
    rps_cell,
    table_head,
    table_row,
    workers_label,
)
from .model_servers import SERVER_KEYS
from .scenarios import GATEWAY_KEYS, PEERS, ROW_ORDER, SECTION_KEYS
from .servers_report import render_servers

# Targets from the issue (ratios: ours / peer at equal worker count).
TARGET_REST_VS_SELDON = 5.0
TARGET_REST_VS_MLSERVER = 3.0
TARGET_GRPC_VS_SELDON = 3.0
TARGET_COLD_START_S = 1.0
TARGET_IDLE_RSS_MB = 80.0

# Sections written by hand (bench/soak.py's summary): kept when the report is re-rendered.
KEPT_HEADINGS = (
    "## Soak",
    "## Same-session checks",
    "## Adaptive batching",
    "## Large payloads and remote hops",
    "## gRPC cores",
    "## REST core",
    "## V2 protocol",
    "## Request logger",
    "## A/B statistics",
)


def results_table(records: list[Record], protocol: str, client: str, memory_columns: bool) -> list[str]:
    rows = [
        r
        for r in records
        if r["protocol"] == protocol and r["client"] == client and r["key"] not in SECTION_KEYS
    ]
    if not rows:
        return ["_Not measured in this run._"]
    rows.sort(
        key=lambda r: (r["workers"], ROW_ORDER.index(r["key"]) if r["key"] in ROW_ORDER else 99, r["key"])
    )
    columns = ["server", "workers", "req/s", "p50 ms", "p99 ms", "errors"]
    if memory_columns:
        columns += ["idle RSS MB (sum)", "idle PSS MB (sum)", "largest process RSS MB", "processes"]
    columns += ["cold start s", "server CPU %", "server CPU us/req", "client CPU %", "other CPU %"]
    columns += ["ours / this req/s", "this p99 / ours p99"]
    lines = table_head(columns)
    ours_key = next((r["key"] for r in records if r["ours"]), "ours")
    for record in rows:
        cells = [record["label"], str(record["workers"])]
        if record.get("did_not_start") or record.get("failed"):
            cells += [problem_cell(record)] + ["-"] * (len(columns) - 3)
            lines.append(table_row(cells))
            continue
        result = record["result"]
        cells += [
            rps_cell(record),
            fmt(result.get("p50_ms"), 2),
            fmt(result.get("p99_ms"), 2),
            str(result.get("errors", 0)),
        ]
        if memory_columns:
            mem = record.get("idle_memory", {})
            cells += [
                fmt(mem.get("rss_mb"), 0),
                fmt(mem.get("pss_mb"), 0),
                fmt(mem.get("max_process_rss_mb"), 0),
                str(mem.get("processes", "-")),
            ]
        cpu = record.get("cpu", {})
        if record["ours"]:
            vs_rps, vs_p99 = "-", "-"
        else:
            ours = find(records, ours_key, record["workers"], protocol, client)
            vs_rps = fmt(ratio(rps(ours), result.get("rps")), 2, "x")
            vs_p99 = fmt(ratio(result.get("p99_ms"), p99(ours)), 1, "x")
        cells += [
            fmt(record.get("cold_start_s"), 2),
            fmt(cpu.get("server_pct_of_one_core"), 0),
            fmt(cpu_per_request(record), 0),
            fmt(cpu.get("client_pct_of_one_core"), 0),
            fmt(cpu.get("other_pct_of_machine"), 0),
            vs_rps,
            vs_p99,
        ]
        lines.append(table_row(cells))
    return lines


def _vs(record: Record | None) -> str:
    return f" ({record['key']})" if record else " (peer not measured: did not start or not run)"


def _throughput_verdict(
    records: list[Record], peer: str, workers: int, protocol: str, client: str, target: float
) -> Verdict:
    ours = find(records, "ours", workers, protocol, client)
    other = best_peer(records, peer, workers, protocol, client)
    value = ratio(rps(ours), rps(other))
    name = "REST" if protocol == "rest" else f"gRPC ({client})"
    client_cpu = ""
    if client == "grpc_load" and ok(ours):
        client_cpu = f"; the Python client used {ours['cpu']['client_pct_of_one_core']:.0f}% CPU"  # type: ignore[index]
    return Verdict(
        f"{name} req/s >= {target:g}x {peer}, {workers_label(workers)}",
        f"{fmt(rps(ours))} vs {fmt(rps(other))}{_vs(other)} req/s{client_cpu}",
        value,
        None if value is None else value >= target,
    )


def verdicts(records: list[Record]) -> list[Verdict]:
    out: list[Verdict] = []
    for workers in (1, 2):
        out.append(_throughput_verdict(records, "seldon-core", workers, "rest", "wrk", TARGET_REST_VS_SELDON))
    for workers in (1, 2):
        out.append(_throughput_verdict(records, "MLServer", workers, "rest", "wrk", TARGET_REST_VS_MLSERVER))
    for workers in (1, 2):
        ours = find(records, "ours", workers, "rest", "wrk")
        for peer in PEERS:
            other = best_peer(records, peer, workers, "rest", "wrk", lower_p99=True)
            value = ratio(p99(other), p99(ours))
            out.append(
                Verdict(
                    f"REST p99 lower than {peer}, {workers_label(workers)}",
                    f"{fmt(p99(ours), 2)} vs {fmt(p99(other), 2)}{_vs(other)} ms (ratio = peer / ours)",
                    value,
                    None if value is None else value > 1.0,
                )
            )
    for client in ("h2load", "grpc_load"):
        for workers in (1, 2):
            out.append(
                _throughput_verdict(records, "seldon-core", workers, "grpc", client, TARGET_GRPC_VS_SELDON)
            )
    for workers in (1, 2):
        starts: list[float] = [
            r["cold_start_median_s"] if "cold_start_median_s" in r else r["cold_start_s"]
            for r in records
            if r["key"] == "ours" and r["workers"] == workers and r.get("cold_start_s") is not None
        ]
        worst = max(starts) if starts else None
        out.append(
            Verdict(
                f"cold start (launch to first answer) < {TARGET_COLD_START_S:g} s, {workers_label(workers)}",
                f"slowest of its {len(starts)} measured starts: {fmt(worst, 3)} s",
                ratio(worst, TARGET_COLD_START_S),
                None if worst is None else worst < TARGET_COLD_START_S,
            )
        )
    for workers in (1, 2):
        target = f"idle RSS < {TARGET_IDLE_RSS_MB:g} MB per worker, {workers_label(workers)}"
        record = find(records, "ours", workers, "rest", "wrk")
        mem = record.get("idle_memory") if ok(record) else None  # type: ignore[union-attr]
        if not mem:
            out.append(Verdict(target, "-", None, None))
            continue
        largest = mem["max_process_rss_mb"]
        out.append(
            Verdict(
                target,
                f"largest process {largest:.1f} MB RSS; group {mem['rss_mb']:.1f} MB RSS, "
                f"{mem['pss_mb']:.1f} MB PSS = {mem['pss_mb'] / workers:.1f} MB PSS per worker",
                ratio(largest, TARGET_IDLE_RSS_MB),
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


def render(meta: dict[str, Any], records: list[Record], settings: Settings, lesson: str) -> str:
    """The peer comparison part of RESULTS.md."""
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
        and ok(r)
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
        *VERDICT_HEAD,
        *(v.row() for v in verdicts(records)),
        "",
    ]
    if lesson:
        lines += ["## Where the time goes (profile)", "", lesson.strip(), ""]
    return "\n".join(lines)


def _load(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


GATEWAY_HEADING = "## Gateway"
SERVERS_HEADING = "## Model servers"


def _section(text: str, heading: str) -> str:
    """The section of an earlier report that starts with `heading`, up to the next section."""
    lines = text.splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith(heading)), None)
    if start is None:
        return ""
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
    return "\n".join(lines[start:end]).strip("\n")


def _main_part(text: str) -> str:
    """An earlier report's peer comparison: everything before its first section of another run."""
    lines = text.splitlines()
    other = (GATEWAY_HEADING, SERVERS_HEADING, *KEPT_HEADINGS)
    end = next((i for i, line in enumerate(lines) if line.startswith(other)), len(lines))
    return "\n".join(lines[:end]).strip("\n")


def _run_with(keys: tuple[str, ...], saved: dict[str, Any] | None, main_json: Path, own_json: Path) -> Any:
    """(data, its file) of a section: the main run's when it measured `keys`, else its own run's."""
    if saved is not None and any(c["key"] in keys for c in saved["cells"]):
        return saved, main_json
    if own_json.resolve() != main_json.resolve():
        return _load(own_json), own_json
    return None, own_json


def write_report(
    main_json: Path, gateway_json: Path, results: Path, lesson: Path, notes: Path, servers_json: Path
) -> str:
    """RESULTS.md from `main_json`, with the Gateway section from the same data when it has gateway
    cells, else from `gateway_json` (a separate gateway run), the same for the Model servers section
    and `servers_json`.  A part whose data is gone (bench/out is not kept) is carried over from the
    earlier RESULTS.md as it was."""
    old = results.read_text() if results.exists() else ""
    saved = _load(main_json)
    if saved is not None:
        report = render(
            saved["meta"],
            saved["cells"],
            Settings(**saved["settings"]),
            lesson.read_text() if lesson.exists() else "",
        )
    else:
        report = _main_part(old)
        if not report:
            raise SystemExit(f"no results to report: {main_json} cannot be read and {results} has none")
    gateway, source = _run_with(GATEWAY_KEYS, saved, main_json, gateway_json)
    if gateway is not None:
        notes_text = notes.read_text() if notes.exists() else ""
        section = "\n".join(render_gateway(gateway, os.path.relpath(source, REPO), notes_text))
    else:
        section = _section(old, GATEWAY_HEADING)
    servers, source = _run_with(SERVER_KEYS, saved, main_json, servers_json)
    if servers is not None:
        servers_notes = notes.with_name("model_servers_notes.md")
        notes_text = servers_notes.read_text() if servers_notes.exists() else ""
        servers_section = "\n".join(render_servers(servers, os.path.relpath(source, REPO), notes_text))
    else:
        servers_section = _section(old, SERVERS_HEADING)
    for part in (section, servers_section, kept_sections(old)):
        if part.strip():
            report = report.rstrip("\n") + "\n\n" + part.strip("\n")
    results.write_text(report.rstrip("\n") + "\n")
    return report


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


def summary_line(record: Record) -> str:
    """One line per measured cell for the console."""
    if record.get("did_not_start"):
        return f"did not start: {record['did_not_start']}"
    if record.get("failed"):
        return f"failed: {record['failed']}"
    result = record["result"]
    mem = record.get("idle_memory", {})
    cpu = record.get("cpu", {})
    return (
        f"{fmt(result.get('rps'))} req/s, p50 {fmt(result.get('p50_ms'), 2)} ms, "
        f"p99 {fmt(result.get('p99_ms'), 2)} ms, errors {result.get('errors', 0)}, "
        f"RSS {fmt(mem.get('rss_mb'))} MB, PSS {fmt(mem.get('pss_mb'))} MB, "
        f"cold start {fmt(record.get('cold_start_s'), 3)} s, "
        f"server CPU {cpu.get('server_pct_of_one_core')}%, other CPU {cpu.get('other_pct_of_machine')}%"
    )
