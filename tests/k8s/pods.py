"""Pods as processes: runs the Deployments that `render` produces as local processes, with
only the substitutions a machine without a cluster forces:

- our runtime image -> the installed `seldon` command (any other image cannot run here);
- Service DNS names (`<svc>.<ns>.svc.cluster.local.`, `<svc>.<ns>`, `<svc>`) -> 127.0.0.1, at
  the port of the pod the Service selects; `localhost` stays the pod's own processes;
- every port a pod uses -> a free port of its own (pods share this machine's ports), also
  inside ENGINE_PREDICTOR (base64 JSON) and in the install's Redis URL;
- volumes -> directories: a PersistentVolumeClaim is the directory the test gives for that
  claim, an emptyDir a fresh directory of the pod; each container sees its mounts in a
  directory tree of its own, and every path in its command and env that lies in that tree
  (`/mnt/pvc/...`, `/mnt/models`) is rewritten to it.  The downward-API volume is not made.

Everything else — command, args, env, probes — is taken as rendered, so a wrong port, a
missing variable or an engine predictor pointing nowhere fails the test as it would fail a pod.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from tests.helpers import free_port, seldon_bin, stop

CLUSTER_SUFFIX = ".svc.cluster.local"


@dataclass
class Pod:
    deployment: str
    replica: int
    labels: dict[str, str]
    containers: list[dict[str, Any]]
    volumes: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> its source
    ports: dict[int, int] = field(default_factory=dict)  # containerPort -> this machine's port
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    logs: dict[str, Path] = field(default_factory=dict)

    def port(self, port: int) -> int:
        if port not in self.ports:
            self.ports[port] = free_port()
        return self.ports[port]


class ProcessCluster:
    """The Deployments and Services among `objects`, run as processes; `with` stops them all."""

    def __init__(
        self,
        objects: list[dict[str, Any]],
        *,
        runtime_image: str,
        redis_url: str | None = None,
        workdir: Path | None = None,
        claims: dict[str, Path] | None = None,
    ) -> None:
        self.objects = objects
        self.runtime_image = runtime_image
        self.redis_url = redis_url
        self.claims = claims or {}  # PersistentVolumeClaim name -> the directory standing for it
        self.workdir = workdir or Path(tempfile.mkdtemp(prefix="seldon-pods-"))
        self.services = {o["metadata"]["name"]: o for o in objects if o["kind"] == "Service"}
        self.pods: list[Pod] = []
        for deployment in (o for o in objects if o["kind"] == "Deployment"):
            template = deployment["spec"]["template"]
            for replica in range(int(deployment["spec"].get("replicas", 1))):
                pod = Pod(
                    deployment["metadata"]["name"],
                    replica,
                    dict(template["metadata"].get("labels") or {}),
                    template["spec"]["containers"],
                    {v["name"]: v for v in template["spec"].get("volumes") or []},
                )
                self.pods.append(pod)

    # --- cluster DNS ---------------------------------------------------------------------------

    def service_address(self, host: str, port: int) -> tuple[str, int]:
        """Where `host:port` (a Service's DNS name) reaches: the first pod its selector picks."""
        name = host.rstrip(".").removesuffix(CLUSTER_SUFFIX).split(".")[0]
        service = self.services.get(name)
        if service is None:
            raise LookupError(f"no Service {name!r} (from {host})")
        target = next(
            (p.get("targetPort", p["port"]) for p in service["spec"]["ports"] if p["port"] == port), None
        )
        if target is None:
            raise LookupError(f"Service {name} has no port {port}")
        selector = service["spec"]["selector"]
        for pod in self.pods:
            if all(pod.labels.get(k) == v for k, v in selector.items()):
                return "127.0.0.1", pod.port(int(target))
        raise LookupError(f"Service {name} selects no pod ({selector})")

    def resolve(self, service: str) -> tuple[str, int]:
        """An Ambassador Mapping's `service: <svc>.<ns>:<port>`."""
        host, _, port = service.rpartition(":")
        return self.service_address(host, int(port))

    # --- one container -------------------------------------------------------------------------

    def _endpoint(self, pod: Pod, endpoint: dict[str, Any]) -> dict[str, Any]:
        host, port = endpoint["service_host"], int(endpoint["service_port"])
        if host == "localhost":
            return {**endpoint, "service_host": "127.0.0.1", "service_port": pod.port(port)}
        address, mapped = self.service_address(host, port)
        return {**endpoint, "service_host": address, "service_port": mapped}

    def _predictor(self, pod: Pod, encoded: str) -> str:
        predictor = json.loads(base64.b64decode(encoded))

        def walk(unit: dict[str, Any]) -> None:
            if (unit.get("endpoint") or {}).get("service_host"):
                unit["endpoint"] = self._endpoint(pod, unit["endpoint"])
            for child in unit.get("children") or []:
                walk(child)

        walk(predictor["graph"])
        return base64.b64encode(json.dumps(predictor).encode()).decode()

    def _store(self, url: str) -> str:
        if self.redis_url is None:
            raise LookupError(f"{url}: this test runs no Redis")
        parts = urlsplit(url)
        if not parts.hostname or not parts.hostname.split(".")[0].endswith("-redis"):
            raise LookupError(f"unexpected state store {url}")
        return self.redis_url

    def environment(self, pod: Pod, container: dict[str, Any]) -> dict[str, str]:
        env: dict[str, str] = {}
        for entry in container.get("env") or []:
            if "value" not in entry:
                raise AssertionError(f"{container['name']}: env {entry['name']} has no value: {entry}")
            name, value = entry["name"], str(entry["value"])
            if name.endswith("_PORT") and value.isdigit():
                value = str(pod.port(int(value)))
            elif name == "ENGINE_PREDICTOR":
                value = self._predictor(pod, value)
            elif value.startswith("redis://"):
                value = self._store(value)
            env[name] = value
        return env

    def command(self, container: dict[str, Any]) -> list[str]:
        if container.get("image") != self.runtime_image:
            raise AssertionError(f"{container['name']}: image {container.get('image')} cannot run here")
        argv = [*(container.get("command") or []), *(container.get("args") or [])]
        if not argv or argv[0] != "seldon":
            raise AssertionError(f"{container['name']}: expected a `seldon ...` command, got {argv}")
        return [seldon_bin(), *argv[1:]]

    # --- volumes -------------------------------------------------------------------------------

    def _volume_dir(self, pod: Pod, name: str) -> Path | None:
        """Where a pod's volume is on this machine (None: the downward API, not made here)."""
        volume = pod.volumes.get(name)
        if volume is None:
            raise AssertionError(
                f"{pod.deployment}: a container mounts {name}, which the pod does not declare"
            )
        if "persistentVolumeClaim" in volume:
            claim = volume["persistentVolumeClaim"]["claimName"]
            if claim not in self.claims:
                raise AssertionError(f"{pod.deployment}: claim {claim} was not given to this test")
            return self.claims[claim]
        if "emptyDir" in volume:
            path = self.workdir / f"{pod.deployment}-{pod.replica}-volumes" / name
            path.mkdir(parents=True, exist_ok=True)
            return path
        if "downwardAPI" in volume:
            return None
        raise AssertionError(f"{pod.deployment}: volume {name} cannot be made here: {volume}")

    def filesystem(self, pod: Pod, container: dict[str, Any]) -> Path:
        """The container's mounts, as symlinks in a directory tree of its own (its "/")."""
        root = self.workdir / f"{pod.deployment}-{pod.replica}-{container['name']}" / "fs"
        for mount in container.get("volumeMounts") or []:
            source = self._volume_dir(pod, mount["name"])
            if source is None:
                continue
            target = root / mount["mountPath"].lstrip("/")
            target.parent.mkdir(parents=True, exist_ok=True)
            if not target.is_symlink():
                target.symlink_to(source, target_is_directory=True)
        return root

    @staticmethod
    def in_filesystem(root: Path, value: str) -> str:
        """An absolute path that lies in the container's tree, as this machine reaches it."""
        if value.startswith("/") and (root / value.lstrip("/")).exists():
            return str(root / value.lstrip("/"))
        return value

    # --- probes --------------------------------------------------------------------------------

    def _probe_ok(self, pod: Pod, probe: dict[str, Any]) -> bool:
        if "tcpSocket" in probe:
            with contextlib.suppress(OSError):
                import socket

                with socket.create_connection(("127.0.0.1", pod.port(int(probe["tcpSocket"]["port"]))), 0.5):
                    return True
            return False
        if "httpGet" in probe:
            get = probe["httpGet"]
            with contextlib.suppress(httpx.HTTPError):
                url = f"http://127.0.0.1:{pod.port(int(get['port']))}{get.get('path', '/')}"
                return 200 <= httpx.get(url, timeout=1.0).status_code < 400
            return False
        raise AssertionError(f"unsupported probe {probe}")

    def wait_ready(self, timeout: float = 30.0) -> None:
        """Until every container's readinessProbe passes (as the kubelet would admit the pod)."""
        deadline = time.monotonic() + timeout
        for pod in self.pods:
            for container in pod.containers:
                probe = container.get("readinessProbe")
                if probe is None:
                    continue
                while not self._probe_ok(pod, probe):
                    process = pod.processes[container["name"]]
                    if process.poll() is not None:
                        raise RuntimeError(
                            f"{pod.deployment}/{container['name']} exited: {self.log(pod, container)}"
                        )
                    if time.monotonic() > deadline:
                        raise TimeoutError(
                            f"{pod.deployment}/{container['name']} not ready: {self.log(pod, container)}"
                        )
                    time.sleep(0.1)

    def live(self) -> list[str]:
        """Containers whose livenessProbe fails (a kubelet would restart them)."""
        return [
            f"{pod.deployment}/{c['name']}"
            for pod in self.pods
            for c in pod.containers
            if c.get("livenessProbe") and not self._probe_ok(pod, c["livenessProbe"])
        ]

    def log(self, pod: Pod, container: dict[str, Any]) -> str:
        path = pod.logs.get(container["name"])
        return path.read_text(errors="replace")[-3000:] if path and path.exists() else ""

    # --- lifecycle -----------------------------------------------------------------------------

    def start(self) -> None:
        for pod in self.pods:
            for container in pod.containers:
                root = self.filesystem(pod, container)
                own = {k: self.in_filesystem(root, v) for k, v in self.environment(pod, container).items()}
                env = {**os.environ, **own}
                argv = [self.in_filesystem(root, arg) for arg in self.command(container)]
                workdir = self.workdir / f"{pod.deployment}-{pod.replica}-{container['name']}"
                workdir.mkdir(parents=True, exist_ok=True)
                log = workdir / "log"
                with log.open("wb") as out:
                    pod.processes[container["name"]] = subprocess.Popen(
                        argv,
                        cwd=workdir,
                        env=env,
                        stdout=out,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,
                    )
                pod.logs[container["name"]] = log

    def stop(self) -> None:
        for pod in self.pods:
            for process in pod.processes.values():
                stop(process)

    def __enter__(self) -> ProcessCluster:
        try:
            self.start()
            self.wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
