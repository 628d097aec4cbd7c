"""Where the benchmark's files and venvs are, and the settings of a run."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

BENCH = Path(__file__).resolve().parent.parent
REPO = BENCH.parent
OUT = BENCH / "out"  # raw data, logs, request bodies, work directories (git-ignored)
MODELS = BENCH / "models"
MLSERVER_MODEL = BENCH / "mlserver_model"
OUR_VENV = REPO / ".venv"
SELDON_VENV = REPO / ".venv-compat"
MLSERVER_VENV = Path(os.environ.get("MLSERVER_VENV", "/tmp/mlsvenv"))


@dataclass
class Settings:
    """How long and how hard each cell is loaded; saved in results.json, so the report of an old
    run describes the settings it was measured with."""

    duration: float = 10.0
    warmup: float = 2.0
    connections: int = 16
    grpc_processes: int = 2
    grpc_channels: int = 8  # per client process: 16 connections, one call in flight each
    h2load_clients: int = 16  # connections, like wrk's 16
    h2load_streams: int = 1
    latency_connections: int = 1  # wrk-c1: one request in flight
    seq_min_requests: int = 2000  # seq_latency.py: at least this many timed requests
    idle_quiet_pct: float = 15.0  # machine busy % under which a cell may start
    max_idle_wait: float = 30.0  # ... or after waiting this long
    disturbed_pct: float = 15.0  # other processes' share of the machine that voids a cell
    retries: int = 2  # extra attempts for a disturbed cell
