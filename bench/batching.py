"""Adaptive batching benchmark: a model whose call costs a fixed 2 ms plus a small per-row cost
(a stand-in for an accelerator model), under 64 concurrent clients, served by

- `seldon microservice` without batching,
- `seldon microservice --max-batch-size 64 --max-batch-time-ms T`,
- MLServer 1.7.1 with its adaptive batching (`max_batch_size` 64, `max_batch_time` T), and
  without (for reference),

each with one worker, one at a time, loaded by `wrk -t1 -c64` POSTing one 1x4 row (Seldon JSON
to ours, a V2 FP64 [1, 4] request to MLServer).

    .venv/bin/python bench/batching.py [--duration 10] [--repeat 3] [--max-batch-time-ms 10]
                                        [--write-results]

Printed: req/s, p50 and p99 per server and run, the ratios, and the targets (batched >= 8x
unbatched req/s; batched p99 < T + 2x the model's time for a full batch); `--write-results`
puts them in bench/RESULTS.md's "## Adaptive batching" section (replaced if there, else
appended), with the median and the spread of the runs.

The model sleeps (time.sleep) rather than busy-waits: an accelerator model's host thread waits
for the device without using the CPU, and on this 2-core machine a busy-wait would take a core
from the load generator and the server's own work, measuring CPU contention instead of batching.
A sleeping sync `predict` still holds the server's event loop for its whole time, as a blocking
device call does.  MLServer needs /tmp/mlsvenv (or $MLSERVER_VENV): see bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

from lib.config import (
    BENCH,
    MLSERVER_VENV,
    OUR_VENV,
    OUT,
)  # bench/lib: this script's directory is on sys.path
from lib.httpclient import http_request
from lib.loadgen import parse_wrk
from lib.processes import ProcessGroup, StartFailed, free_ports

FIXED_MS = 2.0  # per call
PER_ROW_MS = 0.01  # per row
CLIENTS = 64
BATCH = 64  # max batch size
ROW = [1.0, 2.0, 3.0, 4.0]
EXPECTED = [2.0 * v for v in ROW]
WORK = OUT / "batching"
RESULTS = BENCH / "RESULTS.md"
SECTION = "## Adaptive batching"

MODEL = f'''
"""The batching benchmark's model: {FIXED_MS} ms per call plus {PER_ROW_MS} ms per row, slept."""

import time

import numpy as np


class SleepModel:
    def predict(self, X, features_names=None):
        time.sleep(({FIXED_MS} + {PER_ROW_MS} * len(X)) / 1000.0)
        return np.asarray(X, dtype=np.float64) * 2.0
'''

MLSERVER_RUNTIME = f'''
"""The same model as an MLServer runtime (V2: one FP64 input, one FP64 output)."""

import time

import numpy as np
from mlserver import MLModel
from mlserver.codecs import NumpyCodec
from mlserver.types import InferenceRequest, InferenceResponse


class SleepRuntime(MLModel):
    async def load(self) -> bool:
        return True

    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        x = NumpyCodec.decode_input(payload.inputs[0]).astype(np.float64, copy=False)
        time.sleep(({FIXED_MS} + {PER_ROW_MS} * len(x)) / 1000.0)
        return InferenceResponse(
            model_name=self.name,
            id=payload.id,
            outputs=[NumpyCodec.encode_output(name="y", payload=x * 2.0)],
        )
'''

SELDON_BODY = json.dumps({"data": {"ndarray": [ROW]}}).encode()
V2_BODY = json.dumps({"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP64", "data": ROW}]}).encode()


def full_batch_ms() -> float:
    return FIXED_MS + PER_ROW_MS * BATCH


def _ours(batched: bool, time_ms: float) -> tuple[list[str], dict[str, str], Path, str, bytes]:
    http, grpc = free_ports(2)
    argv = [str(OUR_VENV / "bin" / "seldon"), "microservice", "SleepModel", "--http-port", str(http),
            "--grpc-port", str(grpc), "--host", "127.0.0.1", "--log-level", "WARNING"]  # fmt: skip
    if batched:
        argv += ["--max-batch-size", str(BATCH), "--max-batch-time-ms", f"{time_ms:g}"]
    return argv, {}, WORK / "ours", f"http://127.0.0.1:{http}/predict", SELDON_BODY


def _mlserver(batched: bool, time_ms: float) -> tuple[list[str], dict[str, str], Path, str, bytes]:
    http, grpc, metrics = free_ports(3)
    folder = WORK / ("mlserver-batched" if batched else "mlserver")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "sleep_runtime.py").write_text(MLSERVER_RUNTIME)
    # One process, as ours: the model runs in the server's own event loop.
    settings = {"host": "127.0.0.1", "parallel_workers": 0, "load_models_at_startup": True}
    (folder / "settings.json").write_text(json.dumps(settings))
    model: dict[str, Any] = {"name": "sleep", "implementation": "sleep_runtime.SleepRuntime"}
    if batched:
        model |= {"max_batch_size": BATCH, "max_batch_time": time_ms / 1000.0}
    (folder / "model-settings.json").write_text(json.dumps(model))
    env = {"MLSERVER_HTTP_PORT": str(http), "MLSERVER_GRPC_PORT": str(grpc),
           "MLSERVER_METRICS_PORT": str(metrics), "PYTHONPATH": str(folder)}  # fmt: skip
    argv = [str(MLSERVER_VENV / "bin" / "mlserver"), "start", str(folder)]
    return argv, env, folder, f"http://127.0.0.1:{http}/v2/models/sleep/infer", V2_BODY


SERVERS = {
    "ours": ("seldon microservice, no batching", lambda t: _ours(False, t)),
    "ours-batched": ("seldon microservice --max-batch-size 64", lambda t: _ours(True, t)),
    "mlserver": ("MLServer 1.7.1, no batching", lambda t: _mlserver(False, t)),
    "mlserver-batched": ("MLServer 1.7.1, max_batch_size 64", lambda t: _mlserver(True, t)),
}


def _answer_problem(url: str, body: bytes) -> str | None:
    try:
        status, raw = http_request(url, body, timeout=2.0)
    except OSError as exc:
        return f"{type(exc).__name__}: {exc}"
    if status != 200:
        return f"HTTP {status}: {raw[:200]!r}"
    answer = json.loads(raw)
    values = answer["data"]["ndarray"][0] if "data" in answer else answer["outputs"][0]["data"]
    return None if list(map(float, values)) == EXPECTED else f"wrong answer {values}"


def _wrk(url: str, body: bytes, duration: float) -> dict[str, Any]:
    body_file = WORK / f"body_{'v2' if b'inputs' in body else 'seldon'}.json"
    body_file.write_bytes(body)
    env = {**os.environ, "BENCH_BODY_FILE": str(body_file), "BENCH_CONTENT_TYPE": "application/json"}
    command = ["wrk", "-t1", f"-c{CLIENTS}", f"-d{round(duration)}s", "--latency",
               "-s", str(BENCH / "post.lua"), url]  # fmt: skip
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=duration + 60)
    if done.returncode != 0:
        return {"failed": f"wrk exit {done.returncode}: {done.stderr.strip()[-300:]}"}
    return parse_wrk(done.stdout)


def _mean_batch(metrics_url: str) -> float | None:
    """Mean requests per predict call, from our server's seldon_batch_size."""
    try:
        _, raw = http_request(metrics_url, timeout=5.0)
    except OSError:
        return None
    text = raw.decode()
    total = sum(float(v) for v in re.findall(r"^seldon_batch_size_sum\{[^}]*\} (\S+)$", text, re.M))
    count = sum(float(v) for v in re.findall(r"^seldon_batch_size_count\{[^}]*\} (\S+)$", text, re.M))
    return total / count if count else None


def measure(key: str, duration: float, warmup: float, time_ms: float) -> dict[str, Any]:
    argv, env, cwd, url, body = SERVERS[key][1](time_ms)
    cwd.mkdir(parents=True, exist_ok=True)
    if key.startswith("ours"):
        (cwd / "SleepModel.py").write_text(textwrap.dedent(MODEL))
    group = ProcessGroup(argv, WORK / f"{key}.log", cwd=cwd, env=env)
    group.start()
    try:
        try:
            group.wait_ready(lambda: _answer_problem(url, body), timeout=60.0, interval=0.05)
        except StartFailed as exc:
            return {"failed": f"did not start: {exc}"}
        _wrk(url, body, warmup)
        result = _wrk(url, body, duration)
        if key == "ours-batched":
            result["mean_batch"] = _mean_batch(url.replace("/predict", "/metrics"))
        return result
    finally:
        group.stop()


def _fmt(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def _median(runs: list[dict[str, Any]], field: str) -> float | None:
    values = [r[field] for r in runs if r.get(field) is not None]
    return statistics.median(values) if values else None


def _spread(runs: list[dict[str, Any]], field: str, digits: int = 0) -> str:
    values = [r[field] for r in runs if r.get(field) is not None]
    if not values:
        return "-"
    return f"{_fmt(min(values), digits)}-{_fmt(max(values), digits)}"


def report(results: dict[str, list[dict[str, Any]]], args: argparse.Namespace) -> str:
    bound = args.max_batch_time_ms + 2 * full_batch_ms()
    lines = [
        SECTION,
        "",
        f"`bench/batching.py` ({args.when or 'date not saved'}, {args.repeat} run(s) of "
        f"{args.duration:g} s after {args.warmup:g} s of warm-up; median, min-max): a model costing "
        f"{FIXED_MS:g} ms per call plus {PER_ROW_MS * 1000:g} us per row (slept: an accelerator's host "
        f"thread waits without using the CPU), one worker, `wrk -t1 -c{CLIENTS}` POSTing one 1x4 row; "
        f"batching up to {BATCH} requests, waiting at most {args.max_batch_time_ms:g} ms.",
        "",
        "| server | req/s | p50 ms | p99 ms | requests per call | errors |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for key, runs in results.items():
        ok = [r for r in runs if "failed" not in r]
        if not ok:
            lines.append(f"| {SERVERS[key][0]} | {runs[0]['failed']} | | | | |")
            continue
        mean_batch = _median(ok, "mean_batch")
        lines.append(
            f"| {SERVERS[key][0]} | {_fmt(_median(ok, 'rps'), 0)} ({_spread(ok, 'rps')}) "
            f"| {_fmt(_median(ok, 'p50_ms'), 2)} "
            f"| {_fmt(_median(ok, 'p99_ms'), 2)} ({_spread(ok, 'p99_ms', 1)}) "
            f"| {_fmt(mean_batch) if mean_batch else ''} | {sum(r.get('errors') or 0 for r in ok)} |"
        )
    lines.append("")

    def rps(key: str) -> float | None:
        return _median([r for r in results.get(key, []) if "failed" not in r], "rps")

    ours, batched, ml_batched = rps("ours"), rps("ours-batched"), rps("mlserver-batched")
    if ours and batched:
        ratios = [b["rps"] / u["rps"] for u, b in zip(results["ours"], results["ours-batched"], strict=False)
                  if u.get("rps") and b.get("rps")]  # fmt: skip
        verdict = "met" if batched / ours >= 8 else "NOT met"
        lines.append(
            f"- Batched / unbatched req/s: **{batched / ours:.1f}x** (runs: "
            f"{', '.join(f'{r:.1f}x' for r in ratios)}); target >= 8x: {verdict}."
        )
    p99 = _median([r for r in results.get("ours-batched", []) if "failed" not in r], "p99_ms")
    if p99 is not None:
        verdict = "met" if p99 < bound else "NOT met"
        lines.append(
            f"- Batched p99 {p99:.2f} ms against max-batch-time + 2x the model's full-batch time = "
            f"{args.max_batch_time_ms:g} + 2 x {full_batch_ms():.2f} = {bound:.2f} ms: {verdict}."
        )
    if batched and ml_batched:
        lines.append(f"- Ours batched / MLServer batched req/s: **{batched / ml_batched:.1f}x**.")
    return "\n".join(lines) + "\n"


def write_section(text: str) -> None:
    """RESULTS.md with its Adaptive batching section replaced (or appended): nothing else touched."""
    current = RESULTS.read_text() if RESULTS.exists() else ""
    start = current.find(f"\n{SECTION}\n")
    if start < 0:
        RESULTS.write_text(current.rstrip("\n") + "\n\n" + text)
        return
    end = current.find("\n## ", start + len(SECTION) + 2)
    rest = current[end:] if end >= 0 else "\n"
    RESULTS.write_text(current[: start + 1] + text + rest)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--max-batch-time-ms", type=float, default=10.0)
    parser.add_argument("--only", nargs="*", choices=list(SERVERS), default=list(SERVERS))
    parser.add_argument("--write-results", action="store_true")
    parser.add_argument("--json", type=Path, default=WORK / "results.json")
    parser.add_argument("--report-only", type=Path, help="render the report of a saved --json file")
    args = parser.parse_args()
    if args.report_only is not None:
        saved = json.loads(args.report_only.read_text())
        args = argparse.Namespace(**{**vars(args), **saved["settings"], "write_results": args.write_results})
        args.when = saved.get("when")
        text = report(saved["results"], args)
        print(text)
        if args.write_results:
            write_section(text)
        return 0
    WORK.mkdir(parents=True, exist_ok=True)
    args.when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    results: dict[str, list[dict[str, Any]]] = {key: [] for key in args.only}
    for run in range(args.repeat):
        for key in args.only:  # interleaved: a disturbance spreads over all servers alike
            result = measure(key, args.duration, args.warmup, args.max_batch_time_ms)
            results[key].append(result)
            shown = {k: result.get(k) for k in ("rps", "p50_ms", "p99_ms", "errors", "mean_batch", "failed")}
            print(f"run {run + 1} {key}: {json.dumps({k: v for k, v in shown.items() if v is not None})}")
            sys.stdout.flush()
    settings = {k: v for k, v in vars(args).items() if k not in ("json", "report_only", "when")}
    args.json.write_text(json.dumps({"settings": settings, "when": args.when, "results": results}))
    text = report(results, args)
    print()
    print(text)
    if args.write_results:
        write_section(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
