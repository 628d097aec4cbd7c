"""One cell of the benchmark (server x worker count x load generator), and the order of the cells.

A cell starts its server fresh and measures, in this order: the cold start (launch to the
first correct REST answer, polled every 10 ms), a warm-up with the same load generator, the
idle memory of the server's process group, then the measured load with the CPU time of the
server, of the load generator and of everything else on the machine.  A cell disturbed by
other work on the machine is measured again (``measure_undisturbed``).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from . import loadgen
from .config import OUT, Settings
from .httpclient import http_request
from .processes import (
    ProcessGroup,
    StartFailed,
    children_cpu_seconds,
    connections_per_process,
    group_cpu_seconds,
    group_memory,
    machine_busy_seconds,
)
from .scenarios import Scenario, fresh_ports


class Server:
    """One server under test, alive inside a `with` block, in its own process group."""

    def __init__(self, scenario: Scenario, log_path: Path) -> None:
        self.scenario = scenario
        self.ports = fresh_ports()
        self.launch = scenario.launch(self.ports)
        self.group = ProcessGroup(self.launch.argv, log_path, cwd=self.launch.cwd, env=self.launch.env)
        self.cold_start_s: float | None = None

    def __enter__(self) -> Server:
        self.group.start()
        try:
            self.cold_start_s = self.group.wait_ready(self._rest_problem, timeout=30.0, interval=0.01)
        except BaseException:
            self.group.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.group.stop()

    def _rest_problem(self) -> str | None:
        """None when the REST predict answers the expected numbers (ready), else why not."""
        rest = self.scenario.rest
        assert rest is not None
        url = f"http://127.0.0.1:{self.ports.http}{rest.path}"
        try:
            status, body = http_request(url, rest.body, rest.content_type, timeout=2.0)
        except OSError as exc:
            return f"{type(exc).__name__}: {exc}"
        if status != 200:
            return f"HTTP {status}: {body[:200]!r}"
        return rest.check(body)

    def wait_grpc(self, timeout: float = 30.0) -> None:
        """The gRPC side may come up after REST (other process, other server): wait for an answer."""
        call = self.scenario.grpc
        assert call is not None and call.request is not None
        import grpc  # here, not at the top: --report-only and REST-only runs do not need grpcio

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

    def load(self, client: str, settings: Settings, seconds: float, sample: bool = False) -> dict[str, Any]:
        """Run load generator `client` against this server; `sample`: count the gRPC connections
        per server process halfway through."""
        rest, call = self.scenario.rest, self.scenario.grpc
        if client in loadgen.REST_CLIENTS:
            assert rest is not None
            if client == "wrk":
                return loadgen.run_wrk(rest, self.ports.http, settings, seconds)
            if client == "wrk-c1":
                return loadgen.run_wrk(rest, self.ports.http, settings, seconds, settings.latency_connections)
            return loadgen.run_seq(rest, self.ports.http, settings, seconds)
        assert call is not None
        pgid, port = self.group.pgid, self.ports.grpc
        balance = (lambda: connections_per_process(pgid, port)) if sample else None
        if client == "grpc_load":
            return loadgen.run_grpc_client(call, port, settings, seconds, balance)
        return loadgen.run_h2load(call, port, settings, seconds, balance)


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


def base_record(scenario: Scenario, protocol: str, client: str, run_index: int) -> dict[str, Any]:
    """What identifies a cell in results.json."""
    return {
        "key": scenario.key,
        "label": scenario.label,
        "workers": scenario.workers,
        "protocol": protocol,
        "client": client,
        "ours": scenario.ours,
        "note": scenario.note,
        "run": run_index,
    }


def measure(
    scenario: Scenario, protocol: str, client: str, settings: Settings, run_index: int
) -> dict[str, Any]:
    record = base_record(scenario, protocol, client, run_index)
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
            warm = server.load(client, settings, settings.warmup)
            if warm.get("failed"):
                record["failed"] = f"warm-up: {warm['failed']}"
                return record
            time.sleep(0.5)  # let the warm-up's connections close before reading idle memory
            record["idle_memory"] = group_memory(server.group.pgid)
            record.update(_measured_load(server, protocol, client, settings))
            if server.group.exited():
                record["failed"] = f"server exited during the run: {server.group.log_reason()}"
    except StartFailed as exc:
        record["did_not_start"] = str(exc)
    return record


def _measured_load(server: Server, protocol: str, client: str, settings: Settings) -> dict[str, Any]:
    """The measured window: the load generator's result and who used the CPU meanwhile."""
    pgid = server.group.pgid
    busy0, server0, client0 = machine_busy_seconds(), group_cpu_seconds(pgid), children_cpu_seconds()
    wall0 = time.perf_counter()
    result = server.load(client, settings, settings.duration, sample=protocol == "grpc")
    wall = time.perf_counter() - wall0
    server_cpu = group_cpu_seconds(pgid) - server0
    client_cpu = children_cpu_seconds() - client0
    # Everything else: the machine's busy time minus the server's and the load generator's.
    other = machine_busy_seconds() - busy0 - server_cpu - client_cpu
    out: dict[str, Any] = {
        "cpu": {
            "server_pct_of_one_core": round(server_cpu / wall * 100.0, 1),
            "client_pct_of_one_core": round(client_cpu / wall * 100.0, 1),
            "other_pct_of_machine": round(max(0.0, other) / wall / (os.cpu_count() or 1) * 100.0, 1),
        },
        "result": result,
    }
    if result.get("failed"):
        out["failed"] = result["failed"]
    elif not result.get("requests"):
        out["failed"] = f"no successful request ({result.get('first_error') or 'see log'})"
    return out


def other_pct(record: dict[str, Any]) -> float:
    """Share of the machine other work took during the cell's measured window."""
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
        if record.get("did_not_start") or other_pct(record) <= settings.disturbed_pct:
            break
        if attempt < settings.retries:
            print(f"    disturbed (other CPU {other_pct(record)}% of the machine): again", flush=True)
    measured = [r for r in attempts if r.get("result") and not r.get("failed")] or attempts
    best = min(measured, key=other_pct)
    best["attempts"] = len(attempts)
    best["other_pct_of_attempts"] = [other_pct(r) for r in attempts]
    return best


def plan(
    scenarios: list[Scenario],
    only: set[str],
    clients_wanted: set[str],
    workers_wanted: set[int] | None = None,
) -> Iterator[tuple[Scenario, str, str]]:
    """The cells of a run: (scenario, protocol, client).  The stacks are interleaved so slow
    drifts of the machine hit them alike."""
    chosen = [s for s in scenarios if not only or s.key in only]
    for protocol, clients in (("rest", loadgen.REST_CLIENTS), ("grpc", loadgen.GRPC_CLIENTS)):
        for workers in (1, 2):
            if workers_wanted and workers not in workers_wanted:
                continue
            for client in clients:
                if clients_wanted and client not in clients_wanted:
                    continue
                for scenario in chosen:
                    if scenario.workers != workers:
                        continue
                    if client in loadgen.LATENCY_CLIENTS and not scenario.latency:
                        continue
                    if protocol == "rest" and scenario.rest is None:
                        continue
                    if protocol == "grpc" and scenario.grpc is None:
                        continue
                    yield scenario, protocol, client
