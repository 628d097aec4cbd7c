"""The CLI's client of a running gateway's admin API (stdlib only: the CLI must start fast).

It talks to the admin port (`seldon serve --admin-port`, 127.0.0.1:8004 by default), with the
admin token when one is given (`--admin-token-file`, $SELDON_ADMIN_TOKEN_FILE, or the token
itself in $SELDON_ADMIN_TOKEN), over https verified with `--ca` when the server has TLS.
"""

from __future__ import annotations

import json
import os
import ssl
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from seldon_serving.cli.errors import CliError

SERVER_ENV = "SELDON_SERVER"
TOKEN_FILE_ENV = "SELDON_ADMIN_TOKEN_FILE"
TOKEN_ENV = "SELDON_ADMIN_TOKEN"
CA_ENV = "SELDON_CA"
DEFAULT_SERVER = "http://127.0.0.1:8004"
TIMEOUT = 120.0  # an apply waits until every worker has built the deployment
_TOKEN_WAYS = f"--admin-token-file FILE, ${TOKEN_FILE_ENV} or ${TOKEN_ENV}"


def server_url(given: str | None) -> str:
    url = given or os.environ.get(SERVER_ENV) or DEFAULT_SERVER
    if "://" not in url:
        url = "http://" + url
    return url.rstrip("/")


def admin_token(token_file: Path | None) -> tuple[str | None, str]:
    """The admin token to send (None: none) and where it came from, for messages."""
    if token_file is not None:
        where = f"admin token file {token_file}"
        try:
            token = token_file.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            why = exc.strerror if isinstance(exc, OSError) else "it is not UTF-8 text"
            raise CliError(f"cannot read {where}: {why}") from None
        if not token:
            raise CliError(f"{where} is empty: it must hold the admin token")
        if token.startswith("sha256:"):
            raise CliError(
                f"{where} holds the token's digest (sha256:...), which only a server can use: "
                "give the file that holds the token itself"
            )
        return token, where
    token = os.environ.get(TOKEN_ENV, "").strip()
    return (token, f"${TOKEN_ENV}") if token else (None, "")


class AdminClient:
    def __init__(
        self,
        server: str | None,
        token_file: Path | None = None,
        ca: Path | None = None,
        cert: tuple[Path, Path] | None = None,
    ) -> None:
        """`cert`: a client certificate and its key, for a server with mutual TLS."""
        self.server = server_url(server)
        self.token, self.token_from = admin_token(token_file)
        self.context: ssl.SSLContext | None = None
        if self.server.startswith("https://"):
            try:
                self.context = ssl.create_default_context(cafile=str(ca) if ca is not None else None)
            except (OSError, ssl.SSLError) as exc:
                raise CliError(f"cannot use {ca} as the CA of --ca: {exc}") from None
            if cert is not None:
                try:
                    self.context.load_cert_chain(str(cert[0]), str(cert[1]))
                except (OSError, ssl.SSLError) as exc:
                    raise CliError(f"cannot use --cert {cert[0]} with --key {cert[1]}: {exc}") from None

    def call(self, method: str, path: str, body: Any = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        headers = {"content-type": "application/json"} if data is not None else {}
        if self.token is not None:
            headers["authorization"] = f"Bearer {self.token}"
        request = urllib.request.Request(self.server + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT, context=self.context) as response:
                return json.loads(response.read() or b"null")
        except urllib.error.HTTPError as exc:
            raise CliError(self._error_sentence(exc)) from None
        except (urllib.error.URLError, ConnectionError, TimeoutError, ssl.SSLError) as exc:
            reason = getattr(exc, "reason", exc)
            if isinstance(reason, ssl.SSLCertVerificationError):
                raise CliError(
                    f"the certificate of {self.server} cannot be verified ({reason.verify_message}): "
                    f"give its CA with --ca FILE (or ${CA_ENV})"
                ) from None
            if self.context is not None and isinstance(reason, ssl.SSLError | ConnectionResetError):
                raise CliError(
                    f"the TLS handshake with {self.server} failed ({reason}); if the server asks for a "
                    "client certificate (--tls-client-ca), give --cert FILE and --key FILE"
                ) from None
            raise CliError(
                f"no Seldon Serving server answers at {self.server} ({reason}); start one with "
                f"`seldon serve`, or point --server (or ${SERVER_ENV}) at its admin port"
            ) from None

    def _error_sentence(self, exc: urllib.error.HTTPError) -> str:
        try:
            body = json.loads(exc.read())
        except (ValueError, OSError):
            body = None
        info = None
        if isinstance(body, dict) and isinstance(body.get("status"), dict):
            info = body["status"].get("info")
        if exc.code == 401:
            if self.token is None:
                return f"the admin API at {self.server} needs the admin token: give {_TOKEN_WAYS}"
            return (
                f"the admin API at {self.server} refused the token of {self.token_from}: it is not "
                f"that server's admin token (give the right one with {_TOKEN_WAYS})"
            )
        if info:
            return str(info)
        if exc.code == 404:
            return (
                f"the server at {self.server} has no admin API: point --server (or ${SERVER_ENV}) at the "
                "admin port of a `seldon serve` (127.0.0.1:8004 by default)"
            )
        return f"the server answered HTTP {exc.code} {exc.reason}"
