"""Two OS processes serving one router / detector through one durable store."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import numpy as np
import pytest

from seldon_serving.components.builtin import EpsilonGreedy, OutlierMahalanobis, ThompsonSampling
from seldon_serving.state.base import StateHandle

sqlite = pytest.importorskip("seldon_serving.state.sqlite", reason="state/sqlite.py not written yet")
SqliteStore = sqlite.SqliteStore

FEEDBACKS_PER_PROCESS = 150
SHARED_PUIDS = 10  # feedbacks both processes deliver for the same requests
ROUTERS = {"EpsilonGreedy": EpsilonGreedy, "ThompsonSampling": ThompsonSampling}


def router_worker(path: str, router_name: str, worker: int) -> None:
    handle = StateHandle(SqliteStore(path), "deployment", "router")
    router = ROUTERS[router_name](n_branches=2, seed=worker, state=handle)
    row = np.array([[1.0]])
    for i in range(FEEDBACKS_PER_PROCESS):
        branch = router.route(row, [])
        router.send_feedback(row, [], float(branch == 1), None, routing=branch, puid=f"w{worker}-{i}")
    for i in range(SHARED_PUIDS):
        router.send_feedback(row, [], 1.0, None, routing=1, puid=f"shared-{i}")


def detector_worker(path: str, worker: int) -> None:
    handle = StateHandle(SqliteStore(path), "deployment", "detector")
    detector = OutlierMahalanobis(state=handle)
    rng = np.random.default_rng(worker)
    for _ in range(20):
        detector.transform_input(rng.normal(size=(5, 3)), [])


def run_two(target: object, *args: object) -> None:
    # fork, like the pre-fork worker servers (and much quicker to start than spawn).
    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
    context = multiprocessing.get_context(method)
    processes = [context.Process(target=target, args=(*args, worker)) for worker in (0, 1)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(60)
        assert process.exitcode == 0


@pytest.mark.parametrize("router_name", ROUTERS)
def test_two_processes_count_every_feedback_exactly_once(tmp_path: Path, router_name: str) -> None:
    path = str(tmp_path / "state.db")
    run_two(router_worker, path, router_name)
    summary = ROUTERS[router_name](n_branches=2, state=StateHandle(SqliteStore(path), "deployment", "router"))
    tries = sum(b["tries"] for b in summary.state_summary()["branches"])
    assert tries == 2 * FEEDBACKS_PER_PROCESS + SHARED_PUIDS


def test_two_processes_feed_one_detector(tmp_path: Path) -> None:
    path = str(tmp_path / "state.db")
    run_two(detector_worker, path)
    detector = OutlierMahalanobis(state=StateHandle(SqliteStore(path), "deployment", "detector"))
    assert detector.state_summary()["observations"] == 2 * 20 * 5
