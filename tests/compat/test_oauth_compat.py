"""The OAuth front end driven by the real SeldonClient of seldon-core 1.4.0 (the last one
with OAuth): gateway="seldon" with oauth_key/oauth_secret, over REST and gRPC."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.compat.conftest import run_seldon_client
from tests.e2e.test_seed_examples import MOCK, generate
from tests.helpers import gateway

pytestmark = [pytest.mark.compat, pytest.mark.slow]


@pytest.fixture(scope="module")
def endpoints(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    directory = tmp_path_factory.mktemp("oauth-compat")
    for name, key in (("dep-a", "key-a"), ("dep-b", "key-b")):
        generate(
            directory, ["serve-simple", "--image", MOCK], name, "--oauth-key", key, "--oauth-secret", "s3cret"
        )
    with gateway(directory, state_dir=directory / "state", args=["--oauth"]) as server:
        yield f"127.0.0.1:{server.http_port}", server.grpc


def client(endpoints: tuple[str, str], transport: str, key: str, secret: str = "s3cret") -> dict[str, Any]:
    return {
        "gateway": "seldon",
        "transport": transport,
        "oauth_key": key,
        "oauth_secret": secret,
        "seldon_rest_endpoint": endpoints[0],
        "seldon_grpc_endpoint": endpoints[1],
        "payload_type": "ndarray",
    }


@pytest.mark.parametrize("transport", ["rest", "grpc"])
def test_seldon_client_predicts_and_sends_feedback_through_oauth(
    compat_oauth_python: Path, endpoints: tuple[str, str], transport: str
) -> None:
    calls = [
        {
            "call": "predict",
            "client": client(endpoints, transport, "key-a"),
            "kwargs": {"data": [[1.0, 2.0]]},
        },
        {
            "call": "feedback",
            "client": client(endpoints, transport, "key-a"),
            "kwargs": {
                "prediction_request": {"$from": 0, "key": "request"},
                "prediction_response": {"$from": 0, "key": "response"},
                "reward": 1.0,
            },
        },
        {
            "call": "predict",
            "client": client(endpoints, transport, "key-b"),
            "kwargs": {"data": [[1.0, 2.0]]},
        },
        {
            "call": "predict",
            "client": client(endpoints, transport, "key-a", "wrong"),
            "kwargs": {"data": [[1.0]]},
        },
    ]
    predict_a, feedback_a, predict_b, refused = run_seldon_client(compat_oauth_python, calls)
    assert predict_a["success"], predict_a["msg"]
    assert predict_a["response"]["meta"]["requestPath"] == {"dep-a": MOCK}
    assert abs(predict_a["response"]["data"]["ndarray"][0][0] - 0.195185) < 1e-5
    assert feedback_a["success"], feedback_a["msg"]
    assert predict_b["success"] and predict_b["response"]["meta"]["requestPath"] == {"dep-b": MOCK}
    assert not refused["success"]
