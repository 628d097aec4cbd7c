"""The built-in router as a standalone `seldon microservice`: its state is shared by the
workers and, with --state-dir, survives a restart."""

from __future__ import annotations

import json
from contextlib import AbstractContextManager
from pathlib import Path

import httpx
import pytest

from tests.helpers import Server, free_port, microservice

pytestmark = pytest.mark.slow

PARAMETERS = json.dumps(
    [
        {"name": "n_branches", "value": "2", "type": "INT"},
        {"name": "epsilon", "value": "0", "type": "FLOAT"},
        {"name": "best_branch", "value": "0", "type": "INT"},
    ]
)


def _start(state_dir: Path, http: int, grpc_port: int) -> AbstractContextManager[Server]:
    return microservice(
        "seldon_serving.components.builtin.EpsilonGreedy",
        "--parameters",
        PARAMETERS,
        "--state-dir",
        str(state_dir),
        service_type="ROUTER",
        workers=2,
        env={"PREDICTIVE_UNIT_ID": "eg-router"},
        http_port=http,
        grpc_port=grpc_port,
    )


def _route(url: str) -> int:
    # a new connection each time: SO_REUSEPORT spreads them over both workers
    answer = httpx.post(f"{url}/route", json={"data": {"ndarray": [[1.0, 2.0]]}}, timeout=10).json()
    return int(answer["data"]["ndarray"][0][0])


def test_router_state_is_shared_by_workers_and_kept_across_restarts(tmp_path: Path) -> None:
    http, grpc_port = free_port(), free_port()
    url = f"http://127.0.0.1:{http}"
    with _start(tmp_path, http, grpc_port):
        assert _route(url) == 0  # epsilon 0: always the current best, branch 0
        for i in range(20):
            for branch, reward in ((1, 1.0), (0, 0.0)):
                feedback = {
                    "request": {"data": {"ndarray": [[1.0, 2.0]]}},
                    "response": {"meta": {"puid": f"p{i}-{branch}", "routing": {"eg-router": branch}}},
                    "reward": reward,
                }
                assert httpx.post(f"{url}/send-feedback", json=feedback, timeout=10).status_code == 200
        assert {_route(url) for _ in range(10)} == {1}
    with _start(tmp_path, http, grpc_port):
        assert {_route(url) for _ in range(10)} == {1}
