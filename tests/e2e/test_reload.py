"""The development loop against real `seldon serve` processes: an edited class file reaches the
running gateway through `seldon apply` (`configured (code changed)`) and through `--reload`,
with every worker answering the new code and no request failing while the graphs swap."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.deploy.gateway import deployment, unit, write
from tests.helpers import Gateway, gateway, wait_until

pytestmark = pytest.mark.slow

X = {"data": {"ndarray": [[1.0]]}}


def model_source(value: float) -> str:
    return (
        "class Model:\n"
        "    def __init__(self, offset=0.0):\n"
        "        self.offset = float(offset)\n"
        "    def predict(self, X, names=None):\n"
        f"        return [[{value} + self.offset]]\n"
    )


def manifest(offset: float = 0.0) -> dict[str, object]:
    return deployment("dev", unit("model", "MODEL", params={"offset": offset}), {"model": "Model"})


def project(directory: Path, value: float) -> Path:
    path = write(directory, "model.yaml", manifest())
    (directory / "Model.py").write_text(model_source(value))
    return path


def answer(server: Gateway) -> float | None:
    """One prediction on a new connection (the kernel spreads those over the workers)."""
    r = httpx.post(
        f"{server.url}/seldon/dev/api/v0.1/predictions", json=X, headers={"connection": "close"}, timeout=5
    )
    return float(r.json()["data"]["ndarray"][0][0]) if r.status_code == 200 else None


def answers(server: Gateway, count: int) -> set[float | None]:
    return {answer(server) for _ in range(count)}


def every_worker_answers(server: Gateway, value: float, what: str) -> None:
    # Ten new connections reach both workers (all on one: 1 in 512); a worker builds a change
    # from the files as they are then, so the next edit must wait until both have built this one.
    wait_until(lambda: answers(server, 10) == {value}, what, timeout=15)


def test_apply_of_an_unchanged_manifest_with_edited_code_reloads_it_in_every_worker(
    start_gateway: Callable[..., Gateway], tmp_path: Path
) -> None:
    path = project(tmp_path / "project", 1.0)
    server = start_gateway(workers=2)
    applied = server.cli("apply", "-f", str(path))
    assert applied.stdout == "seldondeployment/dev created\n", applied.stderr
    assert answers(server, 10) == {1.0}

    # Same size, likely the same second: neither the loader's cache nor bytecode may keep 1.0.
    (tmp_path / "project" / "Model.py").write_text(model_source(2.0))
    applied = server.cli("apply", "-f", str(path))
    assert applied.stdout == "seldondeployment/dev configured (code changed)\n", applied.stderr
    assert answers(server, 20) == {2.0}

    (tmp_path / "project" / "Model.py").touch()  # a touch is no change
    applied = server.cli("apply", "-f", str(path))
    assert applied.stdout == "seldondeployment/dev unchanged\n", applied.stderr


def test_serve_says_code_changed_for_classes_edited_while_it_was_stopped(tmp_path: Path) -> None:
    path = project(tmp_path / "project", 1.0)
    state = tmp_path / "state"
    with gateway(path, state_dir=state) as first:
        assert "seldondeployment/dev created" in first.log() and answer(first) == 1.0
    (tmp_path / "project" / "Model.py").write_text(model_source(3.0))
    with gateway(path, state_dir=state) as second:
        assert "seldondeployment/dev configured (code changed)" in second.log()
        assert answer(second) == 3.0


class Client(threading.Thread):
    """Predicts in a loop until stopped, on new connections (so over every worker)."""

    def __init__(self, server: Gateway) -> None:
        super().__init__(daemon=True)
        self.url = f"{server.url}/seldon/dev/api/v0.1/predictions"
        self.stopping = threading.Event()
        self.results: list[tuple[int, str]] = []

    def run(self) -> None:
        with httpx.Client(timeout=10) as client:
            while not self.stopping.is_set():
                try:
                    r = client.post(self.url, json=X, headers={"connection": "close"})
                    self.results.append((r.status_code, r.text))
                except httpx.HTTPError as exc:
                    self.results.append((0, repr(exc)))
                time.sleep(0.005)

    def stop(self) -> list[tuple[int, str]]:
        self.stopping.set()
        self.join(15)
        return self.results


def wait_for_log(server: Gateway, pattern: str) -> str:
    wait_until(lambda: re.search(pattern, server.log()), f"{pattern!r} in the gateway's log", timeout=15)
    return server.log()


def test_reload_swaps_in_edited_code_and_manifests_and_keeps_serving_through_a_broken_edit(
    start_gateway: Callable[..., Gateway], tmp_path: Path
) -> None:
    directory = tmp_path / "project"
    project(directory, 1.0)
    server = start_gateway(directory, args=["--reload"], workers=2)
    assert answer(server) == 1.0
    client = Client(server)
    client.start()
    try:
        (directory / "Model.py").write_text(model_source(2.0))
        every_worker_answers(server, 2.0, "the edited class answers")
        wait_for_log(server, r"seldondeployment/dev configured \(code changed\)\n")

        write(directory, "model.yaml", manifest(offset=10.0))
        every_worker_answers(server, 12.0, "the edited manifest's parameter is used")
        wait_for_log(server, r"seldondeployment/dev configured\n")

        (directory / "Model.py").write_text(model_source(3.0).replace("):", ")", 1))
        log = wait_for_log(server, r"not applied, the running version stays")
        (line,) = [line for line in log.splitlines() if "not applied" in line]
        assert re.search(r"model\.yaml: .*Model\.py, line 2: expected ':'; not applied", line), line
        assert answers(server, 10) == {12.0}  # the last good version keeps answering

        (directory / "Model.py").write_text(model_source(3.0))
        every_worker_answers(server, 13.0, "the fixed class answers")
    finally:
        results = client.stop()
    failed = [result for result in results if result[0] != 200]
    assert not failed, failed[:3]
    assert len(results) > 20  # the loop really ran through the swaps

    (directory / "model.yaml").unlink()  # the manifest goes: so does its deployment
    wait_until(lambda: answer(server) is None, "the removed manifest's deployment is gone", timeout=15)
    assert "seldondeployment/dev deleted" in server.log()
