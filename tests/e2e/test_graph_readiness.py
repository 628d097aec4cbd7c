"""Seldon's graph-ready check in the gateway: remote nodes are probed every few seconds; a
deployment whose node does not answer is NotReady (naming the node and address), /ready says
so, and calls answer 503 naming the node in our own words; when the node comes back, all of
it turns back."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests import helpers
from tests.helpers import free_port

pytestmark = pytest.mark.slow

REQUEST = {"data": {"ndarray": [[1.0, 2.0]]}}
MODELS = Path(__file__).parent / "models"


def remote_deployment(name: str, port: int, transport: str) -> dict[str, Any]:
    return {
        "apiVersion": "machinelearning.seldon.io/v1alpha2",
        "kind": "SeldonDeployment",
        "metadata": {"name": name},
        "spec": {
            "name": name,
            "predictors": [
                {
                    "name": "main",
                    "graph": {
                        "name": "model",
                        "type": "MODEL",
                        "endpoint": {"service_host": "127.0.0.1", "service_port": port, "type": transport},
                    },
                }
            ],
        },
    }


def status(gateway: helpers.Gateway, name: str) -> dict[str, Any]:
    done = gateway.cli("get", name, "-o", "yaml")
    assert done.returncode == 0, done.stderr
    found: dict[str, Any] = yaml.safe_load(done.stdout)["status"]
    return found


@pytest.mark.parametrize("transport", ["REST", "GRPC"])
def test_an_unreachable_node_makes_its_deployment_not_ready_until_it_answers(
    transport: str, tmp_path: Path, start_gateway: Any, start_microservice: Any
) -> None:
    http, grpc = free_port(), free_port()
    port = http if transport == "REST" else grpc
    manifests = tmp_path / "manifests"
    manifests.mkdir()
    (manifests / "remote.yaml").write_text(yaml.safe_dump(remote_deployment("remote", port, transport)))
    gateway = start_gateway(manifests)
    where = f"127.0.0.1:{port}"

    described = status(gateway, "remote")
    assert described["state"] == "NotReady"
    assert described["description"] == (
        f"node 'model' at {where} is unreachable (connection refused: nothing listens there)"
    )
    ready = httpx.get(f"{gateway.url}/ready", timeout=10)
    assert ready.status_code == 503
    assert f"node 'model' at {where} is unreachable" in ready.text
    answer = httpx.post(f"{gateway.url}/seldon/remote/api/v0.1/predictions", json=REQUEST, timeout=10)
    assert answer.status_code == 503
    info = answer.json()["status"]["info"]
    assert info == f"node 'model' at {where} is unreachable (connection refused: nothing listens there)"

    # The node comes up where the manifest says: within a probe interval, all is well again.
    start_microservice("Sleepy", "--parameters", '[{"name":"seconds","value":"0","type":"FLOAT"}]',
                       cwd=MODELS, http_port=http, grpc_port=grpc)  # fmt: skip
    helpers.wait_until(
        lambda: status(gateway, "remote")["state"] == "Available", "Available again", timeout=15
    )
    assert httpx.get(f"{gateway.url}/ready", timeout=10).status_code == 200
    answer = httpx.post(f"{gateway.url}/seldon/remote/api/v0.1/predictions", json=REQUEST, timeout=10)
    assert answer.status_code == 200, answer.text
