"""Shared code of the benchmark scripts in bench/ (run_bench.py, soak.py, gateway_remote.py).

How it is imported: the drivers are run as scripts (``python bench/run_bench.py`` from the
repository root, or ``bash bench/run.sh``), and Python puts a script's own directory, bench/,
first on ``sys.path``; so ``from lib.processes import ...`` finds this package with nothing to
install or configure.  Modules inside the package import each other relatively (``from .config
import ...``), so they do not depend on that.

Modules, from the bottom up:

- ``config``: where things are (paths, venvs) and the run settings (durations, connections);
- ``processes``: free ports, process groups (start, readiness, stop), CPU and memory sampling;
- ``httpclient``: one-shot blocking HTTP calls for readiness checks;
- ``scenarios``: the servers under test, their launch commands and the requests they take;
- ``loadgen``: wrk, h2load, bench/grpc_load.py and bench/seq_latency.py, and their output parsers;
- ``measure``: one cell (cold start, warm-up, idle memory, measured load, retries) and the run plan;
- ``cells``: lookups and medians over the measured records of results.json;
- ``markdown``: number formatting and verdict rows shared by the report sections;
- ``report``: the peer comparison (tables, targets) and RESULTS.md as a whole;
- ``gateway_report``: the Gateway section of RESULTS.md;
- ``machine``: what a run was measured on (CPU, RAM, package versions, git commit).
"""
