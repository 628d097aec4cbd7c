"""The OAuth API front end (`seldon serve --oauth`, Seldon's apife) with plain HTTP
clients and gRPC metadata: tokens, expiry, cross-deployment refusal, a restart."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager
from pathlib import Path

import grpc
import httpx
import pytest

from seldon_serving.protocol._pb import prediction_pb2 as pb
from seldon_serving.protocol._pb import prediction_pb2_grpc as pb_grpc
from tests.e2e.test_seed_examples import MOCK, generate
from tests.helpers import Gateway, gateway

pytestmark = pytest.mark.slow

BODY = {"data": {"ndarray": [[1.0, 2.0]]}}
TTL = 3.0


class Front:
    def __init__(self, server: Gateway) -> None:
        self.server = server
        self.url = server.url
        self.grpc = server.grpc
        self.client = httpx.Client(timeout=30)

    def token(self, key: str, secret: str) -> httpx.Response:
        return self.client.post(
            f"{self.url}/oauth/token", auth=(key, secret), data={"grant_type": "client_credentials"}
        )

    def predict(self, token: str | None, path: str = "/api/v0.1/predictions") -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return self.client.post(self.url + path, json=BODY, headers=headers)


def manifests(directory: Path) -> Path:
    for name, key, secret in (("dep-a", "key-a", "secret-a"), ("dep-b", "key-b", "secret-b")):
        generate(
            directory, ["serve-simple", "--image", MOCK], name, "--oauth-key", key, "--oauth-secret", secret
        )
    return directory


def start(directory: Path, ttl: float = TTL, **ports: int) -> AbstractContextManager[Gateway]:
    """`seldon serve --oauth` on the manifests in `directory`, with its state beside them."""
    return gateway(
        directory,
        state_dir=directory / "state",
        args=["--oauth", "--oauth-token-ttl", str(ttl)],
        workers=2,
        log_level=None,
        **ports,
    )


@pytest.fixture(scope="module")
def front(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Front]:
    directory = manifests(tmp_path_factory.mktemp("oauth"))
    with start(directory) as server:
        yield Front(server)


def test_token_then_prediction_reaches_the_owner(front: Front) -> None:
    answer = front.token("key-a", "secret-a")
    assert answer.status_code == 200
    token = answer.json()
    assert token["token_type"] == "bearer" and token["scope"] == "read write" and token["expires_in"] > 0
    reply = front.predict(token["access_token"])
    assert reply.status_code == 200
    assert reply.json()["meta"]["requestPath"] == {"dep-a": MOCK}
    feedback = front.client.post(
        f"{front.url}/api/v0.1/feedback",
        json={"request": BODY, "reward": 1.0},
        headers={"Authorization": f"Bearer {token['access_token']}"},
    )
    assert feedback.status_code == 200 and feedback.json() == {}


def test_wrong_or_missing_credentials_get_401_with_a_failure_status(front: Front) -> None:
    for key, secret in (("key-a", "wrong"), ("nobody", "secret-a")):
        reply = front.token(key, secret)
        assert reply.status_code == 401
        assert reply.json()["status"]["status"] == "FAILURE"
        assert "secret" not in reply.text
    for token in (None, "made-up-token"):
        reply = front.predict(token)
        assert reply.status_code == 401 and reply.json()["status"]["status"] == "FAILURE"


def test_a_token_never_reaches_another_deployment(front: Front) -> None:
    token_a = front.token("key-a", "secret-a").json()["access_token"]
    assert front.predict(token_a, "/seldon/dep-a/api/v0.1/predictions").status_code == 200
    assert front.predict(token_a, "/seldon/dep-b/api/v0.1/predictions").status_code == 401
    # with OAuth on, the open Ambassador-style routes need a token too
    assert front.predict(None, "/seldon/dep-b/api/v0.1/predictions").status_code == 401


def test_grpc_takes_the_token_in_oauth_token_metadata(front: Front) -> None:
    token_b = front.token("key-b", "secret-b").json()["access_token"]
    request = pb.SeldonMessage()
    request.data.ndarray.extend([[1.0, 2.0]])
    with grpc.insecure_channel(front.grpc) as channel:
        stub = pb_grpc.SeldonStub(channel)
        reply = stub.Predict(request, metadata=[("oauth_token", token_b)], timeout=30)
        assert dict(reply.meta.requestPath) == {"dep-b": MOCK}
        for metadata in ([], [("oauth_token", "bad")], [("oauth_token", token_b), ("seldon", "dep-a")]):
            with pytest.raises(grpc.RpcError) as info:
                stub.Predict(request, metadata=metadata, timeout=30)
            assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED


def test_tokens_expire(front: Front) -> None:
    # The expiry rule itself is proven on a fake clock by tests/servers/test_oauth.py; this proves
    # the wiring: --oauth-token-ttl reaches the server's token service and an expired token is
    # refused over HTTP.  No fixed sleep: asked again until refused (bounded), never before TTL.
    issued = time.monotonic()
    answer = front.token("key-a", "secret-a").json()
    token = answer["access_token"]
    assert answer["expires_in"] == int(TTL)
    assert front.predict(token).status_code == 200
    reply = front.predict(token)
    while reply.status_code == 200 and time.monotonic() < issued + TTL + 10:
        time.sleep(0.1)
        reply = front.predict(token)
    assert time.monotonic() - issued >= TTL - 0.1, "refused before its lifetime was over"
    assert reply.status_code == 401 and "expired" in reply.json()["status"]["info"]


def test_tokens_survive_a_restart(tmp_path: Path) -> None:
    directory = manifests(tmp_path)
    # a long lifetime: a restart on a loaded machine can take longer than the module's short TTL
    with start(directory, ttl=600) as server:
        front = Front(server)
        token = front.token("key-a", "secret-a").json()["access_token"]
        assert front.predict(token).status_code == 200
    with start(directory, ttl=600, http_port=server.http_port, grpc_port=server.grpc_port) as again:
        assert Front(again).predict(token).status_code == 200


def test_a_grpc_call_without_a_token_is_told_to_send_oauth_token_metadata(front: Front) -> None:
    request = pb.SeldonMessage()
    request.data.ndarray.extend([[1.0, 2.0]])
    with grpc.insecure_channel(front.grpc) as channel:
        stub = pb_grpc.SeldonStub(channel)
        with pytest.raises(grpc.RpcError) as bare:
            stub.Predict(request, timeout=30)
        assert bare.value.code() == grpc.StatusCode.UNAUTHENTICATED
        assert "metadata key oauth_token" in bare.value.details()
        # The REST habit, over gRPC: say why it is not taken.
        with pytest.raises(grpc.RpcError) as header:
            stub.Predict(request, metadata=[("authorization", "Bearer x")], timeout=30)
        assert "not an Authorization header" in header.value.details()


def test_a_deployment_no_token_can_reach_is_reported_at_apply_and_by_get(
    front: Front, tmp_path: Path
) -> None:
    path = generate(tmp_path, ["serve-simple", "--image", MOCK], "dep-open")  # no --oauth-key / -secret
    applied = front.server.cli("apply", "-f", str(path))
    assert applied.returncode == 0, applied.stderr
    assert "seldondeployment/dep-open created" in applied.stdout
    assert "warning: seldondeployment/dep-open is not ready" in applied.stderr
    assert "oauth_key" in applied.stderr and "oauth_secret" in applied.stderr
    listed = front.server.cli("get", "dep-open")
    assert "NotReady" in listed.stdout, listed.stdout
    shown = front.server.cli("get", "dep-open", "-o", "json")
    status = json.loads(shown.stdout)["status"]
    assert status["state"] == "NotReady" and "--oauth" in status["description"]
    front.server.cli("delete", "dep-open")
