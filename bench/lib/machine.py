"""What a run was measured on: CPU, RAM, kernel, the versions of every stack, the git commit."""

from __future__ import annotations

import datetime as dt
import os
import platform
import re
import subprocess
from pathlib import Path
from typing import Any

from .config import MLSERVER_VENV, OUR_VENV, REPO, SELDON_VENV


def _run(command: list[str]) -> str:
    """First line of a command's output, or why there is none."""
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError) as exc:
        return f"unavailable ({exc})"
    text = (done.stdout or done.stderr).strip()
    return text.splitlines()[0] if text else "unavailable"


def _package_versions(python: Path, names: list[str]) -> str:
    """Python and package versions as the interpreter of a venv sees them."""
    code = (
        "import importlib.metadata as m, sys\n"
        "out = []\n"
        f"for n in {names!r}:\n"
        "    try: out.append(n + ' ' + m.version(n))\n"
        "    except Exception: out.append(n + ' missing')\n"
        "print(sys.version.split()[0] + '; ' + ', '.join(out))\n"
    )
    return _run([str(python), "-c", code]) if python.exists() else "not installed"


def metadata(quick: bool, repeat: int) -> dict[str, Any]:
    """The "meta" of results.json (without command, json and elapsed_s, which the runner adds)."""
    meminfo = Path("/proc/meminfo").read_text()
    ram_kb = int(re.search(r"MemTotal:\s+(\d+)", meminfo).group(1))  # type: ignore[union-attr]
    model = re.search(r"model name\s*:\s*(.+)", Path("/proc/cpuinfo").read_text())
    cpu_model = model.group(1).strip() if model else platform.processor()
    lscpu = _run(["sh", "-c", "lscpu | grep -m1 'Model name'"])
    if lscpu and "unavailable" not in lscpu:
        cpu_model = lscpu.split(":", 1)[-1].strip() or cpu_model
    git = _run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"])
    if not re.fullmatch(r"[0-9a-f]{4,40}", git):
        git = "no commit yet (working tree)"
    elif _run(["git", "-C", str(REPO), "status", "--porcelain", "--", "src"]) not in ("", "unavailable"):
        git += " + uncommitted changes in src/"
    ours = ["seldon-serving", "uvicorn", "uvloop", "httptools", "orjson", "grpcio", "protobuf", "numpy"]
    return {
        "date": dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
        "quick": quick,
        "repeat": repeat,
        "machine": {
            "nproc": len(os.sched_getaffinity(0)),
            "cpu_model": cpu_model,
            "ram_gb": ram_kb / 1024 / 1024,
            "kernel": platform.release(),
        },
        "versions": {
            "Seldon Serving (ours)": f"{_package_versions(OUR_VENV / 'bin' / 'python', ours)}; git {git}",
            "seldon-core": _package_versions(
                SELDON_VENV / "bin" / "python", ["seldon-core", "flask", "gunicorn", "grpcio", "numpy"]
            ),
            "MLServer": _package_versions(
                MLSERVER_VENV / "bin" / "python",
                ["mlserver", "uvicorn", "uvloop", "fastapi", "grpcio", "numpy"],
            ),
            "wrk": _run(["sh", "-c", "wrk -v 2>&1 | head -1"]),
            "h2load": _run(["h2load", "--version"]),
        },
    }
