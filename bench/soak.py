"""Soak test: `seldon serve examples/manifests --workers 2` under a steady predict/feedback/apply
mix for half an hour, recording every error and the server's memory.

1. start the gateway in its own process group (fresh state directory, free ports);
2. measure its capacity for this mix: a few seconds of closed-loop load, 16 in flight;
3. run the soak at a fixed request rate (open loop: requests are sent on a schedule, not
   when the previous one returns), by default 30% of that capacity, so any error or
   slowdown is the server's doing, not overload;
4. sample RSS and PSS of the whole process group every 5 s;
5. stop the group (SIGTERM, then SIGKILL) and write the report (bench/SOAK.md).

The mix: 80% predictions spread over the four example deployments (model, A/B test,
bandit, outlier detector) and a fifth one, `mysoak`; 20% feedback to the bandit, each for an
answer of the bandit received earlier (its own puid and routing, so every feedback counts
once); and every --apply-every seconds a new version of `mysoak` applied through the admin
port (with the admin token), while its predictions go on.

Every non-200 answer, unexpected body, exception or timeout is an error, and so is a
request the schedule could not send because too many were still in flight.  Exit status
0 when there were no errors and PSS (the fair share of a forked tree's memory) grew less than
--max-growth percent after the warm-up.

    .venv/bin/python bench/soak.py                 # 30 minutes, writes bench/SOAK.md
    .venv/bin/python bench/soak.py --seconds 30 --out /tmp/soak-smoke.md   # a smoke run
"""

# Ports, process groups and memory sampling are bench/lib's (shared with run_bench.py); Python finds
# it because it puts this script's directory first on sys.path (see lib/__init__.py).

from __future__ import annotations

import argparse
import asyncio
import collections
import datetime as dt
import json
import os
import platform
import random
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import yaml
from lib.config import BENCH, OUR_VENV, REPO
from lib.httpclient import get_problem
from lib.processes import ProcessGroup, free_ports, group_memory

SELDON = OUR_VENV / "bin" / "seldon"
EXAMPLES = REPO / "examples" / "manifests"
PREDICTED = ["mymodel", "myabtest", "mymab", "myout", "mysoak"]
APPLIED = "mysoak"  # a copy of mymodel, applied again and again under load
BANDIT = "mymab"
ROUTER = "eg-router"
# Requests in flight before the schedule gives up sending (each one then counts as an
# error): ~1 s of a stalled server at the usual soak rates.
MAX_IN_FLIGHT = 512
REQUEST_TIMEOUT = 10.0


@dataclass
class Admin:
    """The gateway's admin port and its token."""

    url: str
    token: str

    def call(self, method: str, path: str, body: bytes | None = None) -> Any:
        request = urllib.request.Request(self.url + path, data=body, method=method)
        request.add_header("Authorization", f"Bearer {self.token}")
        request.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(request, timeout=30) as answer:
            return json.loads(answer.read())


def gateway(workers: int, state_dir: Path) -> tuple[ProcessGroup, str, Admin]:
    """The gateway under test (not started yet), its base URL and its admin port."""
    http, grpc_port, admin_port = free_ports(3)
    token = secrets.token_urlsafe(24)
    token_file = state_dir / "admin-token"
    token_file.write_text(token)
    token_file.chmod(0o600)
    argv = [str(SELDON), "serve", str(EXAMPLES), "--workers", str(workers)]
    argv += ["--http-port", str(http), "--grpc-port", str(grpc_port), "--host", "127.0.0.1"]
    argv += ["--admin-port", str(admin_port), "--admin-token-file", str(token_file)]
    argv += ["--state-dir", str(state_dir / "state"), "--log-level", "WARNING"]
    admin = Admin(f"http://127.0.0.1:{admin_port}", token)
    return ProcessGroup(argv, state_dir / "server.log"), f"http://127.0.0.1:{http}", admin


# What earlier soaks taught about the server's memory (written into every report).
MEMORY_NOTES = [
    "## Reading the memory figures",
    "",
    "- PSS counts a page shared by N processes as 1/N in each: the fair total of a forked tree. It also"
    " moves by a few MB when other processes on the machine map the same library files, so the"
    " anonymous part (PSS anon: what the server itself allocated) is listed too.",
    "- Forked workers used to copy the pages they inherit from the supervisor at their first full"
    " garbage collection (the collector writes to the header of every object it visits): PSS jumped"
    " ~10 MB per worker after a minute of load while RSS stayed flat (2026-11-25: 96.5 -> 113.6 MB in"
    " 5 minutes). The supervisor now calls gc.freeze() before forking: in a 150 s soak before/after"
    " the change PSS rose 103 -> 126 MB before and stayed 96-98 MB after.",
    "- A concurrency peak leaves a high-water mark: memory that held many requests at once stays with"
    " Python's allocator for reuse (malloc_trim returns none of it). Measured: 3,000 requests at once"
    " raised the anonymous PSS of a 2-worker server 73 -> 105 MB; four more such bursts added 2 MB"
    " in all. A 30-minute soak on a machine where other benchmarks ran (2026-12-02 13:51 UTC) saw"
    " its requests pile up behind them three times, and PSS step up with each pile-up (+11 MB, the"
    " report's only growth). So the soak now starts with its own peak (512 requests in flight, the"
    " most it allows) before the baseline, and `--max-connections` bounds the peak a server can"
    " reach (about 10 KB per request in flight).",
]


def served_by_all(url: str, times: int = 20) -> str | None:
    """None when GET `url` answers 200 `times` in a row (every worker has it), else why not."""
    for _ in range(times):
        problem = get_problem(url)
        if problem is not None:
            return problem
    return None


def applied_manifest(version: int) -> bytes:
    """`mysoak`: the mymodel example under another name, at `version` (each one a new generation)."""
    manifest = yaml.safe_load((EXAMPLES / "mymodel.yaml").read_text())
    if manifest.get("kind") == "List":
        manifest = manifest["items"][0]
    manifest["metadata"]["name"] = APPLIED
    manifest["spec"]["name"] = APPLIED
    manifest["spec"].setdefault("annotations", {})["deployment_version"] = f"v{version}"
    # The body `seldon apply` sends.
    return json.dumps({"manifest": manifest, "base_dir": str(EXAMPLES)}).encode()


@dataclass
class Tally:
    predictions: int = 0
    feedbacks: int = 0
    errors: collections.Counter[str] = field(default_factory=collections.Counter)
    first_errors: list[str] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    applies: int = 0
    skipped: int = 0  # due by the schedule but not sent: MAX_IN_FLIGHT were outstanding

    def error(self, kind: str, detail: str) -> None:
        self.errors[kind] += 1
        if len(self.first_errors) < 20:
            self.first_errors.append(f"{time.strftime('%H:%M:%S')} {kind}: {detail[:300]}")

    @property
    def total(self) -> int:
        return self.predictions + self.feedbacks


class Mix:
    """Which request comes next, and its body."""

    def __init__(self, url: str, feedback_share: float, seed: int) -> None:
        self.url = url
        self.feedback_share = feedback_share
        self.random = random.Random(seed)
        # Bandit answers not yet given feedback (bounded: the oldest are dropped).
        self.bandit_answers: collections.deque[dict[str, Any]] = collections.deque(maxlen=1000)
        self.turn = 0

    def next(self) -> tuple[str, str, bytes]:
        """(kind, url, body) of the next request."""
        if self.bandit_answers and self.random.random() < self.feedback_share:
            answer = self.bandit_answers.popleft()
            branch = answer["meta"]["routing"][ROUTER]
            # The rewarded branch is 1, so the bandit has something to learn.
            reward = 1.0 if self.random.random() < (0.8 if branch == 1 else 0.3) else 0.0
            body = {"request": answer.pop("_request"), "response": answer, "reward": reward}
            return "feedback", f"{self.url}/seldon/{BANDIT}/api/v0.1/feedback", json.dumps(body).encode()
        name = PREDICTED[self.turn % len(PREDICTED)]
        self.turn += 1
        # Two features near a fixed point (the detector scores them), fresh values every time.
        row = [round(self.random.gauss(1.0, 0.3), 4), round(self.random.gauss(2.0, 0.3), 4)]
        body = {"data": {"names": ["a", "b"], "ndarray": [row]}}
        return f"predict:{name}", f"{self.url}/seldon/{name}/api/v0.1/predictions", json.dumps(body).encode()


async def one_request(session: aiohttp.ClientSession, mix: Mix, tally: Tally, record: bool) -> None:
    kind, url, body = mix.next()
    start = time.perf_counter()
    try:
        async with session.post(url, data=body, headers={"Content-Type": "application/json"}) as response:
            raw = await response.read()
            status = response.status
    except (aiohttp.ClientError, OSError, TimeoutError) as exc:
        tally.error(f"{kind} {type(exc).__name__}", str(exc) or type(exc).__name__)
        return
    latency = time.perf_counter() - start
    if status != 200:
        tally.error(f"{kind} HTTP {status}", raw.decode(errors="replace"))
        return
    try:
        answer = json.loads(raw)
    except ValueError:
        tally.error(f"{kind} bad JSON", raw[:200].decode(errors="replace"))
        return
    if kind == "feedback":
        if answer != {}:
            tally.error("feedback unexpected body", raw.decode(errors="replace"))
            return
        tally.feedbacks += 1
    else:
        if "data" not in answer or "puid" not in answer.get("meta", {}):
            tally.error(f"{kind} unexpected body", raw.decode(errors="replace"))
            return
        tally.predictions += 1
        if kind == f"predict:{BANDIT}":
            answer["_request"] = json.loads(body)
            mix.bandit_answers.append(answer)
    if record:
        tally.latencies.append(latency)


async def closed_loop(url: str, seconds: float, concurrency: int) -> tuple[float, int]:
    """Requests per second this mix reaches with `concurrency` requests always in flight
    (and how many feedbacks it sent)."""
    mix = Mix(url, 0.2, seed=1)
    tally = Tally()
    deadline = time.monotonic() + seconds
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency), timeout=timeout) as s:

        async def client() -> None:
            while time.monotonic() < deadline:
                await one_request(s, mix, tally, record=False)

        start = time.monotonic()
        await asyncio.gather(*(client() for _ in range(concurrency)))
        elapsed = time.monotonic() - start
    if tally.errors:
        raise RuntimeError(f"errors while measuring capacity: {dict(tally.errors)} {tally.first_errors[:3]}")
    return tally.total / elapsed, tally.feedbacks


def memory_sample(pgid: int, elapsed: float, tally: Tally) -> dict[str, float]:
    """One row of the RSS table: the server's memory and the requests so far, at `elapsed` s."""
    memory = group_memory(pgid)
    return {
        "t": round(elapsed, 1),
        "rss_mb": memory["rss_mb"],
        "pss_mb": memory["pss_mb"],
        "pss_anon_mb": memory["pss_anon_mb"],
        "processes": memory["processes"],
        "requests": tally.total,
        "errors": sum(tally.errors.values()),
    }


async def apply_forever(admin: Admin, every: float, tally: Tally) -> None:
    """A new version of `mysoak` through the admin port every `every` s (in a thread: urllib)."""
    version = 1
    while True:
        await asyncio.sleep(every)
        version += 1
        try:
            await asyncio.to_thread(admin.call, "PUT", "/admin/deployments", applied_manifest(version))
            tally.applies += 1
        except (OSError, ValueError) as exc:
            tally.error("apply", f"{type(exc).__name__}: {exc}")


async def soak(
    url: str,
    pgid: int,
    rate: float,
    seconds: float,
    feedback_share: float,
    sample_every: float,
    admin: Admin,
    apply_every: float,
) -> tuple[Tally, list[dict[str, float]]]:
    mix = Mix(url, feedback_share, seed=2)
    tally = Tally()
    samples: list[dict[str, float]] = []
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT)
    connector = aiohttp.TCPConnector(limit=MAX_IN_FLIGHT)
    in_flight: set[asyncio.Task[None]] = set()
    loop = asyncio.get_running_loop()
    applier = asyncio.create_task(apply_forever(admin, apply_every, tally))
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        start = loop.time()
        next_sample = start
        sent = 0
        while True:
            now = loop.time()
            elapsed = now - start
            if elapsed >= seconds:
                break
            if now >= next_sample:
                samples.append(memory_sample(pgid, elapsed, tally))
                next_sample += sample_every
            due = int(elapsed * rate) - sent
            for _ in range(due):
                sent += 1
                if len(in_flight) >= MAX_IN_FLIGHT:
                    tally.skipped += 1
                    continue
                task = asyncio.create_task(one_request(session, mix, tally, record=True))
                in_flight.add(task)
                task.add_done_callback(in_flight.discard)
            await asyncio.sleep(0.005)
        applier.cancel()
        if in_flight:
            await asyncio.wait(in_flight, timeout=REQUEST_TIMEOUT + 1)
    samples.append(memory_sample(pgid, loop.time() - start, tally))
    return tally, samples


def slope_mb_per_hour(samples: list[dict[str, float]], key: str = "rss_mb") -> float:
    """Least-squares memory trend: steadier than comparing two samples."""
    if len(samples) < 3:
        return 0.0
    xs = [s["t"] for s in samples]
    ys = [s[key] for s in samples]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    den = sum((x - mx) ** 2 for x in xs)
    return 0.0 if den == 0 else sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / den * 3600


def router_tries(admin: Admin) -> int:
    """Trials the bandit's router has counted, as `seldon get mymab -o json` shows them."""
    view = admin.call("GET", f"/admin/deployments/default/{BANDIT}")
    found: list[int] = []

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            if value.get("name") == ROUTER and isinstance(value.get("state"), dict):
                found.append(sum(int(b["tries"]) for b in value["state"]["branches"]))
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    walk(view)
    if not found:
        raise RuntimeError(f"no router state in the {BANDIT} deployment's view")
    return found[0]


def baseline_index(samples: list[dict[str, float]], warmup: float) -> int:
    """The first sample after the warm-up: the RSS the growth is measured from."""
    for index, sample in enumerate(samples):
        if sample["t"] >= warmup:
            return min(index, len(samples) - 1)
    return len(samples) - 1


def other_benchmark_running() -> bool:
    found = subprocess.run(["pgrep", "-f", "run_bench.py"], capture_output=True, text=True)
    return bool(found.stdout.strip())


def report(args: argparse.Namespace, result: dict[str, Any]) -> str:
    tally: Tally = result["tally"]
    samples = result["samples"]
    base = samples[result["baseline"]]
    start, end = base["rss_mb"], samples[-1]["rss_mb"]
    lat = sorted(tally.latencies)

    def pct(q: float) -> float:
        return lat[min(len(lat) - 1, int(q * len(lat)))] * 1000 if lat else float("nan")

    errors = sum(tally.errors.values()) + tally.skipped
    smoke = " -- a SMOKE run, not the 30-minute soak" if args.seconds < 1800 else ""
    pss_start, pss_end = base["pss_mb"], samples[-1]["pss_mb"]
    lines = [
        "# Soak test",
        "",
        f"`{result['command']}` on {result['date']} ({platform.node()}, {os.cpu_count()} cores,"
        f" Python {platform.python_version()}){smoke}.",
        "",
        f"Server: `seldon serve examples/manifests --workers {args.workers}` (fresh state directory). Mix:"
        f" {100 - args.feedback_share * 100:.0f}% predictions over {', '.join(PREDICTED)};"
        f" {args.feedback_share * 100:.0f}% feedback to {BANDIT}, each for an earlier answer of it;"
        f" a new version of {APPLIED} applied through the admin port (admin token) every"
        f" {args.apply_every:g} s.",
        f"Capacity for this mix (closed loop, 16 in flight, {args.capacity_seconds:g} s):"
        f" {result['capacity']:.0f} req/s; soak rate {result['rate']:.0f} req/s (open loop,"
        f" {result['rate'] / result['capacity'] * 100:.0f}% of capacity), after {args.peak_seconds:g} s with"
        f" {MAX_IN_FLIGHT} requests in flight (the most the soak allows)."
        if result["capacity"]
        else f"Soak rate {result['rate']:.0f} req/s (given).",
        "",
        "| | |",
        "|---|---|",
        f"| duration | {result['seconds']:.0f} s |",
        f"| requests | {tally.total} ({tally.predictions} predictions, {tally.feedbacks} feedbacks),"
        f" {tally.total / result['seconds']:.0f} req/s; {tally.applies} applies |",
        f"| errors | **{errors}** |",
        f"| latency p50 / p99 / max | {pct(0.5):.1f} / {pct(0.99):.1f} / {pct(1.0):.1f} ms |",
        f"| answers slower than 100 ms / 1 s | {sum(x > 0.1 for x in lat)} / {sum(x > 1.0 for x in lat)} |",
        f"| RSS of the process group at t={base['t']:.0f} s -> end | {start:.1f} MB -> {end:.1f} MB"
        f" (**{(end - start) / start * 100:+.2f}%**, max {max(s['rss_mb'] for s in samples):.1f} MB;"
        f" {samples[0]['rss_mb']:.1f} MB at t=0) |",
        f"| PSS of the process group at t={base['t']:.0f} s -> end | {pss_start:.1f} MB -> {pss_end:.1f} MB"
        f" (**{(pss_end - pss_start) / pss_start * 100:+.2f}%**, max {max(s['pss_mb'] for s in samples):.1f}"
        f" MB; {samples[0]['pss_mb']:.1f} MB at t=0) |",
        f"| anonymous PSS at t={base['t']:.0f} s -> end (not moved by other processes' shared files) |"
        f" {base['pss_anon_mb']:.1f} MB -> {samples[-1]['pss_anon_mb']:.1f} MB"
        f" ({(samples[-1]['pss_anon_mb'] - base['pss_anon_mb']) / base['pss_anon_mb'] * 100:+.2f}%) |",
        f"| RSS / PSS trend after t={base['t']:.0f} s (least squares, extrapolated) |"
        f" {slope_mb_per_hour(samples[result['baseline'] :]):+.1f} /"
        f" {slope_mb_per_hour(samples[result['baseline'] :], 'pss_mb'):+.1f} MB/hour |",
        "| bandit trials counted / feedbacks acknowledged (capacity and peak runs included) |"
        f" {result['tries']} / {result['feedbacks_total']} |",
        f"| server exit on SIGTERM | {result['exit_code']} |",
        "",
        f"Verdict: {'PASS' if result['passed'] else 'FAIL'} (target: 0 errors, PSS growth under"
        f" {args.max_growth:g}%). Growth is measured from the first sample after a warm-up of"
        f" {result['warmup']:g} s at the soak rate (pools, caches and connections fill up first; the"
        " capacity run before it has already been through every code path).",
        "",
    ]
    if errors:
        lines += ["## Errors", "", "| kind | count |", "|---|---|"]
        lines += [f"| {kind} | {count} |" for kind, count in tally.errors.most_common()]
        if tally.skipped:
            lines.append(f"| not sent: {MAX_IN_FLIGHT} requests still in flight | {tally.skipped} |")
        lines.append("")
        if tally.first_errors:
            lines += ["First errors:", "", "```", *tally.first_errors, "```", ""]
    lines += [
        *MEMORY_NOTES,
        "",
        f"## Memory samples (every {args.sample_every:g} s)",
        "",
        "| t (s) | requests | errors | RSS MB | PSS MB | PSS anon MB | processes |",
        "|---|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {s['t']:.0f} | {s['requests']} | {s['errors']} | {s['rss_mb']:.1f} | {s['pss_mb']:.1f}"
        f" | {s['pss_anon_mb']:.1f} | {s['processes']} |"
        for s in samples
    ]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=1800.0, help="soak duration [1800]")
    parser.add_argument("--apply-every", type=float, default=10.0, help="s between two applies [10]")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rate", type=float, default=None, help="requests/s [a share of measured capacity]")
    parser.add_argument("--capacity-share", type=float, default=0.3, help="soak rate / capacity [0.3]")
    parser.add_argument("--capacity-seconds", type=float, default=5.0)
    parser.add_argument(
        "--peak-seconds", type=float, default=3.0, help=f"s of {MAX_IN_FLIGHT} in flight before the soak [3]"
    )
    parser.add_argument("--feedback-share", type=float, default=0.2)
    parser.add_argument("--sample-every", type=float, default=5.0, help="RSS sampling period in s [5]")
    parser.add_argument(
        "--warmup", type=float, default=60.0, help="s of soak before the baseline [60, at most 20%%]"
    )
    parser.add_argument("--max-growth", type=float, default=5.0, help="PSS growth target in %% [5]")
    parser.add_argument("--out", type=Path, default=BENCH / "SOAK.md")
    parser.add_argument("--force", action="store_true", help="run even while bench/run_bench.py runs")
    args = parser.parse_args()

    if args.seconds > 60 and other_benchmark_running() and not args.force:
        print(
            "bench/run_bench.py is running: a soak now would measure both. Wait for it, run a smoke"
            " (--seconds 30), or pass --force.",
            file=sys.stderr,
        )
        return 2

    command = "python bench/soak.py " + " ".join(sys.argv[1:])
    with tempfile.TemporaryDirectory(prefix="seldon-soak-") as tmp:
        server, url, admin = gateway(args.workers, Path(tmp))
        exit_code: int | None = None
        try:
            server.start()
            server.wait_ready(lambda: get_problem(url + "/ready"), timeout=60.0, interval=0.1)
            admin.call("PUT", "/admin/deployments", applied_manifest(1))
            # Every worker serves it (20 answers in a row) before the load starts.
            applied_url = f"{url}/seldon/{APPLIED}/api/v1.0/metadata"
            server.wait_ready(lambda: served_by_all(applied_url), timeout=60.0, interval=0.1)
            capacity = 0.0
            capacity_feedbacks = 0
            if args.rate is None:
                capacity, capacity_feedbacks = asyncio.run(closed_loop(url, args.capacity_seconds, 16))
                rate = capacity * args.capacity_share
            else:
                rate = args.rate
            # The most requests the soak ever lets be in flight, once, before the baseline: the
            # memory a concurrency peak takes stays with the allocator for reuse (a high-water
            # mark, not a leak: bench/SOAK.md), so a stall during the soak must not read as growth.
            _, peak_feedbacks = asyncio.run(closed_loop(url, args.peak_seconds, MAX_IN_FLIGHT))
            print(
                f"capacity {capacity:.0f} req/s; soaking at {rate:.0f} req/s for {args.seconds:g} s",
                flush=True,
            )
            started = time.monotonic()
            tally, samples = asyncio.run(
                soak(
                    url,
                    server.pgid,
                    rate,
                    args.seconds,
                    args.feedback_share,
                    args.sample_every,
                    admin,
                    args.apply_every,
                )
            )
            seconds = time.monotonic() - started
            # Every acknowledged feedback counted once by the shared router state (two workers).
            tries = router_tries(admin)
            feedbacks = capacity_feedbacks + peak_feedbacks + tally.feedbacks
            if tries != feedbacks:
                tally.error("router state", f"{tries} trials counted for {feedbacks} acknowledged feedbacks")
        except BaseException:
            print(server.log_tail(), file=sys.stderr)
            raise
        finally:
            exit_code = server.stop(grace=15.0)  # reported: the server must exit cleanly on SIGTERM
    warmup = min(args.warmup, args.seconds * 0.2)
    baseline = baseline_index(samples, warmup)
    start, end = samples[baseline]["pss_mb"], samples[-1]["pss_mb"]
    growth = (end - start) / start * 100
    errors = sum(tally.errors.values()) + tally.skipped
    passed = errors == 0 and growth < args.max_growth
    result = {
        "tally": tally,
        "samples": samples,
        "baseline": baseline,
        "warmup": warmup,
        "capacity": capacity,
        "tries": tries,
        "feedbacks_total": feedbacks,
        "rate": rate,
        "seconds": seconds,
        "command": command.strip(),
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "exit_code": exit_code,
        "passed": passed,
    }
    args.out.write_text(report(args, result))
    print(
        f"{tally.total} requests ({tally.predictions} predictions, {tally.feedbacks} feedbacks)"
        f" in {seconds:.0f} s, {errors} errors; PSS {start:.1f} -> {end:.1f} MB ({growth:+.2f}%);"
        f" report in {args.out}"
    )
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
