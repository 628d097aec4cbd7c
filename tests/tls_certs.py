"""Certificates made by the tests: a CA issuing a server certificate for 127.0.0.1 / localhost
and a client certificate, and a second CA nobody trusts issuing a server certificate too."""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

Key = ec.EllipticCurvePrivateKey


@dataclass(frozen=True)
class Certs:
    ca: Path  # the CA every server and client here trusts
    server_cert: Path  # for 127.0.0.1 and localhost, signed by `ca`
    server_key: Path
    client_cert: Path  # a client certificate signed by `ca`
    client_key: Path
    other_ca: Path  # a CA nobody here trusts
    untrusted_cert: Path  # a server certificate for 127.0.0.1 signed by `other_ca`
    untrusted_key: Path


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def _issue(
    subject: str, key: Key, issuer: x509.Name, issuer_key: Key, *, ca: bool, server: bool = False
) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
    else:
        usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    if server:
        names: list[x509.GeneralName] = [
            x509.DNSName("localhost"),
            x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
        ]
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def _write(directory: Path, name: str, cert: x509.Certificate, key: Key | None = None) -> tuple[Path, Path]:
    cert_path, key_path = directory / f"{name}.crt", directory / f"{name}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    if key is not None:
        key_path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
    return cert_path, key_path


def make_certs(directory: Path) -> Certs:
    """Write a CA, its server and client certificates, and an untrusted CA's server certificate."""
    directory.mkdir(parents=True, exist_ok=True)
    ca_key, other_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = _issue("Test CA", ca_key, _name("Test CA"), ca_key, ca=True)
    other = _issue("Other CA", other_key, _name("Other CA"), other_key, ca=True)
    keys = {name: ec.generate_private_key(ec.SECP256R1()) for name in ("server", "client", "untrusted")}
    server = _issue("127.0.0.1", keys["server"], ca.subject, ca_key, ca=False, server=True)
    client = _issue("test client", keys["client"], ca.subject, ca_key, ca=False)
    untrusted = _issue("127.0.0.1", keys["untrusted"], other.subject, other_key, ca=False, server=True)
    ca_path, _ = _write(directory, "ca", ca)
    other_path, _ = _write(directory, "other-ca", other)
    server_paths = _write(directory, "server", server, keys["server"])
    client_paths = _write(directory, "client", client, keys["client"])
    untrusted_paths = _write(directory, "untrusted", untrusted, keys["untrusted"])
    return Certs(ca_path, *server_paths, *client_paths, other_path, *untrusted_paths)
