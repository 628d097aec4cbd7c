"""TLS of the listening ports: the same certificate files for uvicorn (REST) and grpc.aio."""

from __future__ import annotations

import ssl
from typing import Any

import grpc

from seldon_serving.settings import TlsFiles


def uvicorn_options(files: TlsFiles) -> dict[str, Any]:
    """uvicorn.Config's TLS arguments; with a client CA, a client without a certificate it signed
    fails the handshake."""
    options: dict[str, Any] = {"ssl_certfile": str(files.cert), "ssl_keyfile": str(files.key)}
    if files.client_ca is not None:
        options["ssl_ca_certs"] = str(files.client_ca)
        options["ssl_cert_reqs"] = ssl.CERT_REQUIRED
    return options


def grpc_server_credentials(files: TlsFiles) -> grpc.ServerCredentials:
    return grpc.ssl_server_credentials(
        [(files.key.read_bytes(), files.cert.read_bytes())],
        root_certificates=files.client_ca.read_bytes() if files.client_ca is not None else None,
        require_client_auth=files.client_ca is not None,
    )
