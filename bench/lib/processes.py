"""Processes under test: free ports, process groups (start, readiness, stop), CPU and memory.

Every server runs in its own process group (a new session), so that its workers, the
components it forks and anything they start are measured, and stopped, as one: CPU and
memory are summed over the group, and stopping it leaves nothing behind.  Linux only
(/proc).  Standard library only: bench/gateway_remote.py imports this module before it
execs the gateway, inside a measured cold start.
"""

from __future__ import annotations

import contextlib
import os
import re
import resource
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

CLK_TCK = os.sysconf("SC_CLK_TCK")


def free_ports(count: int, taken: set[int] | frozenset[int] = frozenset()) -> list[int]:
    """`count` distinct TCP ports free on 127.0.0.1 right now, none of them in `taken`.

    The kernel may hand out a port again once its socket is closed, so distinctness is
    checked here rather than assumed."""
    ports: list[int] = []
    while len(ports) < count:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port not in taken and port not in ports:
            ports.append(port)
    return ports


def _proc_stat(pid: int | str) -> list[str] | None:
    """Fields 3 (state) and on of /proc/<pid>/stat; None when the process is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: the fields after it
    # follow the last ')'.
    return text[text.rindex(")") + 2 :].split()


def group_pids(pgid: int, zombies: bool = False) -> list[int]:
    """Processes of the group, sorted.  Zombies are dead (nothing to stop, no memory) and
    only left out of the count of what is still running; their CPU time still counts."""
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = _proc_stat(entry)
            if fields is not None and int(fields[2]) == pgid and (zombies or fields[0] != "Z"):
                pids.append(int(entry))
    return sorted(pids)


def group_cpu_seconds(pgid: int) -> float:
    """User + system CPU time used so far by the processes of the group."""
    total = 0
    for pid in group_pids(pgid, zombies=True):
        fields = _proc_stat(pid)
        if fields is not None:
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / CLK_TCK


def machine_busy_seconds() -> float:
    """CPU seconds spent busy by the whole machine so far (all cores)."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = values[:8]
    return (user + nice + system + irq + softirq + steal) / CLK_TCK


def children_cpu_seconds() -> float:
    """CPU time of this process's waited-for children (the load generators run that way)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def group_memory(pgid: int) -> dict[str, Any]:
    """RSS and PSS (MB) of every process of the group, from smaps_rollup.

    PSS is the fair figure for forked trees: pages shared by N processes count 1/N in each."""
    processes = []
    for pid in group_pids(pgid):
        values = {}
        try:
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                name, _, rest = line.partition(":")
                if name in ("Rss", "Pss", "Pss_Anon"):
                    values[name.lower()] = int(rest.split()[0]) / 1024.0
        except OSError:
            continue
        if values:
            processes.append({"pid": pid, **values})
    return {
        "rss_mb": sum(p.get("rss", 0.0) for p in processes),
        "pss_mb": sum(p.get("pss", 0.0) for p in processes),
        # The anonymous part alone: what the server allocated, not moved by other processes
        # mapping the same library files (which shifts PSS by a few MB on a busy machine).
        "pss_anon_mb": sum(p.get("pss_anon", 0.0) for p in processes),
        "max_process_rss_mb": max((p.get("rss", 0.0) for p in processes), default=0.0),
        "processes": len(processes),
        "per_process": processes,
    }


def connections_per_process(pgid: int, port: int) -> list[int]:
    """Established TCP connections on `port` held by each process of the group (balance check)."""
    inodes: dict[str, int] = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                parts = line.split()
                local_port = int(parts[1].rsplit(":", 1)[1], 16)
                if local_port == port and parts[3] == "01":  # 01 = ESTABLISHED
                    inodes[parts[9]] = 0
    counts = []
    for pid in group_pids(pgid):
        seen = 0
        with contextlib.suppress(OSError):
            for fd in os.listdir(f"/proc/{pid}/fd"):
                with contextlib.suppress(OSError):
                    target = os.readlink(f"/proc/{pid}/fd/{fd}")
                    if target.startswith("socket:[") and target[8:-1] in inodes:
                        seen += 1
        if seen:
            counts.append(seen)
    return sorted(counts, reverse=True)


class StartFailed(Exception):
    """The process exited, or never passed its readiness check."""


class ProcessGroup:
    """A command in its own process group (a new session), its output in a log file.  Whoever
    starts it must call stop() in all cases (finally / __exit__): that ends the whole group."""

    def __init__(
        self, argv: list[str], log_path: Path, cwd: Path | None = None, env: dict[str, str] | None = None
    ) -> None:
        self.argv = argv
        self.log_path = log_path
        self.cwd = cwd
        self.env = env or {}
        self.proc: subprocess.Popen[bytes] | None = None
        self.started = 0.0  # perf_counter() just before Popen: the origin of the cold start

    def start(self) -> None:
        env = {**os.environ, **self.env}
        # Each server runs its own venv's executables by absolute path; a VIRTUAL_ENV inherited
        # from the runner's venv would only mislead them.
        env.pop("VIRTUAL_ENV", None)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "wb") as log:
            self.started = time.perf_counter()
            self.proc = subprocess.Popen(
                self.argv,
                cwd=self.cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    @property
    def pgid(self) -> int:
        assert self.proc is not None
        return self.proc.pid  # start_new_session: the leader's pid is the group id

    def exited(self) -> bool:
        return self.proc is not None and self.proc.poll() is not None

    def wait_ready(self, probe: Callable[[], str | None], timeout: float, interval: float) -> float:
        """Call `probe` (None: ready; else why not) every `interval` s until it passes; return the
        seconds since the launch.  StartFailed when the process exits or `timeout` s pass."""
        assert self.proc is not None
        last = "no answer"
        while True:
            if self.proc.poll() is not None:
                raise StartFailed(f"exited with code {self.proc.returncode}: {self.log_reason()}")
            problem = probe()
            if problem is None:
                return time.perf_counter() - self.started
            last = problem
            if time.perf_counter() - self.started > timeout:
                raise StartFailed(
                    f"no correct answer within {timeout:.0f} s (last: {last}); log: {self.log_reason()}"
                )
            time.sleep(interval)

    def log_reason(self) -> str:
        """The most telling line of the log (last error or last line)."""
        with contextlib.suppress(OSError):
            lines = [line.strip() for line in self.log_path.read_text(errors="replace").splitlines()]
            lines = [line for line in lines if line]
            errors = [line for line in lines if re.search(r"(Error|Exception|error:)", line)]
            if errors:
                return errors[-1][:300]
            if lines:
                return lines[-1][:300]
        return "empty log"

    def log_tail(self, chars: int = 2000) -> str:
        with contextlib.suppress(OSError):
            return self.log_path.read_text(errors="replace")[-chars:]
        return ""

    def stop(self, grace: float = 5.0) -> int | None:
        """SIGTERM the group, give it `grace` s to exit, SIGKILL what is left.  Returns the leader's
        exit code when it exited within the grace period, else None.  Safe to call twice."""
        if self.proc is None:
            return None
        proc, pgid = self.proc, self.proc.pid
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        # poll() reaps the leader; its children may outlive it a little (workers shutting down).
        while time.monotonic() < deadline and (proc.poll() is None or group_pids(pgid)):
            time.sleep(0.05)
        code = proc.poll()
        deadline = time.monotonic() + 5.0
        while group_pids(pgid) and time.monotonic() < deadline:  # also reparented grandchildren
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, signal.SIGKILL)
            time.sleep(0.05)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=5.0)
        self.proc = None
        return code
