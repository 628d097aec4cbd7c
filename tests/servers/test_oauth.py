"""The OAuth token service on a real SQLite store: what a client of Seldon's apife notices."""

from __future__ import annotations

import base64
import time
from pathlib import Path

import pytest

from seldon_serving.protocol.errors import BadRequest, Unauthenticated
from seldon_serving.servers.oauth import CLIENTS, TOKENS, OAuthService, bearer_token
from seldon_serving.state.sqlite import SqliteStore

FORM = b"grant_type=client_credentials"


def basic(key: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{key}:{secret}".encode()).decode()


@pytest.fixture
def store(tmp_path: Path) -> SqliteStore:
    return SqliteStore(tmp_path / "state.sqlite")


def test_token_flow_and_routing_to_the_owner(store: SqliteStore) -> None:
    service = OAuthService(store)
    service.register("dep-a", "default", "key-a", "secret-a")
    service.register("dep-b", "default", "key-b", "secret-b")
    answer = service.issue(basic("key-a", "secret-a"), FORM)
    assert answer["token_type"] == "bearer" and answer["scope"] == "read write"
    assert answer["expires_in"] == 43200
    grant = service.check(answer["access_token"])
    assert (grant.deployment, grant.namespace) == ("dep-a", "default")
    # the namespaced client id (key + namespace) works too, as with Seldon's apife
    other = service.issue(basic("key-adefault", "secret-a"), FORM)
    assert service.check(other["access_token"]).deployment == "dep-a"


def test_wrong_or_missing_credentials_are_refused(store: SqliteStore) -> None:
    service = OAuthService(store)
    service.register("dep-a", "default", "key-a", "secret-a")
    for header in (basic("key-a", "nope"), basic("nobody", "secret-a"), "", "Bearer x", "Basic !!!"):
        with pytest.raises(Unauthenticated):
            service.issue(header, FORM)
    with pytest.raises(BadRequest):
        service.issue(basic("key-a", "secret-a"), b"grant_type=password")
    for token in (None, "", "not-a-token"):
        with pytest.raises(Unauthenticated):
            service.check(token)


def test_secrets_and_tokens_are_not_stored_in_the_clear(store: SqliteStore) -> None:
    service = OAuthService(store)
    service.register("dep-a", "default", "key-a", "secret-a")
    token = service.issue(basic("key-a", "secret-a"), FORM)["access_token"]
    dump = repr(store.items(CLIENTS)) + repr(store.items(TOKENS))
    assert "secret-a" not in dump and token not in dump


class FakeClock:
    """Wall-clock seconds that move only when the test says so."""

    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_tokens_survive_a_restart_and_expire(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite"
    clock = FakeClock()
    first = OAuthService(SqliteStore(path), ttl=0.5, clock=clock)
    first.register("dep-a", "default", "key-a", "secret-a")
    token = first.issue(basic("key-a", "secret-a"), FORM)["access_token"]
    second = OAuthService(SqliteStore(path), ttl=0.5, clock=clock)  # another process / after a restart
    assert second.check(token).deployment == "dep-a"
    clock.now += 0.49
    assert second.check(token).deployment == "dep-a"  # still valid just before its lifetime is over
    assert second.prune() == 0
    clock.now += 0.11
    with pytest.raises(Unauthenticated, match="expired"):
        second.check(token)
    assert second.prune() == 1


def test_the_real_clock_is_the_default(store: SqliteStore) -> None:
    service = OAuthService(store)
    service.register("dep-a", "default", "key-a", "secret-a")
    before = time.time()
    token = service.issue(basic("key-a", "secret-a"), FORM)["access_token"]
    expires = service.check(token).expires
    assert before + 43200 <= expires <= time.time() + 43200


def test_a_deleted_deployment_takes_its_clients_and_tokens_along(store: SqliteStore) -> None:
    service = OAuthService(store)
    service.register("dep-a", "default", "key-a", "secret-a")
    token = service.issue(basic("key-a", "secret-a"), FORM)["access_token"]
    service.unregister("dep-a", "default")
    with pytest.raises(Unauthenticated):
        service.check(token)
    with pytest.raises(Unauthenticated):
        service.issue(basic("key-a", "secret-a"), FORM)


def test_bearer_header_parsing() -> None:
    assert bearer_token("Bearer abc") == "abc"
    assert bearer_token("bearer  abc ") == "abc"
    assert bearer_token("Basic abc") is None
    assert bearer_token("") is None


def test_reapplying_the_same_credentials_keeps_tokens_but_a_new_secret_revokes_them(
    store: SqliteStore,
) -> None:
    service = OAuthService(store)
    service.register("dep-a", "default", "key-a", "secret-a")
    token = service.issue(basic("key-a", "secret-a"), FORM)["access_token"]
    service.register("dep-a", "default", "key-a", "secret-a")
    assert service.check(token).deployment == "dep-a"
    service.register("dep-a", "default", "key-a", "rotated")
    with pytest.raises(Unauthenticated):
        service.check(token)
