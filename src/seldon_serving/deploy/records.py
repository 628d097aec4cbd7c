"""What the local control plane keeps in the state store, the way a cluster keeps objects.

- one record per deployment (`seldon.deployments`, key "<namespace>/<name>"): the manifest as
  applied, the directory it came from (where MODEL_NAME classes are found), a fingerprint of
  the code its classes load from there (`deploy.files.code_fingerprint`), a generation that
  grows with every change (of the manifest or of that code), and creation/update times;
- its status (`seldon.status`), written by the workers that compiled that generation;
- a change counter (`seldon.control`/"changes") bumped on every apply/delete/pause: each
  worker polls its version (one indexed SQLite read) and rebuilds only when it moved;
- the version each worker has caught up with (`seldon.workers`/"<server>/<pid>-<id>"), so an
  apply can return once every worker serves it.

Several servers may share one store (`--state-store redis://...`): deployments, their status
and the change counter are shared; what belongs to one server — its workers and whether it
is paused (a preStop hook pauses one replica, not all) — is kept under that server's name.
"""

from __future__ import annotations

import os
import secrets
import socket
import time
from dataclasses import dataclass
from typing import Any, Protocol

from seldon_serving.state.base import StateStore


class OAuthClients(Protocol):
    """The OAuth client registry (`servers.oauth.OAuthService`)."""

    def register(
        self, deployment: str, namespace: str, oauth_key: str | None, oauth_secret: str | None
    ) -> bool:
        """Store the client; True when the credentials changed."""
        ...

    def unregister(self, deployment: str, namespace: str) -> bool: ...


DEPLOYMENTS = "seldon.deployments"
STATUS = "seldon.status"
CONTROL = "seldon.control"
WORKERS = "seldon.workers"
CHANGES = "changes"
PAUSED = "paused"

CREATED, CONFIGURED, UNCHANGED = "created", "configured", "unchanged"
CODE_CHANGED = "configured (code changed)"  # the same manifest, but its class files were edited


@dataclass(slots=True)
class Record:
    namespace: str
    name: str
    manifest: dict[str, Any]
    base_dir: str | None
    generation: int
    created: float
    updated: float
    code: str | None = None  # fingerprint of its class files; None: it runs none of the user's code

    @property
    def key(self) -> str:
        return record_key(self.namespace, self.name)

    def to_json(self) -> dict[str, Any]:
        return {
            "namespace": self.namespace,
            "name": self.name,
            "manifest": self.manifest,
            "base_dir": self.base_dir,
            "generation": self.generation,
            "created": self.created,
            "updated": self.updated,
            "code": self.code,
        }

    @classmethod
    def from_json(cls, value: dict[str, Any]) -> Record:
        return cls(
            namespace=value["namespace"],
            name=value["name"],
            manifest=value["manifest"],
            base_dir=value.get("base_dir"),
            generation=int(value["generation"]),
            created=float(value["created"]),
            updated=float(value["updated"]),
            code=value.get("code"),
        )


def record_key(namespace: str, name: str) -> str:
    # Neither part can hold "/" (DNS labels), so the key is unambiguous.
    return f"{namespace}/{name}"


REDACTED = "<stored hashed>"


def _stored_manifest(manifest: dict[str, Any]) -> dict[str, Any]:
    # A status in what the user applied (e.g. `seldon get -o yaml` fed back) is ours to write.
    stored = {key: value for key, value in manifest.items() if key != "status"}
    spec = stored.get("spec")
    if isinstance(spec, dict) and spec.get("oauth_secret"):
        # The OAuth secret is kept only as a salted hash (in the OAuth client registry).
        stored["spec"] = {**spec, "oauth_secret": REDACTED}
    return stored


def oauth_credentials(manifest: dict[str, Any]) -> tuple[str, str]:
    spec = manifest.get("spec")
    if not isinstance(spec, dict):
        return "", ""
    return str(spec.get("oauth_key") or ""), str(spec.get("oauth_secret") or "")


class Records:
    """`oauth` is told every deployment's OAuth client credentials (registered on apply,
    removed on delete), so the token endpoint knows which secret opens which deployment."""

    def __init__(self, store: StateStore, oauth: OAuthClients, server: str = "local") -> None:
        self.store = store
        self.oauth = oauth
        self.server = server  # this server's name among those sharing the store (`server_id`)

    # --- change tracking ---------------------------------------------------------------------

    def version(self) -> int:
        """Grows with every apply, delete and pause: what the workers poll."""
        return self.store.version(CONTROL, CHANGES)

    def _changed(self) -> None:
        self.store.update(CONTROL, CHANGES, lambda n: (n or 0) + 1)

    # --- deployments ---------------------------------------------------------------------------

    def apply(
        self,
        namespace: str,
        name: str,
        manifest: dict[str, Any],
        base_dir: str | None,
        code: str | None = None,
        *,
        retry_failed: bool = True,
    ) -> tuple[str, Record]:
        """Store a manifest and the fingerprint of its class files (`code`): ("created" |
        "configured" | "configured (code changed)" | "unchanged", the record now stored).

        A deployment whose build failed is built again even if nothing changed (a retry: the
        user may have fixed something it needs), unless `retry_failed` is False (the reload
        watcher, which re-applies on every edit, retries only what changed)."""
        oauth_key, oauth_secret = oauth_credentials(manifest)
        if oauth_secret == REDACTED:  # `seldon get -o yaml` fed back: keep the registered secret
            credentials_changed = False
        else:
            credentials_changed = self.oauth.register(name, namespace, oauth_key, oauth_secret)
        manifest = _stored_manifest(manifest)
        outcome: list[str] = []
        now = time.time()
        # Re-applying a manifest that failed is a retry (the user may have fixed a file it needs).
        failed = retry_failed and (self.status(namespace, name) or {}).get("state") == "Failed"

        def write(current: Any) -> Any:
            outcome.clear()  # an updater may be retried; only its last run counts
            if current is None:
                outcome.append(CREATED)
                return Record(namespace, name, manifest, base_dir, 1, now, now, code).to_json()
            same = current["manifest"] == manifest and current.get("base_dir") == base_dir
            # A record stored before fingerprints were kept has none: nothing to compare with.
            same_code = current.get("code", code) == code
            if same and same_code and not failed and not credentials_changed:
                outcome.append(UNCHANGED)
                return current
            outcome.append(CONFIGURED if not same or same_code else CODE_CHANGED)
            record = Record.from_json(current)
            record.manifest, record.base_dir, record.code = manifest, base_dir, code
            record.generation += 1
            record.updated = now
            return record.to_json()

        stored = Record.from_json(self.store.update(DEPLOYMENTS, record_key(namespace, name), write))
        if outcome[0] != UNCHANGED:
            self.set_status(stored, {"state": "Creating", "description": "", "predictorStatus": []})
            self._changed()
        return outcome[0], stored

    def delete(self, namespace: str, name: str) -> bool:
        key = record_key(namespace, name)
        self.oauth.unregister(name, namespace)
        existed = self.store.delete(DEPLOYMENTS, key)
        self.store.delete(STATUS, key)
        if existed:
            self._changed()
        return existed

    def get(self, namespace: str, name: str) -> Record | None:
        value = self.store.get(DEPLOYMENTS, record_key(namespace, name))
        return None if value is None else Record.from_json(value)

    def all(self) -> list[Record]:
        records = [Record.from_json(v) for v in self.store.items(DEPLOYMENTS).values()]
        return sorted(records, key=lambda r: (r.namespace, r.name))

    # --- status --------------------------------------------------------------------------------

    def status(self, namespace: str, name: str) -> dict[str, Any] | None:
        value = self.store.get(STATUS, record_key(namespace, name))
        if value is None:
            return None
        return {k: v for k, v in value.items() if k != "generation"}

    def set_status(self, record: Record, status: dict[str, Any]) -> None:
        """Write the status of `record`'s generation, unless a newer generation's is there already."""

        def write(current: Any) -> Any:
            if current is not None and current.get("generation", 0) > record.generation:
                return current
            return {**status, "generation": record.generation}

        self.store.update(STATUS, record.key, write)

    # --- pause (for every worker of this server at once) ----------------------------------------

    def paused(self) -> bool:
        return bool(self.store.get(CONTROL, f"{PAUSED}/{self.server}"))

    def set_paused(self, paused: bool) -> None:
        if self.paused() != paused:
            self.store.put(CONTROL, f"{PAUSED}/{self.server}", paused)
            self._changed()

    # --- workers ----------------------------------------------------------------------------------

    def report(self, worker: str, version: int) -> None:
        """Worker `worker` (see `worker_id`) serves everything up to `version`."""
        self.store.put(WORKERS, f"{self.server}/{worker}", version)

    def forget_worker(self, worker: str) -> None:
        self.store.delete(WORKERS, f"{self.server}/{worker}")

    def _own_workers(self) -> dict[str, Any]:
        prefix = f"{self.server}/"
        return {
            k.removeprefix(prefix): v for k, v in self.store.items(WORKERS).items() if k.startswith(prefix)
        }

    def live_workers(self) -> dict[str, int]:
        """worker -> the version it caught up with, for this server's workers still alive (dead
        ones are dropped; their process ids mean something on this machine only)."""
        out: dict[str, int] = {}
        for worker, version in self._own_workers().items():
            if _alive(int(worker.split("-", 1)[0])):
                out[worker] = int(version)
            else:
                self.forget_worker(worker)
        return out

    def reset_runtime(self) -> None:
        """This server starts: none of its workers has reported yet, and it is not paused."""
        for worker in self._own_workers():
            self.forget_worker(worker)
        if self.paused():
            self.store.put(CONTROL, f"{PAUSED}/{self.server}", False)


def server_id() -> str:
    """A name for one server (its parent process, before the workers fork) among the servers
    sharing a store: host and process id, unique while it runs."""
    return f"{socket.gethostname()}-{os.getpid()}"


def worker_id() -> str:
    """A name for one control plane: its process id (to spot dead workers) and a random part."""
    return f"{os.getpid()}-{secrets.token_hex(4)}"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
