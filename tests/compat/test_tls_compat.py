"""The real SeldonClient (seldon-core 1.18.2) with `ssl=True` and its `channel_credentials`
against `seldon serve` and `seldon microservice` over TLS and mutual TLS, REST and gRPC.

SeldonClient reads SeldonChannelCredentials' fields differently per transport (seldon_client.py,
rest_predict_gateway and grpc_predict_gateway):
- REST: `verify=certificate_chain_file` (the CA that signed the server) and
  `cert=(root_certificates_file, private_key_file)` (the client certificate); and the scheme is
  https only when `call_credentials` are given too (`if call_credentials is None or ssl is False:
  scheme = "http"`).
- gRPC: `root_certificates=root_certificates_file` (the CA), `certificate_chain=
  certificate_chain_file` and `private_key=private_key_file` (the client certificate).
So a credentials object for one transport is wrong for the other, unless both file fields name
one bundle of the client certificate followed by the CA (what `test_one_bundle_...` proves).
`SeldonClient.microservice()` has no TLS at all (plain http:// and grpc.insecure_channel): a
microservice is reached over TLS through `predict(gateway="ambassador", gateway_prefix="")`.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests import helpers
from tests.deploy.gateway import deployment, unit, write
from tests.helpers import free_port, seldon_bin
from tests.tls_certs import Certs, make_certs

pytestmark = [pytest.mark.compat, pytest.mark.slow]

MOCK = "seldon_serving.components.builtin.MockClassifier"

# Runs in the seldon-core venv: tests/compat/driver.py, with the credentials (given as JSON
# objects) made into SeldonClient's own classes first.
WRAPPER = """
import sys
sys.path.insert(0, sys.argv[1])
import driver
from seldon_core.seldon_client import SeldonCallCredentials, SeldonChannelCredentials, SeldonClient

def client(channel_credentials=None, call_credentials=None, **options):
    if channel_credentials is not None:
        options["channel_credentials"] = SeldonChannelCredentials(**channel_credentials)
    if call_credentials is not None:
        options["call_credentials"] = SeldonCallCredentials(**call_credentials)
    return SeldonClient(**options)

driver.SeldonClient = client
driver.main()
"""


@dataclass
class Endpoint:
    http: int
    grpc: int
    mutual: bool  # wants a client certificate
    gateway: bool  # `seldon serve` (else `seldon microservice`)


def run_client(python: Path, calls: list[dict[str, Any]]) -> list[dict[str, Any]]:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    no_tensorflow = Path(__file__).parent / "no_tensorflow"  # none needed: starts 4 s faster
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(no_tensorflow), env.get("PYTHONPATH")]))
    completed = subprocess.run(
        [str(python), "-c", WRAPPER, str(Path(__file__).parent)],
        input=json.dumps(calls).encode(),
        capture_output=True,
        timeout=300,
        env=env,
    )
    assert completed.returncode == 0, completed.stderr.decode(errors="replace")[-3000:]
    results: list[dict[str, Any]] = json.loads(completed.stdout)
    return results


@contextlib.contextmanager
def tls_server(argv: list[str], endpoint: Endpoint) -> Iterator[Any]:
    with helpers.running(argv, ready_port=endpoint.grpc, timeout=60) as process:
        helpers.wait_for_port(endpoint.http, process)
        yield process


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Certs, Path, dict[str, Endpoint]]]:
    root = tmp_path_factory.mktemp("tls-compat")
    certs = make_certs(root / "certs")
    bundle = root / "certs" / "client-bundle.pem"  # the client certificate, then the CA
    bundle.write_bytes(certs.client_cert.read_bytes() + certs.ca.read_bytes())
    manifests = root / "manifests"
    write(manifests, "mock.yaml", deployment("mock", unit("mock", "MODEL", implementation="SIMPLE_MODEL")))
    endpoints = {
        f"{kind}-{mode}": Endpoint(free_port(), free_port(), mode == "mtls", kind == "gateway")
        for kind in ("gateway", "microservice")
        for mode in ("tls", "mtls")
    }
    contexts = []
    for name, endpoint in endpoints.items():
        tls = ["--tls-cert", str(certs.server_cert), "--tls-key", str(certs.server_key)]
        if endpoint.mutual:
            tls += ["--tls-client-ca", str(certs.ca)]
        ports = ["--host", "127.0.0.1", "--http-port", str(endpoint.http), "--grpc-port", str(endpoint.grpc)]
        if endpoint.gateway:
            argv = [
                seldon_bin(),
                "serve",
                str(manifests),
                "--state-dir",
                str(root / name),
                "--log-level",
                "WARNING",
            ]
            argv += ["--admin-port", str(free_port())]
        else:
            argv = [seldon_bin(), "microservice", MOCK]
        contexts.append(tls_server([*argv, *ports, *tls], endpoint))
    with contextlib.ExitStack() as stack:
        helpers.enter_all(stack, contexts)
        yield certs, bundle, endpoints


def rest_credentials(certs: Certs, mutual: bool) -> dict[str, Any]:
    # REST: certificate_chain_file is what requests verifies the server with; the client
    # certificate goes in root_certificates_file (see the module's doc).
    credentials: dict[str, Any] = {"certificate_chain_file": str(certs.ca)}
    if mutual:
        credentials |= {
            "root_certificates_file": str(certs.client_cert),
            "private_key_file": str(certs.client_key),
        }
    return credentials


def grpc_credentials(certs: Certs, mutual: bool) -> dict[str, Any]:
    credentials: dict[str, Any] = {"root_certificates_file": str(certs.ca)}
    if mutual:
        credentials |= {
            "certificate_chain_file": str(certs.client_cert),
            "private_key_file": str(certs.client_key),
        }
    return credentials


def predict(endpoint: Endpoint, transport: str, credentials: dict[str, Any] | None) -> dict[str, Any]:
    client: dict[str, Any] = {
        "gateway": "ambassador",
        "transport": transport,
        "deployment_name": "mock",
        "gateway_endpoint": f"127.0.0.1:{endpoint.http if transport == 'rest' else endpoint.grpc}",
        "payload_type": "ndarray",
        "ssl": True,
        # Without call credentials SeldonClient's REST path speaks http:// whatever `ssl` says.
        "call_credentials": {"token": "unused"},
    }
    if credentials is not None:
        client["channel_credentials"] = credentials
    kwargs: dict[str, Any] = {"data": [[1.0, 2.0]]}
    if not endpoint.gateway:
        kwargs["gateway_prefix"] = ""  # the microservice's own /api/v1.0/predictions
    return {"call": "predict", "client": client, "kwargs": kwargs}


@pytest.mark.parametrize("transport", ["rest", "grpc"])
def test_seldon_client_over_tls_and_mutual_tls(
    compat_python: Path, setup: tuple[Certs, Path, dict[str, Endpoint]], transport: str
) -> None:
    certs, _, endpoints = setup
    make = rest_credentials if transport == "rest" else grpc_credentials
    names = list(endpoints)
    calls = [predict(endpoints[name], transport, make(certs, endpoints[name].mutual)) for name in names]
    # Mutual TLS without a client certificate: refused.
    refused_names = [name for name in names if endpoints[name].mutual]
    calls += [predict(endpoints[name], transport, make(certs, False)) for name in refused_names]
    results = run_client(compat_python, calls)
    for name, result in zip(names, results, strict=False):
        assert result["success"], f"{name}: {result['msg']}"
        values = result["response"]["data"]["ndarray"]
        if endpoints[name].gateway:  # SIMPLE_MODEL's fixed answer
            assert values == [[0.1, 0.9, 0.5]], name
        else:  # MockClassifier's probability
            assert 0.0 < values[0][0] < 1.0, name
    for name, result in zip(refused_names, results[len(names) :], strict=True):
        assert not result["success"], f"{name} answered a client without a certificate"


def test_one_bundle_serves_rest_and_grpc_with_one_credentials_object(
    compat_python: Path, setup: tuple[Certs, Path, dict[str, Endpoint]]
) -> None:
    certs, bundle, endpoints = setup
    credentials = {
        "certificate_chain_file": str(bundle),
        "root_certificates_file": str(bundle),
        "private_key_file": str(certs.client_key),
    }
    calls = [
        predict(endpoints[name], transport, credentials)
        for name in ("gateway-mtls", "microservice-mtls")
        for transport in ("rest", "grpc")
    ]
    for result in run_client(compat_python, calls):
        assert result["success"], result["msg"]
