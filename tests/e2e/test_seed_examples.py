"""The seed's four examples, run the way its README shows: generate, serve, predict
over REST (/seldon/NAME/api/v0.1/predictions) and gRPC (metadata seldon: NAME),
for both API versions; the bandit learns; the outlier detector flags outliers."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import numpy as np
import pytest

from seldon_serving.protocol._pb import prediction_pb2 as pb
from seldon_serving.protocol._pb import prediction_pb2_grpc as pb_grpc
from tests import helpers
from tests.helpers import seldon_bin

pytestmark = pytest.mark.slow

MOCK = "seldonio/mock_classifier:1.0"
EXAMPLES = {  # deployment name -> generate arguments
    "mymodel": ["serve-simple", "--image", MOCK],
    "myabtest": ["abtest", "--imageA", MOCK, "--imageB", MOCK],
    "mymab": ["mab", "--imageA", MOCK, "--imageB", MOCK],
    "myout": ["outlier-detector", "--image", MOCK],
}
VERSIONS = ("v1alpha2", "v1alpha1")


def generate(directory: Path, prototype_args: list[str], name: str, *extra: str) -> Path:
    out = subprocess.run(
        [seldon_bin(), "generate", prototype_args[0], name, *prototype_args[1:], *extra, "-o", "yaml"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    path = directory / f"{name}.yaml"
    path.write_text(out)
    return path


class Gateway:
    """A running gateway (`helpers.Gateway`) and the README's calls, over one keep-alive client."""

    def __init__(self, server: helpers.Gateway) -> None:
        self.url = server.url
        self.admin_url = server.admin_url
        self.grpc = server.grpc
        self.client = httpx.Client(timeout=30)  # keep-alive: a new client per call costs ~50 ms

    def predict(self, name: str, body: dict) -> dict:
        r = self.client.post(f"{self.url}/seldon/{name}/api/v0.1/predictions", json=body)
        assert r.status_code == 200, r.text
        return r.json()

    def feedback(self, name: str, body: dict) -> None:
        r = self.client.post(f"{self.url}/seldon/{name}/api/v0.1/feedback", json=body)
        assert r.status_code == 200, r.text


def serve(directory: Path, workers: int = 1) -> Iterator[Gateway]:
    with helpers.gateway(directory, state_dir=directory / "state", workers=workers, log_level=None) as server:
        gateway = Gateway(server)
        yield gateway
        gateway.client.close()


@pytest.fixture(scope="module")
def seed_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    directory = tmp_path_factory.mktemp("seed")
    for name, prototype in EXAMPLES.items():
        for version in VERSIONS:
            generate(directory, prototype, f"{name}-{version}", "--api-version", version)
    # a detector of its own for the outlier test: detector state is per deployment
    generate(directory, EXAMPLES["myout"], "myout-fresh")
    yield from serve(directory)


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("example", list(EXAMPLES))
def test_seed_example_answers_rest_and_grpc(seed_gateway: Gateway, example: str, version: str) -> None:
    name = f"{example}-{version}"
    body = {"data": {"names": ["a", "b"], "tensor": {"shape": [1, 2], "values": [1.0, 2.0]}}}
    answer = seed_gateway.predict(name, body)
    assert answer["data"]["names"] == ["proba"]
    assert answer["data"]["tensor"]["shape"] == [1, 1]
    assert abs(answer["data"]["tensor"]["values"][0] - 0.195185) < 1e-5  # the mock classifier's value
    assert answer["meta"]["puid"]

    request = pb.SeldonMessage()
    request.data.names.extend(["a", "b"])
    request.data.tensor.shape.extend([1, 2])
    request.data.tensor.values.extend([1.0, 2.0])
    with grpc.insecure_channel(seed_gateway.grpc) as channel:
        reply = pb_grpc.SeldonStub(channel).Predict(request, metadata=[("seldon", name)], timeout=30)
    assert list(reply.data.names) == ["proba"]
    assert abs(reply.data.tensor.values[0] - 0.195185) < 1e-5
    if example == "myabtest":
        assert set(answer["meta"]["routing"]) == {"random-ab-test"}
    if example == "mymab":
        assert answer["meta"]["routing"]["eg-router"] in (0, 1)
    if example == "myout":
        assert "outlierScore" in answer["meta"]["tags"]
        assert answer["meta"]["routing"] == {"outlier-detector": -1}


def test_ab_test_sends_traffic_to_both_branches(seed_gateway: Gateway) -> None:
    seen = set()
    for _ in range(60):
        answer = seed_gateway.predict("myabtest-v1alpha2", {"data": {"ndarray": [[1.0, 2.0]]}})
        seen.add(answer["meta"]["routing"]["random-ab-test"])
    assert seen == {0, 1}


def test_outlier_detector_flags_a_far_row(seed_gateway: Gateway) -> None:
    rng = np.random.default_rng(7)
    name = "myout-fresh"
    for _ in range(20):  # 200 normal rows, 10 per request
        rows = rng.normal(size=(10, 4)).tolist()
        answer = seed_gateway.predict(name, {"data": {"ndarray": rows}})
    normal = answer["meta"]["tags"]["outlier-predictions"]
    assert normal == [0] * 10
    far = seed_gateway.predict(name, {"data": {"ndarray": [[10.0, 10.0, 10.0, 10.0]]}})
    assert far["meta"]["tags"]["outlier-predictions"] == [1]
    assert far["meta"]["tags"]["outlierScore"][0] > 25
    normal_again = seed_gateway.predict(name, {"data": {"ndarray": [[0.1, -0.2, 0.3, 0.0]]}})
    assert normal_again["meta"]["tags"]["outlier-predictions"] == [0]
