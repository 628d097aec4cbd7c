"""Reading the measured records of results.json: lookups, figures, medians over repeated runs.

A record (a "cell" once medians are taken) is one dict per (key, workers, protocol, client,
run), as written by lib.measure; a figure is None when its cell did not start, failed or was
not measured, and every function here passes that None on instead of raising.
"""

from __future__ import annotations

import statistics
from typing import Any

from .loadgen import LATENCY_CLIENTS
from .scenarios import PEERS

Record = dict[str, Any]


def ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b == 0:
        return None
    return a / b


def find(records: list[Record], key: str, workers: int, protocol: str, client: str) -> Record | None:
    for record in records:
        if (record["key"], record["workers"], record["protocol"], record["client"]) == (
            key,
            workers,
            protocol,
            client,
        ):
            return record
    return None


def ok(record: Record | None) -> bool:
    """Measured: started and did not fail."""
    return bool(record) and not record.get("did_not_start") and not record.get("failed")  # type: ignore[union-attr]


def rps(record: Record | None) -> float | None:
    return record["result"].get("rps") if ok(record) else None  # type: ignore[index]


def p99(record: Record | None) -> float | None:
    return record["result"].get("p99_ms") if ok(record) else None  # type: ignore[index]


def result_us(record: Record | None, name: str) -> float | None:
    """A latency figure of the result (stored in ms) in microseconds."""
    if not ok(record):
        return None
    value = record["result"].get(name)  # type: ignore[index]
    return None if value is None else value * 1000.0


def p50_us(record: Record | None) -> float | None:
    return result_us(record, "p50_ms")


def cpu_per_request(record: Record | None) -> float | None:
    """Server CPU microseconds per answered request: less sensitive to a busy machine than req/s."""
    if record is None:
        return None
    pct = record.get("cpu", {}).get("server_pct_of_one_core")
    value = record.get("result", {}).get("rps")
    return pct / 100.0 / value * 1e6 if pct and value else None


def best_peer(
    records: list[Record], peer: str, workers: int, protocol: str, client: str, lower_p99: bool = False
) -> Record | None:
    """The fastest (or lowest-p99) variant of a peer that was measured."""
    found = [find(records, key, workers, protocol, client) for key in PEERS[peer]]
    measured = [r for r in found if ok(r)]
    if not measured:
        return None
    if lower_p99:
        return min(measured, key=lambda r: p99(r) or float("inf"))
    return max(measured, key=lambda r: rps(r) or 0.0)


def median_records(records: list[Record]) -> list[Record]:
    """One record per (key, workers, protocol, client): the run with the median req/s (for the
    one-request-in-flight clients: the run with the median p50)."""
    groups: dict[tuple[str, int, str, str], list[Record]] = {}
    for record in records:
        groups.setdefault(
            (record["key"], record["workers"], record["protocol"], record["client"]), []
        ).append(record)
    chosen = []
    for group in groups.values():
        measured = [r for r in group if r.get("result", {}).get("rps") and not r.get("failed")]
        if not measured:
            chosen.append(group[-1])
            continue
        if group[0]["client"] in LATENCY_CLIENTS:
            measured.sort(key=lambda r: r["result"].get("p50_ms") or float("inf"))
        else:
            measured.sort(key=lambda r: r["result"]["rps"])
        pick = dict(measured[len(measured) // 2])
        values = [r["result"]["rps"] for r in measured]
        pick["runs"] = len(group)
        pick["rps_range"] = [min(values), max(values)]
        pick["p50_ms_runs"] = [r["result"].get("p50_ms") for r in measured]
        pick["cold_start_median_s"] = statistics.median(r["cold_start_s"] for r in measured)
        chosen.append(pick)
    return chosen
