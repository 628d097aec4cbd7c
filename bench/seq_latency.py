"""Sequential latency client: one keep-alive connection, one request at a time.

At one request in flight the latency of a request is the server's processing time plus
the loopback round trip (no queueing), which is what the gateway's per-hop costs are
computed from.  Each request is timed with `time.perf_counter_ns` (wrk -c1 gives the same
figure at microsecond resolution; this client is the cross-check, and its percentiles
come from every single request, not from a histogram).

    python bench/seq_latency.py --url http://127.0.0.1:9000/api/v1.0/predictions \
        --body-file body.json --duration 10 [--min-requests 2000]

Runs for --duration seconds and at least --min-requests requests, then prints one JSON
line: rps, p50/p90/p99/mean in ms, requests, errors (non-200 answers).
"""

from __future__ import annotations

import argparse
import http.client
import json
import statistics
import sys
import time
import urllib.parse


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--url", required=True)
    parser.add_argument("--body-file", required=True)
    parser.add_argument("--content-type", default="application/json")
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--min-requests", type=int, default=2000)
    args = parser.parse_args()

    url = urllib.parse.urlsplit(args.url)
    body = open(args.body_file, "rb").read()  # noqa: SIM115
    headers = {"Content-Type": args.content_type, "Content-Length": str(len(body))}
    connection = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
    path = url.path
    timings: list[int] = []
    errors = 0
    first_error = ""
    clock = time.perf_counter_ns
    started = clock()
    deadline = started + int(args.duration * 1e9)
    while True:
        t0 = clock()
        try:
            connection.request("POST", path, body, headers)
            answer = connection.getresponse()
            data = answer.read()
        except (OSError, http.client.HTTPException) as exc:
            errors += 1
            first_error = first_error or f"{type(exc).__name__}: {exc}"
            connection.close()
            connection = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
            if errors > 100:
                break
            continue
        t1 = clock()
        if answer.status != 200:
            errors += 1
            first_error = first_error or f"HTTP {answer.status}: {data[:200]!r}"
        else:
            timings.append(t1 - t0)
        if t1 >= deadline and len(timings) >= args.min_requests:
            break
    elapsed = (clock() - started) / 1e9
    connection.close()
    result: dict[str, object] = {"client": "seq", "requests": len(timings), "errors": errors}
    if first_error:
        result["first_error"] = first_error
    if timings:
        timings.sort()
        n = len(timings)

        def pct(q: float) -> float:
            return timings[min(n - 1, int(q * n))] / 1e6

        result.update(
            rps=n / elapsed,
            p50_ms=statistics.median(timings) / 1e6,
            p90_ms=pct(0.90),
            p99_ms=pct(0.99),
            mean_ms=statistics.fmean(timings) / 1e6,
        )
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
