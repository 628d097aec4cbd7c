"""Benchmark orchestration: our microservice vs seldon-core-microservice vs MLServer.

Every measurement starts its server fresh in its own process group, measures the
cold start (Popen to first correct predict answer, polled every 10 ms), warms up
for 2 s with the same load generator, reads idle RSS/PSS of the whole process
group, runs the load (wrk for REST; grpc_load.py and h2load for gRPC), then stops
the group (SIGTERM, SIGKILL after 5 s).  Results go to bench/out/results.json and
bench/RESULTS.md.

Adding a scenario (e.g. a gateway in front of a model) means adding one
``Scenario`` to ``build_scenarios`` in bench/lib/scenarios.py: a launch command, and
the REST and/or gRPC call to load it with.  The report compares every scenario of a
protocol and worker count against the one marked ``ours``.

Entry point: ``bash bench/run.sh [--quick] [--repeat N] [--only KEY ...]``.
"""

# This file is only the command line and the main loop; the work is done by bench/lib/, which
# Python finds because it puts this script's directory first on sys.path (see lib/__init__.py).

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from lib.cells import median_records
from lib.config import BENCH, OUT, REPO, Settings
from lib.loadgen import CLIENTS, LATENCY_CLIENTS
from lib.machine import metadata
from lib.measure import base_record, measure_undisturbed, plan
from lib.model_servers import SERVER_KEYS
from lib.report import summary_line, write_report
from lib.scenarios import GATEWAY_KEYS, build_scenarios


def parse_args() -> argparse.Namespace:
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
    parser.add_argument("--clients", nargs="*", default=[], choices=CLIENTS,
                        help="load generators to run (default: all)")  # fmt: skip
    parser.add_argument("--workers", nargs="*", type=int, default=[], choices=(1, 2),
                        help="worker counts to run (default: 1 and 2)")  # fmt: skip
    parser.add_argument("--gateway", action="store_true",
                        help="only the gateway scenarios and the bare microservice (1 worker, REST); "
                        "raw data to bench/out/gateway.json; RESULTS.md is re-rendered from "
                        "bench/out/results.json with this run as its Gateway section")  # fmt: skip
    parser.add_argument("--servers", action="store_true",
                        help="only the model-server scenarios (a saved sklearn model: ours, MLServer, "
                        "KServe; REST wrk and gRPC h2load, 1 and 2 workers); raw data to "
                        "bench/out/model_servers.json; RESULTS.md gets it as its Model servers "
                        "section")  # fmt: skip
    parser.add_argument("--servers-json", type=Path, default=OUT / "model_servers.json",
                        help="data of the Model servers section when the main data has none")  # fmt: skip
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
    return parser.parse_args()


def run_cells(args: argparse.Namespace, settings: Settings) -> list[dict[str, Any]]:
    """Measure every cell of the plan, `--repeat` times; on Ctrl-C or SIGTERM, what was measured."""
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
                cell = (
                    f"[{run_index + 1}/{args.repeat} {number}/{len(steps)}] "
                    f"{scenario.key} w{scenario.workers} {protocol} {client}"
                )
                print(f"{cell} ...", flush=True)
                why = skipped.get((scenario.key, scenario.workers, "*")) or skipped.get(
                    (scenario.key, scenario.workers, protocol)
                )
                if why:
                    record = {**base_record(scenario, protocol, client, run_index), "did_not_start": why}
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
    return records


def main() -> int:
    args = parse_args()
    main_json = OUT / "results.json"
    if args.gateway:
        args.json = args.json or args.gateway_json
        args.gateway_json = args.json
        args.only = args.only or ["ours", *GATEWAY_KEYS]
        args.workers = args.workers or [1]
        args.clients = args.clients or ["wrk", *LATENCY_CLIENTS]
    elif args.servers:
        args.json = args.json or args.servers_json
        args.servers_json = args.json
        args.only = args.only or list(SERVER_KEYS)
        args.clients = args.clients or ["wrk", "h2load"]
    else:
        args.json = args.json or main_json
        main_json = args.json

    if args.report_only:
        print(
            write_report(
                main_json, args.gateway_json, args.results, args.lesson, args.gateway_notes, args.servers_json
            )
        )
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
    records = run_cells(args, settings)
    meta["elapsed_s"] = time.monotonic() - started
    cells = median_records(records)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(
        json.dumps({"meta": meta, "settings": asdict(settings), "cells": cells, "runs": records}, indent=2)
        + "\n"
    )
    report = write_report(
        main_json, args.gateway_json, args.results, args.lesson, args.gateway_notes, args.servers_json
    )
    print()
    print(report)
    print(f"\nwrote {args.results} and {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
