"""The OAuth API front end's token service (Seldon's "apife"): client-credentials
tokens for deployments that carry `oauth_key` / `oauth_secret`.

Everything lives in the state store, so tokens survive a restart and are valid on
every worker.  Neither secrets nor tokens are stored in the clear: a client secret
is kept as a salted PBKDF2 hash and compared in constant time; a token is kept as
its SHA-256 (it is 256 random bits, so a fast hash is enough).  Unlike Seldon's
apife, every token request gets a fresh token (the old one stays valid until it
expires): returning the same token again would mean storing it in the clear.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from seldon_serving.protocol.errors import BadRequest, Unauthenticated
from seldon_serving.state.base import StateStore

CLIENTS = "oauth_clients"
TOKENS = "oauth_tokens"
DEFAULT_TTL = 43200  # seconds: Seldon's 12 h access-token validity
_PBKDF2_ROUNDS = 60_000


@dataclass(frozen=True, slots=True)
class Grant:
    """Who a valid token speaks for."""

    deployment: str
    namespace: str
    expires: float


def _hash_secret(secret: str, salt: bytes) -> str:
    return hashlib.pbkdf2_hmac("sha256", secret.encode(), salt, _PBKDF2_ROUNDS).hex()


def _token_key(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def client_ids(oauth_key: str, namespace: str) -> list[str]:
    """Seldon registers the key alone and the key followed by the namespace."""
    return [oauth_key, oauth_key + namespace]


class OAuthService:
    def __init__(
        self, store: StateStore, ttl: float = DEFAULT_TTL, *, clock: Callable[[], float] = time.time
    ) -> None:
        self.store = store
        self.ttl = ttl
        self.clock = clock  # wall-clock seconds: expiry times are stored and shared by processes

    # --- the client registry, kept in step with applied deployments -----------------------

    def register(
        self, deployment: str, namespace: str, oauth_key: str | None, oauth_secret: str | None
    ) -> bool:
        """(Re)register a deployment's client; an empty key removes it (not reachable via OAuth).
        True when that changed anything.

        Re-applying the same key and secret keeps the tokens already issued (a server
        restart re-applies its files); a changed key or secret revokes them.
        """
        current = self.store.get(CLIENTS, oauth_key) if oauth_key else None
        if (
            current is not None
            and current.get("deployment") == deployment
            and current.get("namespace") == namespace
            and hmac.compare_digest(
                current["hash"], _hash_secret(oauth_secret or "", bytes.fromhex(current["salt"]))
            )
        ):
            return False
        had_clients = self.unregister(deployment, namespace)
        if not oauth_key:
            return had_clients
        salt = secrets.token_bytes(16)
        record = {
            "deployment": deployment,
            "namespace": namespace,
            "salt": salt.hex(),
            "hash": _hash_secret(oauth_secret or "", salt),
        }
        for client in client_ids(oauth_key, namespace):
            self.store.put(CLIENTS, client, record)
        return True

    def unregister(self, deployment: str, namespace: str) -> bool:
        """Forget a deployment's clients and revoke its tokens; True if it had clients."""
        had_clients = False
        for client, record in self.store.items(CLIENTS).items():
            if record.get("deployment") == deployment and record.get("namespace") == namespace:
                had_clients = self.store.delete(CLIENTS, client) or had_clients
        for key, grant in self.store.items(TOKENS).items():
            if grant.get("deployment") == deployment and grant.get("namespace") == namespace:
                self.store.delete(TOKENS, key)
        return had_clients

    # --- POST /oauth/token -------------------------------------------------------------------

    def issue(self, authorization: str, form_body: bytes) -> dict[str, Any]:
        """Answer a client-credentials token request (HTTP Basic key:secret, grant_type form)."""
        client, secret = _basic_credentials(authorization)
        grant_type = parse_qs(form_body.decode("latin-1")).get("grant_type", [""])[0]
        if grant_type != "client_credentials":
            raise BadRequest(f"unsupported grant_type {grant_type!r}: use client_credentials")
        record = self.store.get(CLIENTS, client)
        expected = record["hash"] if record else _hash_secret("", b"\0" * 16)
        given = _hash_secret(secret, bytes.fromhex(record["salt"]) if record else b"\0" * 16)
        if not hmac.compare_digest(expected, given) or record is None:
            raise Unauthenticated("bad client credentials")
        token = secrets.token_urlsafe(32)
        expires = self.clock() + self.ttl
        self.store.put(
            TOKENS,
            _token_key(token),
            {"deployment": record["deployment"], "namespace": record["namespace"], "expires": expires},
        )
        return {
            "access_token": token,
            "token_type": "bearer",
            "expires_in": int(self.ttl),
            "scope": "read write",
        }

    # --- every protected request ---------------------------------------------------------------

    def check(self, token: str | None, send_it: str = "send Authorization: Bearer <token>") -> Grant:
        """The grant of a bearer token; Unauthenticated if missing, unknown or expired.  `send_it`
        tells a caller without one how its protocol carries it."""
        if not token:
            raise Unauthenticated(f"Full authentication is required: {send_it}")
        # One indexed read per request (~10 us on SQLite) and no per-process cache, so a token
        # revoked through any worker is refused by every worker at once.
        record = self.store.get(TOKENS, _token_key(token))
        if record is None:
            raise Unauthenticated("Invalid access token")
        if float(record["expires"]) <= self.clock():
            raise Unauthenticated("Access token expired")
        return Grant(record["deployment"], record["namespace"], float(record["expires"]))

    def prune(self) -> int:
        """Forget expired tokens; returns how many."""
        now = self.clock()
        gone = 0
        for key, record in self.store.items(TOKENS).items():
            if float(record.get("expires", 0)) <= now and self.store.delete(TOKENS, key):
                gone += 1
        return gone


def bearer_token(authorization: str) -> str | None:
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


def _basic_credentials(authorization: str) -> tuple[str, str]:
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() != "basic" or not value:
        raise Unauthenticated("send the client key and secret with HTTP Basic authentication")
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode()
    except (ValueError, UnicodeDecodeError):
        raise Unauthenticated("malformed HTTP Basic credentials") from None
    client, sep, secret = decoded.partition(":")
    if not sep:
        raise Unauthenticated("malformed HTTP Basic credentials")
    return client, secret
