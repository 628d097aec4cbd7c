"""The Gateway section of RESULTS.md: `seldon serve` graphs against the bare microservice.

Throughput share of the single-node gateway, latency at one request in flight, and the cost
per graph hop derived from the p50s: per in-process hop (chain3 - single) / 2, per remote hop
(remote3 - chain3) / 3.
"""

from __future__ import annotations

from typing import Any

from .cells import Record, cpu_per_request, find, ok, p50_us, ratio, result_us, rps
from .config import Settings
from .markdown import VERDICT_HEAD, Verdict, escape, fmt, problem_cell, rps_cell, table_head, table_row
from .scenarios import GATEWAY_KEYS

# Gateway targets (issue 3): 1 worker each, REST.
TARGET_GATEWAY_SHARE = 0.80  # in-process single-model gateway req/s / bare microservice req/s (wrk -c16)
TARGET_INPROCESS_HOP_US = 50.0  # p50 added per in-process graph hop (1 connection)
TARGET_REMOTE_HOP_US = 1000.0  # p50 added per remote (REST) hop (1 connection)
TARGET_PROCESS_SHARE = 0.50  # issue 11: single model, `process` mode req/s / `inline` mode req/s
EXECUTION_GRAPHS = {"gw-single": "single model", "gw-chain3": "3-node chain"}
EXECUTION_MODES = ("inline", "thread", "process")

LATENCY_CLIENT_NAMES = {"seq": "seq_latency.py", "wrk-c1": "wrk -c1"}

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
- `gw-single-thread`, `gw-single-process`, `gw-chain3-thread`, `gw-chain3-process`: the same
  graphs with every user class run as `seldon serve --execution thread` (a bounded thread pool
  per node) or `--execution process` (a child process per node, our microservice on a Unix
  socket) says; `gw-single` and `gw-chain3` are `--execution inline` (the gateway's event loop);
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


def hop_costs(cells: list[Record], client: str) -> dict[str, float | None]:
    """p50s (us) of the three graphs at one request in flight and the per-hop costs."""
    single = p50_us(find(cells, "gw-single", 1, "rest", client))
    chain = p50_us(find(cells, "gw-chain3", 1, "rest", client))
    remote = p50_us(find(cells, "gw-remote3", 1, "rest", client))
    return {
        "single": single,
        "chain": chain,
        "remote": remote,
        "inprocess_hop": None if single is None or chain is None else (chain - single) / 2,
        "remote_hop": None if chain is None or remote is None else (remote - chain) / 3,
    }


def paired_shares(runs: list[Record]) -> list[tuple[float, float | None]]:
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
        share = ratio(rps(pair[1]), rps(pair[0]))
        if share is not None:
            out.append((share, ratio(cpu_per_request(pair[0]), cpu_per_request(pair[1]))))
    return out


def _fmt_limit(us: float) -> str:
    return f"{us / 1000:g} ms" if us >= 1000 else f"{us:g} us"


def gateway_verdicts(cells: list[Record], runs: list[Record] | None = None) -> list[Verdict]:
    base = find(cells, "ours", 1, "rest", "wrk")
    single = find(cells, "gw-single", 1, "rest", "wrk")
    share = ratio(rps(single), rps(base))
    paired = paired_shares(runs or [])
    detail = ""
    if len(paired) > 1:
        detail = (
            "; run by run (the two measured back to back): "
            + ", ".join(f"{a:.2f}" for a, _ in paired)
            + "; server CPU per request, microservice / gateway: "
            + ", ".join(fmt(b, 2) for _, b in paired)
        )
    cpu_share = ratio(cpu_per_request(base), cpu_per_request(single)) if ok(base) and ok(single) else None
    out = [
        Verdict(
            f"gateway with 1 in-process model >= {TARGET_GATEWAY_SHARE:.0%} of the bare microservice's "
            "REST req/s (wrk -c16, 1 worker each)",
            f"{fmt(rps(single))} vs {fmt(rps(base))} req/s (ratio = gateway / microservice; medians of "
            f"the runs){detail}; server CPU per request {fmt(cpu_per_request(single))} vs "
            f"{fmt(cpu_per_request(base))} us ({fmt(cpu_share, 2)})",
            share,
            None if share is None else share >= TARGET_GATEWAY_SHARE,
        )
    ]
    for key, limit, formula, label in (
        ("inprocess_hop", TARGET_INPROCESS_HOP_US, "(chain3 - single) / 2", "in-process"),
        ("remote_hop", TARGET_REMOTE_HOP_US, "(remote3 - chain3) / 3", "remote (REST)"),
    ):
        for client in ("seq", "wrk-c1"):
            costs = hop_costs(cells, client)
            value = costs[key]
            first, second, div = ("chain", "single", 2) if key == "inprocess_hop" else ("remote", "chain", 3)
            name = LATENCY_CLIENT_NAMES[client]
            measured = (
                f"{formula} = ({fmt(costs[first], 1)} - {fmt(costs[second], 1)}) / {div} = "
                f"{fmt(value, 1)} us ({name}; ratio = measured / limit)"
            )
            out.append(
                Verdict(
                    f"each {label} graph hop adds < {_fmt_limit(limit)} at p50 ({name})",
                    measured,
                    ratio(value, limit),
                    None if value is None else value < limit,
                )
            )
    inline, process = (rps(find(cells, key, 1, "rest", "wrk")) for key in ("gw-single", "gw-single-process"))
    process_share = ratio(process, inline)
    out.append(
        Verdict(
            f"a single model in `process` mode >= {TARGET_PROCESS_SHARE:.0%} of `inline` (REST, wrk -c16)",
            f"{fmt(process)} vs {fmt(inline)} req/s (ratio = process / inline)",
            process_share,
            None if process_share is None else process_share >= TARGET_PROCESS_SHARE,
        )
    )
    return out


def gateway_throughput_table(cells: list[Record]) -> list[str]:
    base = find(cells, "ours", 1, "rest", "wrk")
    lines = table_head(
        ["scenario", "req/s", "p50 ms", "p99 ms", "errors", "processes",
         "idle RSS MB (sum)", "idle PSS MB (sum)", "cold start s",
         "server CPU %", "server CPU us/req", "other CPU %", "req/s / microservice's"]
    )  # fmt: skip
    for key in ("ours", *GATEWAY_KEYS):
        record = find(cells, key, 1, "rest", "wrk")
        if record is None:
            continue
        label = f"`{key}`: {record['label']}"
        if not ok(record):
            lines.append(table_row([label, problem_cell(record)] + ["-"] * 11))
            continue
        result, mem, cpu = record["result"], record.get("idle_memory", {}), record.get("cpu", {})
        cells_text = [
            label,
            rps_cell(record),
            fmt(result.get("p50_ms"), 2),
            fmt(result.get("p99_ms"), 2),
            str(result.get("errors", 0)),
            str(mem.get("processes", "-")),
            fmt(mem.get("rss_mb")),
            fmt(mem.get("pss_mb")),
            fmt(record.get("cold_start_s"), 2),
            fmt(cpu.get("server_pct_of_one_core")),
            fmt(cpu_per_request(record)),
            fmt(cpu.get("other_pct_of_machine")),
            "-" if key == "ours" else fmt(ratio(rps(record), rps(base)), 2, "x"),
        ]
        lines.append(table_row(cells_text))
    return lines


def execution_modes_table(cells: list[Record]) -> list[str]:
    """req/s of each graph in each execution mode (wrk), and the share of the inline figure."""
    lines = table_head(
        ["graph", *(f"{m} req/s" for m in EXECUTION_MODES), "thread / inline", "process / inline"]
    )
    for key, graph in EXECUTION_GRAPHS.items():
        figures = {
            m: rps(find(cells, key if m == "inline" else f"{key}-{m}", 1, "rest", "wrk"))
            for m in EXECUTION_MODES
        }
        row = [graph, *(fmt(figures[m]) for m in EXECUTION_MODES)]
        row += [fmt(ratio(figures[m], figures["inline"]), 2, "x") for m in ("thread", "process")]
        lines.append(table_row(row))
    return lines


def gateway_latency_table(cells: list[Record]) -> list[str]:
    lines = table_head(
        ["scenario", "wrk -c1 p50 us", "wrk -c1 p99 us", "wrk -c1 req/s",
         "seq p50 us", "seq p90 us", "seq p99 us", "seq requests",
         "server CPU us/req (seq)", "other CPU % (wrk / seq)", "p50 of each run, seq (us)"]
    )  # fmt: skip
    for key in ("ours", *GATEWAY_KEYS):
        wrk1 = find(cells, key, 1, "rest", "wrk-c1")
        seq = find(cells, key, 1, "rest", "seq")
        if wrk1 is None and seq is None:
            continue
        problems = [
            r.get("did_not_start") or r.get("failed") for r in (wrk1, seq) if r is not None and not ok(r)
        ]
        label = f"`{key}`" + (f" ({escape('; '.join(map(str, problems)))})" if problems else "")
        runs = seq.get("p50_ms_runs") if ok(seq) else None  # type: ignore[union-attr]
        row = [
            label,
            fmt(p50_us(wrk1)),
            fmt(result_us(wrk1, "p99_ms")),
            fmt(rps(wrk1)),
            fmt(p50_us(seq), 1),
            fmt(result_us(seq, "p90_ms"), 1),
            fmt(result_us(seq, "p99_ms"), 1),
            fmt(seq["result"].get("requests") if ok(seq) else None),  # type: ignore[index]
            fmt(cpu_per_request(seq) if ok(seq) else None),
            " / ".join(fmt(r.get("cpu", {}).get("other_pct_of_machine")) if r else "-" for r in (wrk1, seq)),
            ", ".join(f"{v * 1000:.0f}" for v in runs if v is not None) if runs else "-",
        ]
        lines.append(table_row(row))
    return lines


def gateway_hop_table(cells: list[Record]) -> list[str]:
    lines = table_head(
        ["client", "p50 gw-single us", "p50 gw-chain3 us", "p50 gw-remote3 us",
         "per in-process hop us = (chain3 - single) / 2", "per remote hop us = (remote3 - chain3) / 3"]
    )  # fmt: skip
    for client, name in LATENCY_CLIENT_NAMES.items():
        costs = hop_costs(cells, client)
        figures = ("single", "chain", "remote", "inprocess_hop", "remote_hop")
        lines.append(table_row([name, *(fmt(costs[figure], 1) for figure in figures)]))
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
        "### Execution modes (REST, wrk, 16 connections, 1 worker)",
        "",
        *execution_modes_table(cells),
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
        *VERDICT_HEAD,
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
