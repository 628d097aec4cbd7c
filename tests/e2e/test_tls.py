"""TLS on every port of `seldon microservice`, `seldon serve` and `seldon engine`, mutual TLS,
and TLS from the gateway and the engine to remote graph nodes (https and secure gRPC), with a
CA made by the test.  One set of servers for the module:

- node: a microservice that wants a client certificate (mTLS) on REST, gRPC and its metrics port;
- untrusted: a microservice whose certificate another CA signed;
- gateway: `seldon serve` over TLS (set by environment variables), calling node with its client
  certificate over https and over secure gRPC, and a process-mode node over its Unix socket;
- engine: `seldon engine` with mTLS, calling node the same way (set by flags).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import ssl
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest

from seldon_serving.deploy.k8s.front import ENGINE_ADDRESS, build_forwarding_deployment
from seldon_serving.engine.remote import GrpcRunner, RestRunner
from seldon_serving.protocol import json_codec
from seldon_serving.protocol._pb import prediction_pb2 as pb
from seldon_serving.protocol._pb import prediction_pb2_grpc as pb_grpc
from seldon_serving.protocol.errors import NodeUnavailable
from seldon_serving.settings import NodeTls
from seldon_serving.spec import parse_deployment
from tests import helpers
from tests.deploy.gateway import deployment, unit, write
from tests.helpers import free_port, seldon_bin
from tests.tls_certs import Certs, make_certs

pytestmark = pytest.mark.slow

MOCK = "seldon_serving.components.builtin.MockClassifier"
X = [[1.0, 2.0]]
REQUEST = {"data": {"ndarray": X}}


@dataclass
class Ports:
    http: int
    grpc: int

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.http}"

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.grpc}"


@dataclass
class Servers:
    certs: Certs
    node: Ports
    node_metrics: int
    untrusted: Ports
    gateway: Ports
    engine: Ports
    logs: dict[str, Any]


def client_tls(certs: Certs, *, ca: Path | None = None, with_cert: bool = True) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(ca or certs.ca))
    if with_cert:
        context.load_cert_chain(str(certs.client_cert), str(certs.client_key))
    return context


def grpc_tls(certs: Certs, *, with_cert: bool = True) -> grpc.ChannelCredentials:
    if not with_cert:
        return grpc.ssl_channel_credentials(root_certificates=certs.ca.read_bytes())
    return grpc.ssl_channel_credentials(
        root_certificates=certs.ca.read_bytes(),
        private_key=certs.client_key.read_bytes(),
        certificate_chain=certs.client_cert.read_bytes(),
    )


def request_pb() -> pb.SeldonMessage:
    message = pb.SeldonMessage()
    for row in X:
        values = message.data.ndarray.values.add().list_value
        for value in row:
            values.values.add().number_value = value
    return message


def first(answer: pb.SeldonMessage) -> float:
    return float(answer.data.ndarray.values[0].list_value.values[0].number_value)


@contextlib.contextmanager
def tls_server(
    argv: list[str], ports: Ports, ready: str, context: ssl.SSLContext, **options: Any
) -> Iterator[Any]:
    """A server process, ready once `ready` answers over https with `context`; stopped at exit."""
    with helpers.running(argv, ready_port=ports.grpc, timeout=60, **options) as process:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"server exited: {helpers.log_of(process)[-2000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(ports.url + ready, verify=context, timeout=2).status_code < 500:
                    break
            if time.monotonic() > deadline:
                raise TimeoutError(f"{argv[1]} did not answer over https: {helpers.log_of(process)[-2000:]}")
            time.sleep(0.1)
        yield process


def microservice_argv(ports: Ports, cert: Path, key: Path, *more: str) -> list[str]:
    return [
        seldon_bin(),
        "microservice",
        MOCK,
        "--host",
        "127.0.0.1",
        "--http-port",
        str(ports.http),
        "--grpc-port",
        str(ports.grpc),
        "--tls-cert",
        str(cert),
        "--tls-key",
        str(key),
        *more,
    ]


def chain(rest_port: int, grpc_port: int) -> dict[str, Any]:
    """classifier (called over REST) whose output goes to classifier2 (called over gRPC)."""
    return unit(
        "classifier",
        "MODEL",
        endpoint=("REST", rest_port),
        children=[unit("classifier2", "MODEL", endpoint=("GRPC", grpc_port))],
    )


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    root = tmp_path_factory.mktemp("tls")
    certs = make_certs(root / "certs")
    node, untrusted, gw, engine = (Ports(free_port(), free_port()) for _ in range(4))
    node_metrics = free_port()

    manifests = root / "manifests"
    write(manifests, "nodes.yaml", deployment("nodes", chain(node.http, node.grpc)))
    write(
        manifests,
        "untrusted-rest.yaml",
        deployment("untrusted-rest", unit("u", "MODEL", endpoint=("REST", untrusted.http))),
    )
    write(
        manifests,
        "untrusted-grpc.yaml",
        deployment("untrusted-grpc", unit("u", "MODEL", endpoint=("GRPC", untrusted.grpc))),
    )
    write(
        manifests,
        "local.yaml",
        deployment("local", unit("doubler", "TRANSFORMER"), classes={"doubler": "Doubler"}),
        "Doubler",
    )
    predictor = {"name": "main", "graph": chain(node.http, node.grpc)}
    with contextlib.ExitStack() as stack:
        contexts = [
            tls_server(
                microservice_argv(
                    node,
                    certs.server_cert,
                    certs.server_key,
                    "--tls-client-ca",
                    str(certs.ca),
                    "--metrics-port",
                    str(node_metrics),
                ),
                node,
                "/health/ping",
                client_tls(certs),
            ),
            tls_server(
                microservice_argv(untrusted, certs.untrusted_cert, certs.untrusted_key),
                untrusted,
                "/health/ping",
                client_tls(certs, ca=certs.other_ca, with_cert=False),
            ),
            tls_server(
                [
                    seldon_bin(),
                    "serve",
                    str(manifests),
                    "--host",
                    "127.0.0.1",
                    "--http-port",
                    str(gw.http),
                    "--grpc-port",
                    str(gw.grpc),
                    "--admin-port",
                    str(free_port()),
                    "--state-dir",
                    str(root / "state"),
                    "--log-level",
                    "WARNING",
                    "--execution",
                    "process",
                ],
                gw,
                "/ping",
                client_tls(certs, with_cert=False),
                # The environment-variable form of the flags; a process node inherits it and
                # still serves its Unix socket in plain text.
                env={
                    "SELDON_TLS_CERT": str(certs.server_cert),
                    "SELDON_TLS_KEY": str(certs.server_key),
                    "SELDON_NODE_CA": str(certs.ca),
                    "SELDON_NODE_CERT": str(certs.client_cert),
                    "SELDON_NODE_KEY": str(certs.client_key),
                },
            ),
            tls_server(
                [
                    seldon_bin(),
                    "engine",
                    "--host",
                    "127.0.0.1",
                    "--http-port",
                    str(engine.http),
                    "--grpc-port",
                    str(engine.grpc),
                    "--tls-cert",
                    str(certs.server_cert),
                    "--tls-key",
                    str(certs.server_key),
                    "--tls-client-ca",
                    str(certs.ca),
                    "--node-ca",
                    str(certs.ca),
                    "--node-cert",
                    str(certs.client_cert),
                    "--node-key",
                    str(certs.client_key),
                ],
                engine,
                "/live",
                client_tls(certs),
                env={
                    "ENGINE_PREDICTOR": base64.b64encode(json.dumps(predictor).encode()).decode(),
                    "DEPLOYMENT_NAME": "dep",
                },
                cwd=root,
            ),
        ]
        started = helpers.enter_all(stack, contexts)
        names = ("node", "untrusted", "gateway", "engine")
        yield Servers(
            certs, node, node_metrics, untrusted, gw, engine, dict(zip(names, started, strict=True))
        )


@pytest.fixture(scope="module")
def expected(servers: Servers) -> float:
    """What the chain of two mock classifiers answers for X, asked of the node directly."""
    with httpx.Client(verify=client_tls(servers.certs)) as client:
        once = client.post(servers.node.url + "/predict", json=REQUEST).json()["data"]["ndarray"]
        twice = client.post(servers.node.url + "/predict", json={"data": {"ndarray": once}}).json()
    return float(twice["data"]["ndarray"][0][0])


def curl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["curl", "-sS", "--max-time", "10", *args], capture_output=True, text=True, timeout=30
    )


# --- the listening ports -------------------------------------------------------------------------


def test_microservice_rest_and_metrics_ports_speak_mutual_tls_with_curl(servers: Servers) -> None:
    certs = servers.certs
    trusted = ["--cacert", str(certs.ca), "--cert", str(certs.client_cert), "--key", str(certs.client_key)]
    body = ["-H", "content-type: application/json", "-d", json.dumps(REQUEST)]
    answered = curl(*trusted, *body, servers.node.url + "/predict")
    assert answered.returncode == 0, answered.stderr
    probability = json.loads(answered.stdout)["data"]["ndarray"][0][0]
    assert 0.0 < probability < 1.0
    # The metrics port: Prometheus' text, counting the prediction just answered.
    metrics = curl(
        *trusted, "-w", "%{http_code} %{content_type}", f"https://127.0.0.1:{servers.node_metrics}/metrics"
    )
    assert metrics.returncode == 0, metrics.stderr
    *text, status = metrics.stdout.rsplit("\n", 1)
    assert status.startswith("200 text/plain"), status
    assert "seldon_api_microservice_requests_seconds_count{" in text[0], metrics.stdout

    # No client certificate: the handshake is refused (REST and the metrics port alike).
    for url in (servers.node.url + "/predict", f"https://127.0.0.1:{servers.node_metrics}/metrics"):
        refused = curl("--cacert", str(certs.ca), *body, url)
        assert refused.returncode != 0 and refused.stdout == "", refused.stdout
    # A certificate the client does not trust (the untrusted node's): curl says so.
    distrust = curl("--cacert", str(certs.ca), servers.untrusted.url + "/health/ping")
    assert distrust.returncode == 60, distrust.stderr  # "peer certificate cannot be authenticated"
    # Plain text on a TLS port: no answer.
    plain = curl(f"http://127.0.0.1:{servers.node.http}/health/ping")
    assert plain.returncode != 0 and plain.stdout == ""


def test_microservice_rest_with_httpx_and_a_plain_text_client_refused(servers: Servers) -> None:
    certs = servers.certs
    answer = httpx.post(servers.node.url + "/predict", json=REQUEST, verify=client_tls(certs))
    assert answer.status_code == 200 and answer.json()["data"]["names"] == ["proba"]
    with pytest.raises(httpx.HTTPError):  # handshake fails: no client certificate
        httpx.post(servers.node.url + "/predict", json=REQUEST, verify=client_tls(certs, with_cert=False))
    with pytest.raises(httpx.HTTPError):  # plain text on the TLS port
        httpx.get(f"http://127.0.0.1:{servers.node.http}/health/ping", timeout=5)


def test_microservice_grpc_speaks_mutual_tls(servers: Servers) -> None:
    certs = servers.certs
    with grpc.secure_channel(servers.node.target, grpc_tls(certs)) as channel:
        answer = pb_grpc.ModelStub(channel).Predict(request_pb(), timeout=10)
    assert 0.0 < first(answer) < 1.0
    for channel in (
        grpc.secure_channel(servers.node.target, grpc_tls(certs, with_cert=False)),
        grpc.insecure_channel(servers.node.target),  # plain text on a TLS port
    ):
        with channel, pytest.raises(grpc.RpcError) as refused:
            pb_grpc.ModelStub(channel).Predict(request_pb(), timeout=5)
        assert refused.value.code() == grpc.StatusCode.UNAVAILABLE


# --- the gateway: its own ports, and TLS to remote nodes ------------------------------------------


def test_gateway_serves_tls_and_calls_remote_nodes_over_https_and_secure_grpc_with_mtls(
    servers: Servers, expected: float
) -> None:
    url = servers.gateway.url + "/seldon/nodes/api/v1.0/predictions"
    answer = httpx.post(url, json=REQUEST, verify=client_tls(servers.certs, with_cert=False), timeout=10)
    assert answer.status_code == 200, answer.text
    assert answer.json()["data"]["ndarray"][0][0] == pytest.approx(expected)
    assert set(answer.json()["meta"]["requestPath"]) == {"classifier", "classifier2"}

    with grpc.secure_channel(servers.gateway.target, grpc_tls(servers.certs, with_cert=False)) as channel:
        reply = pb_grpc.SeldonStub(channel).Predict(request_pb(), metadata=[("seldon", "nodes")], timeout=10)
    assert first(reply) == pytest.approx(expected)


def test_gateway_refuses_plain_text_clients(servers: Servers) -> None:
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"http://127.0.0.1:{servers.gateway.http}/ping", timeout=5)
    with grpc.insecure_channel(servers.gateway.target) as channel, pytest.raises(grpc.RpcError) as refused:
        pb_grpc.SeldonStub(channel).Predict(request_pb(), metadata=[("seldon", "nodes")], timeout=5)
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE


def test_a_process_node_keeps_its_plain_unix_socket_under_a_tls_gateway(servers: Servers) -> None:
    url = servers.gateway.url + "/seldon/local/api/v1.0/predictions"
    answer = httpx.post(url, json=REQUEST, verify=client_tls(servers.certs, with_cert=False), timeout=30)
    assert answer.status_code == 200, answer.text
    assert answer.json()["data"]["ndarray"] == [[2.0, 4.0]]


@pytest.mark.parametrize("name", ["untrusted-rest", "untrusted-grpc"])
def test_a_node_whose_certificate_the_ca_did_not_sign_is_a_clear_error(servers: Servers, name: str) -> None:
    url = f"{servers.gateway.url}/seldon/{name}/api/v1.0/predictions"
    answer = httpx.post(url, json=REQUEST, verify=client_tls(servers.certs, with_cert=False), timeout=30)
    assert answer.status_code == 503, answer.text
    info = answer.json()["status"]["info"]
    port = servers.untrusted.http if name == "untrusted-rest" else servers.untrusted.grpc
    assert f"node 'u' at 127.0.0.1:{port} is unreachable" in info
    assert "TLS: its certificate is not trusted" in info and "--node-ca" in info
    assert "Traceback" not in info and "ipv4:" not in info


@pytest.mark.parametrize("runner_class", [RestRunner, GrpcRunner])
def test_a_node_that_wants_a_client_certificate_says_so_when_none_is_given(
    servers: Servers, runner_class: type[RestRunner] | type[GrpcRunner]
) -> None:
    port = servers.node.http if runner_class is RestRunner else servers.node.grpc
    runner = runner_class("classifier", "127.0.0.1", port, "MODEL", 1 << 20, tls=NodeTls(ca=servers.certs.ca))

    async def call() -> None:
        try:
            await runner.transform_input(json_codec.decode_message(REQUEST))
        finally:
            await runner.close()

    with pytest.raises(NodeUnavailable) as failed:
        asyncio.run(call())
    assert str(failed.value).startswith(f"node 'classifier' at 127.0.0.1:{port} is unreachable over TLS (")
    assert str(failed.value).endswith("if it asks for a client certificate, give --node-cert and --node-key)")


# --- the engine ---------------------------------------------------------------------------------


def test_engine_serves_mutual_tls_and_calls_its_nodes_over_tls(servers: Servers, expected: float) -> None:
    certs = servers.certs
    url = servers.engine.url + "/api/v1.0/predictions"
    answer = httpx.post(url, json=REQUEST, verify=client_tls(certs), timeout=10)
    assert answer.status_code == 200, answer.text
    assert answer.json()["data"]["ndarray"][0][0] == pytest.approx(expected)
    with grpc.secure_channel(servers.engine.target, grpc_tls(certs)) as channel:
        reply = pb_grpc.SeldonStub(channel).Predict(request_pb(), timeout=10)
    assert first(reply) == pytest.approx(expected)

    with pytest.raises(httpx.HTTPError):  # no client certificate
        httpx.post(url, json=REQUEST, verify=client_tls(certs, with_cert=False), timeout=5)
    with (
        grpc.secure_channel(servers.engine.target, grpc_tls(certs, with_cert=False)) as channel,
        pytest.raises(grpc.RpcError) as refused,
    ):
        pb_grpc.SeldonStub(channel).Predict(request_pb(), timeout=5)
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE


def test_the_cluster_front_end_forwards_to_engines_over_mutual_tls(servers: Servers, expected: float) -> None:
    """`seldon serve --oauth --cluster-engines` builds these forwarding deployments: with
    --node-ca/--node-cert/--node-key its calls to the engines are https with a client certificate."""
    certs = servers.certs
    manifest = deployment("dep", chain(servers.node.http, servers.node.grpc))
    manifest["spec"]["predictors"][0]["annotations"] = {ENGINE_ADDRESS: f"127.0.0.1:{servers.engine.http}"}
    tls = NodeTls(ca=certs.ca, cert=certs.client_cert, key=certs.client_key)
    forwarding = build_forwarding_deployment(parse_deployment(manifest), node_tls=tls)

    async def call() -> dict[str, Any]:
        try:
            return json_codec.encode_message(await forwarding.predict(json_codec.decode_message(REQUEST)))
        finally:
            await forwarding.close()

    answer = asyncio.run(call())
    assert answer["data"]["ndarray"][0][0] == pytest.approx(expected)
    assert set(answer["meta"]["requestPath"]) == {"classifier", "classifier2"}
    assert forwarding.describe()[0]["nodes"][0]["runs"] == f"engine 127.0.0.1:{servers.engine.http} (TLS)"


# --- files that cannot serve TLS ------------------------------------------------------------------


def _start_fails(args: list[str]) -> str:
    """`seldon ARGS` on free ports must stop at once; its stderr."""
    completed = subprocess.run(
        [seldon_bin(), *args, "--http-port", str(free_port()), "--grpc-port", str(free_port())],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert completed.returncode != 0
    assert "Traceback" not in completed.stderr
    return completed.stderr.strip()


def test_bad_certificate_files_stop_the_server_with_one_sentence(servers: Servers, tmp_path: Path) -> None:
    certs = servers.certs
    not_pem = tmp_path / "cert.pem"
    not_pem.write_text("this is not a certificate\n")
    said = _start_fails(
        ["microservice", MOCK, "--tls-cert", str(not_pem), "--tls-key", str(certs.server_key)]
    )
    assert (
        said
        == f"error: --tls-cert {not_pem} is not a PEM certificate (no '-----BEGIN CERTIFICATE-----' block)"
    )

    said = _start_fails(
        ["microservice", MOCK, "--tls-cert", str(certs.server_cert), "--tls-key", str(certs.client_key)]
    )
    assert (
        said
        == f"error: --tls-key {certs.client_key} is not the private key of --tls-cert {certs.server_cert}"
    )

    broken = tmp_path / "ca.pem"
    broken.write_text("-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n")
    said = _start_fails(["engine", "--node-ca", str(broken)])
    assert (
        said
        == f"error: --node-ca {broken} is not a valid PEM CA certificate (its certificate does not parse)"
    )
