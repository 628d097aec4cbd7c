"""TLS of the listening ports: the same certificate files for uvicorn (REST) and grpc.aio.

The files are checked once, before any port is taken (`check_server_files`, `check_node_files`):
a file that is not PEM, or a key that does not match its certificate, stops the server with
one sentence naming the file, instead of every forked worker failing its handshake setup (or
gRPC's bind) again and again."""

from __future__ import annotations

import re
import ssl
from pathlib import Path
from typing import Any

import grpc

from seldon_serving.protocol.errors import ServingError
from seldon_serving.settings import NodeTls, TlsFiles


class TlsFileError(ServingError):
    """A certificate, key or CA file that cannot be used; the sentence names the file and the flag."""


_CERT_BLOCK = re.compile(rb"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", re.S)
_KEY_BLOCK = re.compile(rb"-----BEGIN ([A-Z ]*)PRIVATE KEY-----.+?-----END \1PRIVATE KEY-----", re.S)


def _read(path: Path, flag: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise TlsFileError(f"{flag} {path} cannot be read ({exc.strerror})") from None


def _check_certificates(path: Path, flag: str, what: str) -> None:
    """`path` holds one or more PEM certificates that OpenSSL accepts."""
    blocks = _CERT_BLOCK.findall(_read(path, flag))
    if not blocks:
        raise TlsFileError(f"{flag} {path} is not a PEM {what} (no '-----BEGIN CERTIFICATE-----' block)")
    try:
        ssl.create_default_context(cadata=b"\n".join(blocks).decode("ascii"))
    except (ssl.SSLError, UnicodeDecodeError, ValueError):
        raise TlsFileError(
            f"{flag} {path} is not a valid PEM {what} (its certificate does not parse)"
        ) from None


def _check_pair(cert: Path, key: Path, cert_flag: str, key_flag: str) -> None:
    """`key` is an unencrypted PEM private key, and the private key of `cert`'s first certificate."""
    _check_certificates(cert, cert_flag, "certificate")
    text = _read(key, key_flag)
    found = _KEY_BLOCK.search(text)
    if found is None:
        raise TlsFileError(
            f"{key_flag} {key} is not a PEM private key (no '-----BEGIN PRIVATE KEY-----' block)"
        )
    if found.group(1) == b"ENCRYPTED " or b"Proc-Type: 4,ENCRYPTED" in found.group(0):
        raise TlsFileError(f"{key_flag} {key} is encrypted with a passphrase: give the key unencrypted")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        # A password callable: OpenSSL must never stop to prompt on the terminal.
        context.load_cert_chain(str(cert), str(key), password=lambda: b"")
    except ssl.SSLError as exc:
        if "KEY_VALUES_MISMATCH" in str(exc) or "key values mismatch" in str(exc):
            raise TlsFileError(f"{key_flag} {key} is not the private key of {cert_flag} {cert}") from None
        raise TlsFileError(f"{key_flag} {key} is not a valid PEM private key ({exc.reason or exc})") from None


def check_server_files(files: TlsFiles) -> None:
    """TlsFileError (one sentence naming the file) unless every file of `files` can serve TLS."""
    _check_pair(files.cert, files.key, "--tls-cert", "--tls-key")
    if files.client_ca is not None:
        _check_certificates(files.client_ca, "--tls-client-ca", "CA certificate")


def check_node_files(files: NodeTls) -> None:
    """TlsFileError (one sentence naming the file) unless the remote-node TLS files can be used."""
    if files.ca is not None:
        _check_certificates(files.ca, "--node-ca", "CA certificate")
    if files.cert is not None and files.key is not None:
        _check_pair(files.cert, files.key, "--node-cert", "--node-key")


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
