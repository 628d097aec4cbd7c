"""The Model servers section of RESULTS.md (issue 12): one saved scikit-learn model served by us
(`seldon microservice --server sklearn`), MLServer's sklearn runtime and a KServe `kserve.Model`."""

from __future__ import annotations

from typing import Any

from .cells import Record, find, ok, p99, ratio, rps
from .markdown import VERDICT_HEAD, Verdict, fmt, problem_cell, rps_cell, table_head, table_row, workers_label
from .model_servers import SERVER_KEYS, SERVER_PEERS

TARGET_VS_BEST = 3.0  # ours req/s / the best peer's, at equal workers
TARGET_COLD_START_S = 1.5  # Popen to the first correct answer, the model loaded

METHOD = """\
The kubeflow-seldon example's best model (scikit-learn `LogisticRegression` on the digits data set,
64 features, 10 classes), trained once into `bench/out/sklearn/model.joblib`; every server loads
that same file and answers `predict_proba` for the same row (a held-out digit); each readiness
answer is checked against the probabilities the runner computes (to 1e-9).

- ours: `seldon microservice --server sklearn --model-uri bench/out/sklearn --workers N`
  (SKLEARN_SERVER; its default method is `predict_proba`), Seldon protocol:
  `POST /api/v1.0/predictions` `{{"data": {{"ndarray": [row]}}}}`, gRPC `seldon.protos.Model/Predict`
  (tensor [1, 64]);
- MLServer 1.7.1 with `mlserver-sklearn` (`implementation: mlserver_sklearn.SKLearnModel`,
  `parallel_workers` 0 for 1 worker, N for N), V2: `POST /v2/models/digits/infer` with
  `outputs: [{{name: predict_proba}}]` (its runtime answers `predict` unless asked), gRPC
  `ModelInfer`, same request;
- KServe 0.21 (`kserve.Model` subclass loading the joblib file, `bench/kserve_model/digits_server.py`:
  KServe's own sklearn server is not published on PyPI), `--workers N` (N uvicorn REST workers;
  its gRPC server is one process), REST v1 `POST /v1/models/digits:predict`
  `{{"instances": [row]}}`, gRPC `ModelInfer` (the same V2 body as MLServer's).

REST: `wrk -t1 -c{connections} -d{duration:g}s --latency`; gRPC: `h2load -c{h2clients} -m1` for
{duration:g} s. The load generator runs on the same 2 cores as the servers.
"""


def _peers_best(cells: list[Record], workers: int, protocol: str, client: str) -> Record | None:
    found = [find(cells, key, workers, protocol, client) for keys in SERVER_PEERS.values() for key in keys]
    measured = [r for r in found if ok(r)]
    return max(measured, key=lambda r: rps(r) or 0.0) if measured else None


def servers_table(cells: list[Record], protocol: str, client: str) -> list[str]:
    columns = ["server", "workers", "req/s", "p50 ms", "p99 ms", "errors", "cold start s",
               "idle RSS MB (sum)", "server CPU %", "ours / this req/s", "this p99 / ours p99"]  # fmt: skip
    lines = table_head(columns)
    for workers in (1, 2):
        ours = find(cells, "sk-ours", workers, protocol, client)
        for key in SERVER_KEYS:
            record = find(cells, key, workers, protocol, client)
            if record is None:
                continue
            row = [record["label"], str(workers)]
            if not ok(record):
                lines.append(table_row([*row, problem_cell(record)] + ["-"] * (len(columns) - 3)))
                continue
            result = record["result"]
            mine = key == "sk-ours"
            row += [
                rps_cell(record),
                fmt(result.get("p50_ms"), 2),
                fmt(result.get("p99_ms"), 2),
                str(result.get("errors", 0)),
                fmt(record.get("cold_start_s"), 2),
                fmt(record.get("idle_memory", {}).get("rss_mb"), 0),
                fmt(record.get("cpu", {}).get("server_pct_of_one_core"), 0),
                "-" if mine else fmt(ratio(rps(ours), rps(record)), 2, "x"),
                "-" if mine else fmt(ratio(p99(record), p99(ours)), 1, "x"),
            ]
            lines.append(table_row(row))
    return lines


def server_verdicts(cells: list[Record]) -> list[Verdict]:
    out: list[Verdict] = []
    for protocol, client, name in (("rest", "wrk", "REST"), ("grpc", "h2load", "gRPC (h2load)")):
        for workers in (1, 2):
            ours = find(cells, "sk-ours", workers, protocol, client)
            best = _peers_best(cells, workers, protocol, client)
            value = ratio(rps(ours), rps(best))
            peer = f" ({best['key']})" if best else " (no peer measured)"
            out.append(
                Verdict(
                    f"{name} req/s >= {TARGET_VS_BEST:g}x the best peer, {workers_label(workers)}",
                    f"{fmt(rps(ours))} vs {fmt(rps(best))}{peer} req/s",
                    value,
                    None if value is None else value >= TARGET_VS_BEST,
                )
            )
            low = ratio(p99(best), p99(ours))
            out.append(
                Verdict(
                    f"{name} p99 lower than the best peer's, {workers_label(workers)}",
                    f"{fmt(p99(ours), 2)} vs {fmt(p99(best), 2)} ms{peer}",
                    low,
                    None if low is None else low > 1.0,
                )
            )
    starts = [r["cold_start_s"] for r in cells if r["key"] == "sk-ours" and ok(r) and r.get("cold_start_s")]
    worst = max(starts) if starts else None
    out.append(
        Verdict(
            f"cold start with the model loaded < {TARGET_COLD_START_S:g} s (slowest of our cells)",
            f"{fmt(worst, 2)} s",
            ratio(worst, TARGET_COLD_START_S),
            None if worst is None else worst < TARGET_COLD_START_S,
        )
    )
    return out


def render_servers(saved: dict[str, Any], source: str, notes: str = "") -> list[str]:
    """The report's Model servers section, from one run (`saved`, read from `source`)."""
    meta, cells = saved["meta"], saved["cells"]
    settings = saved.get("settings", {})
    return [
        "## Model servers: a saved scikit-learn model, no class written (ours vs MLServer vs KServe)",
        "",
        f"Measured by `{meta.get('command', 'bash bench/run.sh --servers')}` on {meta['date']} in "
        f"{meta.get('elapsed_s', 0):.0f} s ({meta['repeat']} fresh run(s) per cell). Raw data: `{source}`; "
        "server logs: `bench/out/logs/sk-*.log`. All three measured in the same run, interleaved, each "
        "start fresh.",
        "",
        *METHOD.format(
            connections=settings.get("connections", 16),
            duration=settings.get("duration", 10.0),
            h2clients=settings.get("h2load_clients", 16),
        ).splitlines(),
        "",
        "### REST (wrk)",
        "",
        *servers_table(cells, "rest", "wrk"),
        "",
        "### gRPC (h2load)",
        "",
        *servers_table(cells, "grpc", "h2load"),
        "",
        "### Model server targets",
        "",
        *VERDICT_HEAD,
        *(v.row() for v in server_verdicts(cells)),
        "",
        *([notes.strip(), ""] if notes.strip() else []),
    ]
