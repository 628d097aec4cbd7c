"""`seldon serve --reload`: the development loop.  The manifests named on the command line, and
the code their classes run (`deploy.files`: the *.py files of each manifest's directory and
of its packages), are watched; on a change they are read again and re-applied like at
start-up, and the workers swap graphs as for any apply (in-flight requests finish on the old
graph).

- One burst of changes (an editor's save, a `git checkout`) is one re-apply: changes are
  gathered until none came for `QUIET_MS` (at most `DEBOUNCE_MS`).
- Every manifest is re-applied; only what changed prints a line (`seldondeployment/NAME
  configured (code changed)`), since an unchanged manifest with unchanged code is a no-op.
- A manifest that became invalid, a class that cannot be found, or a code file with a syntax
  error is refused before anything rebuilds, as `seldon apply` refuses a bad manifest: the
  running version keeps answering, and the log says why in one sentence.  (Code that fails
  only when it runs, at import or in load(), fails the rebuild like any apply does.)
- A manifest file removed from a watched directory (or a deployment removed from a watched
  file) deletes its deployments: the watched files say what runs.  A path given on the
  command line that vanished (an editor replacing a file) deletes nothing.
- Deployments applied with `seldon apply` from elsewhere are neither watched nor deleted.

The watcher is a process of its own, forked by the gateway's parent before any worker, so it
shares no event loop, thread or gRPC object with them; it writes to the records, which every
worker polls.  It stops with the gateway (and by itself if the gateway's parent is gone).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn, TextIO

import watchfiles

from seldon_serving.components.loader import code_files
from seldon_serving.deploy.files import MANIFEST_SUFFIXES, Manifest, check_code, collect
from seldon_serving.deploy.records import UNCHANGED, Records
from seldon_serving.engine.plan import check_classes
from seldon_serving.engine.plane import DEFAULT_NAMESPACE
from seldon_serving.servers.oauth import OAuthService
from seldon_serving.spec import ManifestError, parse_deployment
from seldon_serving.state import open_store

log = logging.getLogger("seldon_serving.reload")

QUIET_MS = 150  # a burst of changes ends after this long without another one
DEBOUNCE_MS = 1600  # ... or after this long in all
TICK_MS = 1000  # how often the watcher looks up from waiting (stop asked, gateway gone)
WATCHED_SUFFIXES = frozenset({".py", *MANIFEST_SUFFIXES})

Key = tuple[str, str]  # (namespace, name)
# given path -> manifest file -> its deployments -> the directory of the code they run (None: none)
Sources = dict[str, dict[str, dict[Key, str | None]]]


def _manifest_files(given: str) -> list[Path] | None:
    """The manifest files a command-line path stands for now (as `files.manifest_files` lists
    them at start-up, an emptied directory included); None when the path is gone."""
    path = Path(given)
    if path.is_dir():
        return sorted(p for p in path.iterdir() if p.is_file() and p.suffix in MANIFEST_SUFFIXES)
    return [path] if path.is_file() else None


def _relevant(change: watchfiles.Change, path: str) -> bool:
    """Manifests, code, and directories (a new package); not editors' backups, hidden files or
    bytecode (which the workers write themselves when they import)."""
    name = os.path.basename(path)
    if name.startswith(".") or name.endswith("~") or name == "__pycache__":
        return False
    suffix = os.path.splitext(name)[1]
    return suffix in WATCHED_SUFFIXES or not suffix


class Reloader:
    """Re-applies the manifests of `paths` to `records`; `started` are those stored at start-up."""

    def __init__(
        self, paths: Sequence[str], records: Records, started: Sequence[Manifest], out: TextIO | None = None
    ) -> None:
        self.paths = list(paths)
        self.records = records
        self.out = out
        self.sources: Sources = {given: {} for given in self.paths}
        listed = {given: {str(p) for p in _manifest_files(given) or []} for given in self.paths}
        for item in started:
            given = next((g for g in self.paths if item.source in listed[g]), None)
            if given is not None:
                self.sources[given].setdefault(item.source, {})[_key(item)] = _code_dir(item)

    # --- one re-apply ------------------------------------------------------------------------------

    def reconcile(self) -> list[str]:
        """Read every watched manifest again and apply it: a line for each deployment that changed."""
        lines: list[str] = []
        now: Sources = {}
        for given in self.paths:
            files = _manifest_files(given)
            if files is None:
                log.error("%s: no such file or directory; its deployments stay as they are", given)
                now[given] = self.sources.get(given, {})
                continue
            now[given] = {}
            for file in files:
                source = str(file)
                try:
                    manifests = _read(source)
                except ManifestError as exc:
                    log.error("%s; not applied, the running version stays", exc)
                    now[given][source] = self.sources.get(given, {}).get(source, {})
                    continue
                held = now[given][source] = {}
                for item in manifests:
                    key = _key(item)
                    held[key] = _code_dir(item)
                    outcome, _ = self.records.apply(
                        *key, item.manifest, item.base_dir, item.code(), retry_failed=False
                    )
                    if outcome != UNCHANGED:
                        lines.append(f"seldondeployment/{item.name} {outcome}")
        before = {key for files in self.sources.values() for held in files.values() for key in held}
        after = {key for files in now.values() for held in files.values() for key in held}
        for namespace, name in sorted(before - after):
            if self.records.delete(namespace, name):
                lines.append(f"seldondeployment/{name} deleted")
        self.sources = now
        return lines

    def report(self, lines: list[str]) -> None:
        out = self.out or sys.stderr
        for line in lines:
            print(line, file=out, flush=True)

    # --- watching ----------------------------------------------------------------------------------

    def targets(self) -> set[Path]:
        """The directories to watch (each by itself, not recursively: a project directory may
        hold a virtualenv): those of the manifests, and each code directory with its packages."""
        found: set[Path] = set()
        for given in self.paths:
            path = Path(given).absolute()
            found.add(path if path.is_dir() else path.parent)
        code_dirs = {d for files in self.sources.values() for held in files.values() for d in held.values()}
        for directory in code_dirs:
            if directory is not None:
                found.add(Path(directory))
                found.update(path.parent for path in code_files(directory))
        return {path for path in found if path.is_dir()}

    def run(self, stop: threading.Event, parent: int) -> None:
        """Watch and re-apply until `stop` is set or process `parent` (the gateway) is gone."""
        while not stop.is_set() and os.getppid() == parent:
            targets = self.targets()
            if not targets:  # everything watched was removed: look again later
                stop.wait(TICK_MS / 1000)
                continue
            try:
                self._watch(targets, stop, parent)
            except Exception as exc:  # a watched directory removed under the watcher, the store down
                log.warning("reloading: %s: %s; trying again", type(exc).__name__, exc)
                stop.wait(TICK_MS / 1000)

    def _watch(self, targets: set[Path], stop: threading.Event, parent: int) -> None:
        first = True
        for changes in watchfiles.watch(
            *sorted(targets),
            watch_filter=_relevant,
            debounce=DEBOUNCE_MS,
            step=QUIET_MS,
            stop_event=stop,
            rust_timeout=TICK_MS,
            yield_on_timeout=True,
            recursive=False,
            raise_interrupt=False,
            ignore_permission_denied=True,
        ):
            if os.getppid() != parent:
                return
            if not changes and not first:
                continue
            # The first pass (once the watch is in place) catches what changed before it was.
            first = False
            self.report(self.reconcile())
            if self.targets() != targets:  # a new package or code directory: watch it too
                return


def _key(item: Manifest) -> Key:
    return (item.namespace or DEFAULT_NAMESPACE, item.name)


def _code_dir(item: Manifest) -> str | None:
    return item.base_dir if item.classes else None


def _read(source: str) -> list[Manifest]:
    """The deployments of one manifest file, refused (ManifestError) as a whole if any of them
    is invalid, names a class that is not there, or runs code with a syntax error."""
    manifests = collect([source]).manifests
    for item in manifests:
        if item.classes:
            check_code(item.base_dir, source=source)
            check_classes(parse_deployment(item.manifest, source=source), Path(item.base_dir))
    return manifests


# --- the watcher process ---------------------------------------------------------------------------


@dataclass(slots=True)
class Watcher:
    """The watcher process, as its parent sees it."""

    pid: int

    def stop(self, timeout: float = 5.0) -> None:
        """Stop it (SIGTERM, then SIGKILL) and reap it."""
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while True:
            try:
                done, _ = os.waitpid(self.pid, os.WNOHANG)
            except ChildProcessError:  # reaped already (the workers' supervisor waits for any child)
                return
            if done:
                return
            if time.monotonic() > deadline:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(self.pid, signal.SIGKILL)
                with contextlib.suppress(ChildProcessError):
                    os.waitpid(self.pid, 0)
                return
            time.sleep(0.02)


def start_watcher(
    paths: Sequence[str],
    started: Sequence[Manifest],
    store_target: str | Path,
    server_name: str,
    inherited: Sequence[Any] = (),
) -> Watcher:
    """Fork the watcher process.  `inherited` are open files of the parent the watcher must
    not keep (the ports' locks: they must go when the gateway goes)."""
    for stream in (sys.stdout, sys.stderr):  # or the child would print the parent's buffered text too
        stream.flush()
    parent = os.getpid()
    pid = os.fork()
    if pid == 0:
        _watcher_main(paths, started, store_target, server_name, inherited, parent)
    return Watcher(pid)


def _watcher_main(
    paths: Sequence[str],
    started: Sequence[Manifest],
    store_target: str | Path,
    server_name: str,
    inherited: Sequence[Any],
    parent: int,
) -> NoReturn:
    code = 0
    try:
        for handle in inherited:
            handle.close()
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda signum, frame: stop.set())
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C stops the gateway, which stops us
        logging.getLogger("watchfiles").setLevel(logging.WARNING)  # our own lines say what changed
        store = open_store(store_target)
        try:
            records = Records(store, OAuthService(store), server_name)
            Reloader(paths, records, started).run(stop, parent)
        finally:
            store.close()
    except BaseException:
        log.exception("the reload watcher failed")
        code = 1
    finally:
        os._exit(code)  # never back into the parent's code (its finally blocks are the parent's)
