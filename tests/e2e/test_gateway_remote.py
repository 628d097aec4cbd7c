"""A graph whose nodes are separate `seldon microservice` processes, one reached over gRPC
and one over REST (manifest endpoints with service_host/service_port)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.deploy.gateway import USER_MODELS, deployment, unit, write
from tests.helpers import Gateway, Server, stop

pytestmark = pytest.mark.slow

X = [[1.0, 2.0, 3.0, 4.0]]


def test_remote_nodes_over_grpc_and_rest(
    start_microservice: Callable[..., Server], start_gateway: Callable[..., Gateway], tmp_path: Path
) -> None:
    doubler = start_microservice("Doubler", cwd=USER_MODELS, service_type="TRANSFORMER")
    linear = start_microservice("LinearSoftmax", cwd=USER_MODELS, service_type="MODEL")
    doubler_grpc, linear_http = doubler.grpc_port, linear.http_port
    gw = start_gateway()
    graph = unit(
        "doubler",
        "TRANSFORMER",
        endpoint=("GRPC", doubler_grpc),
        children=[unit("linear", "MODEL", endpoint=("REST", linear_http))],
    )
    manifest = write(tmp_path, "remote.yaml", deployment("remote", graph))
    applied = gw.cli("apply", "-f", str(manifest))
    assert applied.returncode == 0, applied.stderr

    answer = httpx.post(gw.url + "/seldon/remote/api/v0.1/predictions", json={"data": {"ndarray": X}}).json()
    direct = httpx.post(
        f"http://127.0.0.1:{linear_http}/predict", json={"data": {"ndarray": [[2 * v for v in X[0]]]}}
    ).json()
    assert answer["data"]["names"] == ["a", "b", "c"]
    assert answer["data"]["ndarray"][0] == pytest.approx(direct["data"]["ndarray"][0])
    assert answer["meta"]["routing"] == {"doubler": -1}
    assert answer["meta"]["tags"] == {"model": "linear-softmax"}
    assert [m["key"] for m in answer["meta"]["metrics"]] == ["mycounter"]

    feedback = {"request": {"data": {"ndarray": X}}, "response": answer, "reward": 1.0}
    r = httpx.post(gw.url + "/seldon/remote/api/v1.0/feedback", json=feedback)
    assert r.status_code == 200 and r.json() == {}

    wide = gw.cli("get", "-o", "wide").stdout
    assert f"doubler=gRPC 127.0.0.1:{doubler_grpc}" in wide
    assert f"linear=REST 127.0.0.1:{linear_http}" in wide
    assert httpx.get(gw.url + "/ready").text == "ready"

    stop(doubler.process)  # a component goes away: the gateway says which one, and leaves rotation
    r = httpx.post(gw.url + "/seldon/remote/api/v0.1/predictions", json={"data": {"ndarray": X}})
    assert r.status_code == 503
    assert "'doubler'" in r.json()["status"]["info"] and r.json()["status"]["status"] == "FAILURE"
    ready = httpx.get(gw.url + "/ready")
    assert ready.status_code == 503 and "doubler" in ready.text


def test_a_raised_message_limit_reaches_a_remote_grpc_node(
    start_microservice: Any, start_gateway: Any, tmp_path: Path
) -> None:
    # --max-message-size used to stop at the gateway's own edges: its channel to a remote
    # gRPC node kept gRPC's 4 MiB limit, so a bigger message failed even when allowed.
    limit = str(32 * 1024 * 1024)
    doubler = start_microservice(
        "Doubler", "--max-message-size", limit, cwd=USER_MODELS, service_type="TRANSFORMER"
    )
    graph = unit("doubler", "TRANSFORMER", endpoint=("GRPC", doubler.grpc_port))
    manifest = write(tmp_path, "big.yaml", deployment("big", graph))
    gw = start_gateway(manifest, args=["--max-message-size", limit])
    row = [0.5] * 600_000  # ~2.4 MB of JSON, ~6.6 MB as a protobuf ListValue
    r = httpx.post(gw.url + "/seldon/big/api/v0.1/predictions", json={"data": {"ndarray": [row]}}, timeout=60)
    assert r.status_code == 200, r.text[:300]
    answer = r.json()["data"]["ndarray"][0]
    assert len(answer) == len(row) and answer[0] == answer[-1] == 1.0
