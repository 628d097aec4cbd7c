"""Fault tolerance (issue 5): remote components that die, hang and come back; SIGTERM drains
in-flight requests; a kill -9 of the whole server loses nothing it acknowledged."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import threading
import time
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
import yaml

from seldon_serving.protocol._pb import prediction_pb2 as pb
from seldon_serving.protocol._pb import prediction_pb2_grpc as pb_grpc
from tests.deploy.gateway import USER_MODELS, deployment, example_model, gateway, unit, write
from tests.e2e.test_seed_examples import MOCK, generate
from tests.helpers import Gateway, Server, free_port, microservice, seldon_bin, wait_until

pytestmark = pytest.mark.slow

FAULT_MODELS = Path(__file__).resolve().parent / "models"
X = {"data": {"ndarray": [[1.0, 2.0, 3.0, 4.0]]}}
TIMEOUT_MS = 1000  # the remote deployments' seldon.io/{rest,grpc}-read-timeout
# Slack over the node timeout for a whole gateway round trip on a busy CI machine.
SLACK = 1.5
DOWN = 2.0  # seconds a component stays dead or stopped under the request stream
ARRIVED = "request arrived"  # what Sleepy and SlowMock print when a request reaches them


def killpg(process: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, sig)


@dataclass
class Component:
    """A `seldon microservice` on fixed ports, so it can be killed and started again there."""

    model: str
    service_type: str
    cwd: Path
    parameters: str | None = None
    http: int = field(default_factory=free_port)
    grpc: int = field(default_factory=free_port)
    server: Server | None = None

    @property
    def process(self) -> subprocess.Popen[bytes] | None:
        return self.server.process if self.server else None

    def start(self, stack: contextlib.ExitStack) -> None:
        args = ["--parameters", self.parameters] if self.parameters else []
        self.server = stack.enter_context(
            microservice(
                self.model,
                *args,
                cwd=self.cwd,
                service_type=self.service_type,
                http_port=self.http,
                grpc_port=self.grpc,
            )
        )

    def kill(self) -> None:
        assert self.process is not None
        killpg(self.process, signal.SIGKILL)
        self.process.wait(10)

    def signal(self, sig: signal.Signals) -> None:
        assert self.process is not None
        killpg(self.process, sig)


@dataclass
class Outcome:
    deployment: str
    status: int
    seconds: float
    info: str


def predict(client: httpx.Client, url: str, name: str) -> Outcome:
    start = time.monotonic()
    r = client.post(f"{url}/seldon/{name}/api/v0.1/predictions", json=X)
    seconds = time.monotonic() - start
    info = ""
    if r.status_code != 200:
        status = r.json()["status"]
        assert status["status"] == "FAILURE", r.text
        info = status["info"]
    return Outcome(name, r.status_code, seconds, info)


class Traffic(threading.Thread):
    """A steady stream of predictions to some deployments, bounded in count and time."""

    def __init__(self, url: str, names: list[str], *, seconds: float = 60.0, count: int = 4000) -> None:
        super().__init__(daemon=True)
        self.url, self.names, self.seconds, self.count = url, names, seconds, count
        self.outcomes: list[Outcome] = []
        self.error: BaseException | None = None
        self.done = threading.Event()

    def run(self) -> None:
        deadline = time.monotonic() + self.seconds
        try:
            with httpx.Client(timeout=30) as client:
                for index in range(self.count):
                    if self.done.is_set() or time.monotonic() > deadline:
                        break
                    self.outcomes.append(predict(client, self.url, self.names[index % len(self.names)]))
                    time.sleep(0.01)
        except BaseException as exc:  # re-raised by finish(), in the test's thread
            self.error = exc

    def finish(self) -> list[Outcome]:
        self.done.set()
        self.join(60)
        if self.error is not None:
            raise AssertionError(f"the request stream broke: {self.error!r}") from self.error
        return self.outcomes


def until_ok(client: httpx.Client, url: str, name: str, within: float) -> float:
    """Seconds until `name` answers 200 again (fails after `within`)."""
    start = time.monotonic()
    last: Outcome | None = None
    while time.monotonic() - start < within:
        last = predict(client, url, name)
        if last.status == 200:
            return time.monotonic() - start
        time.sleep(0.05)
    raise AssertionError(f"{name} did not recover within {within} s: {last}")


def fails_naming(outcome: Outcome, status: int, node: str) -> None:
    assert outcome.status == status, outcome
    assert f"'{node}'" in outcome.info, outcome
    assert outcome.seconds < TIMEOUT_MS / 1000 + SLACK, outcome


def all_ok(client: httpx.Client, url: str, name: str, times: int) -> None:
    outcomes = [predict(client, url, name) for _ in range(times)]
    assert [o.status for o in outcomes] == [200] * times, [o for o in outcomes if o.status != 200]


def with_timeouts(doc: dict[str, Any]) -> dict[str, Any]:
    doc["spec"]["annotations"] = {
        "seldon.io/rest-read-timeout": str(TIMEOUT_MS),
        "seldon.io/grpc-read-timeout": str(TIMEOUT_MS),
    }
    return doc


# --- 1. remote components die, hang and come back -------------------------------------------------


def test_a_dead_or_hung_component_fails_only_its_deployment_until_it_is_back(tmp_path: Path) -> None:
    doubler = Component("Doubler", "TRANSFORMER", USER_MODELS)  # reached over gRPC
    linear = Component("LinearSoftmax", "MODEL", USER_MODELS)  # reached over REST
    sleepy = Component("Sleepy", "MODEL", FAULT_MODELS, '[{"name":"seconds","value":"3","type":"FLOAT"}]')
    graph = unit(
        "doubler",
        "TRANSFORMER",
        endpoint=("GRPC", doubler.grpc),
        children=[unit("linear", "MODEL", endpoint=("REST", linear.http))],
    )
    manifests = tmp_path / "manifests"
    write(manifests, "a.yaml", with_timeouts(deployment("a", graph)))
    write(manifests, "b.yaml", example_model("b"))  # in-process
    write(
        manifests,
        "c.yaml",
        with_timeouts(deployment("c", unit("sleepy", "MODEL", endpoint=("REST", sleepy.http)))),
    )

    with contextlib.ExitStack() as stack:
        for component in (doubler, linear, sleepy):
            component.start(stack)
        # Whatever happens, no component stays stopped (SIGTERM cannot reach a stopped process).
        for component in (doubler, linear, sleepy):
            stack.callback(lambda c=component: c.process and killpg(c.process, signal.SIGCONT))
        gw = stack.enter_context(gateway(manifests, state_dir=tmp_path / "state"))
        client = stack.enter_context(httpx.Client(timeout=30))
        all_ok(client, gw.url, "a", 3)

        traffic = Traffic(gw.url, ["a", "b"])
        traffic.start()
        try:
            recovery: dict[str, float] = {}
            for component, node in ((linear, "linear"), (doubler, "doubler")):
                component.kill()
                fails_naming(predict(client, gw.url, "a"), 503, node)
                # A deliberate duration of the scenario, not a wait for something: the component
                # stays dead this long while the stream keeps asking.
                time.sleep(DOWN)
                fails_naming(predict(client, gw.url, "a"), 503, node)
                component.start(stack)  # same ports
                recovery[f"{node} restarted"] = until_ok(client, gw.url, "a", within=3.0)
                all_ok(client, gw.url, "a", 20)  # no stale pooled connection fails afterwards

            for component, node in ((linear, "linear"), (doubler, "doubler")):
                component.signal(signal.SIGSTOP)
                fails_naming(predict(client, gw.url, "a"), 504, node)
                time.sleep(DOWN)  # deliberate, as above: stopped this long under the stream
                fails_naming(predict(client, gw.url, "a"), 504, node)
                component.signal(signal.SIGCONT)
                recovery[f"{node} continued"] = until_ok(client, gw.url, "a", within=3.0)
                all_ok(client, gw.url, "a", 5)

            fails_naming(predict(client, gw.url, "c"), 504, "sleepy")  # a user class that hangs
            all_ok(client, gw.url, "a", 3)
        finally:
            outcomes = traffic.finish()

        b = [o for o in outcomes if o.deployment == "b"]
        a = [o for o in outcomes if o.deployment == "a"]
        assert len(b) > 50 and all(o.status == 200 for o in b), [o for o in b if o.status != 200][:5]
        assert {o.status for o in a} <= {200, 503, 504}
        assert all("'linear'" in o.info or "'doubler'" in o.info for o in a if o.status != 200)
        slowest = max(o.seconds for o in a)
        assert slowest < TIMEOUT_MS / 1000 + SLACK, f"a request to A took {slowest:.2f} s"
        print(f"recovery seconds: {recovery}; {len(a)} + {len(b)} streamed, slowest A {slowest:.2f} s")


# --- 2. SIGTERM drains in-flight requests ----------------------------------------------------------


def refused(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1.0):
            return False
    except ConnectionRefusedError:
        return True


class InFlight(threading.Thread):
    """One slow request, started now, whose outcome is kept."""

    def __init__(self, call: Any) -> None:
        super().__init__(daemon=True)
        self.call = call
        self.result: Any = None
        self.error: BaseException | None = None
        self.start()

    def run(self) -> None:
        try:
            self.result = self.call()
        except BaseException as exc:  # reported by the test
            self.error = exc

    def outcome(self) -> Any:
        self.join(30)
        if self.error is not None:
            raise self.error
        return self.result


def grpc_predict(target: str, deployment: str) -> pb.SeldonMessage:
    request = pb.SeldonMessage()
    request.data.ndarray.extend([[1.0, 2.0]])
    with grpc.insecure_channel(target) as channel:
        return pb_grpc.SeldonStub(channel).Predict(request, metadata=[("seldon", deployment)], timeout=30)


def test_sigterm_drains_in_flight_requests_then_exits_0(tmp_path: Path) -> None:
    slow = Component("Sleepy", "MODEL", FAULT_MODELS, '[{"name":"seconds","value":"3","type":"FLOAT"}]')
    manifests = tmp_path / "manifests"
    # the mock classifier, 3 s per request, as a user class that says when a request reaches it
    write(
        manifests,
        "slow.yaml",
        deployment("slow", unit("slow", "MODEL", params={"delaySecs": 3}), {"slow": "SlowMock"}),
    )
    shutil.copy(FAULT_MODELS / "SlowMock.py", manifests)
    with contextlib.ExitStack() as stack:
        slow.start(stack)
        gw = stack.enter_context(gateway(manifests, state_dir=tmp_path / "state", workers=2))
        assert slow.server is not None
        servers = {
            "microservice": (slow.server.process, slow.http, slow.grpc),
            "gateway": (gw.process, gw.http_port, gw.grpc_port),
        }

        started = time.monotonic()
        requests = {
            "microservice REST": InFlight(
                lambda: httpx.post(f"http://127.0.0.1:{slow.http}/predict", json=X, timeout=30)
            ),
            "gateway REST": InFlight(
                lambda: httpx.post(f"{gw.url}/seldon/slow/api/v0.1/predictions", json=X, timeout=30)
            ),
            "gateway gRPC": InFlight(lambda: grpc_predict(gw.grpc, "slow")),
        }
        # every request has reached its model (which takes 3 s): each model says so in its log
        wait_until(lambda: slow.server.log().count(ARRIVED) == 1, "the microservice's request arrived")
        wait_until(lambda: gw.log().count(ARRIVED) == 2, "the gateway's two requests arrived")
        for process, _, _ in servers.values():
            process.send_signal(signal.SIGTERM)  # the main process only, as an orchestrator does
        for name, (process, http_port, _) in servers.items():
            # closes its port at once, yet stays to finish the request
            wait_until(
                lambda port=http_port: refused(port), f"{name} still accepts connections while draining"
            )
            assert process.poll() is None, f"{name} exited before its in-flight request was done"

        for name, request in requests.items():
            answer = request.outcome()
            if isinstance(answer, httpx.Response):
                assert answer.status_code == 200, (name, answer.text)
            else:
                assert list(answer.data.names) == ["proba"], name
        assert time.monotonic() - started >= 3.0
        for name, (process, http_port, grpc_port) in servers.items():
            assert process.wait(15) == 0, name
            assert refused(http_port) and refused(grpc_port), name


# --- 3. kill -9 of the whole server loses nothing it acknowledged -----------------------------------

PLACEHOLDER = "zzdepzz"


@dataclass
class Acknowledged:
    """What the server answered 2xx to (and what was sent at all), per client thread."""

    deployments: list[str] = field(default_factory=list)
    tokens: list[tuple[str, str]] = field(default_factory=list)  # (token, node its deployment runs)
    feedback_sent: int = 0
    feedback_acked: int = 0
    rows_sent: int = 0
    rows_acked: int = 0
    errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)  # `+=` from two threads can lose counts

    def count(self, name: str) -> None:
        with self.lock:
            setattr(self, name, getattr(self, name) + 1)


class Front:
    def __init__(self, url: str) -> None:
        self.url = url
        self.client = httpx.Client(timeout=20)

    def token(self, key: str, secret: str) -> httpx.Response:
        auth = base64.b64encode(f"{key}:{secret}".encode()).decode()
        return self.client.post(
            f"{self.url}/oauth/token",
            headers={"Authorization": f"Basic {auth}"},
            data={"grant_type": "client_credentials"},
        )

    def call(self, token: str, path: str, body: dict[str, Any]) -> httpx.Response:
        return self.client.post(self.url + path, json=body, headers={"Authorization": f"Bearer {token}"})


def crash_gateway(directory: Path, **ports: int) -> AbstractContextManager[Gateway]:
    return gateway(
        directory / "manifests", state_dir=directory / "state", args=["--oauth"], workers=2, **ports
    )


def load(
    url: str, admin_url: str, template: str, stop: threading.Event, acked: Acknowledged
) -> list[threading.Thread]:
    """Client threads streaming applies (on the admin port) + tokens, bandit feedback and detector
    rows until `stop`."""
    deadline = time.monotonic() + 30  # bounded even if nobody stops them

    def guarded(body: Any) -> Any:
        def run() -> None:
            front = Front(url)
            try:
                while not stop.is_set() and time.monotonic() < deadline:
                    body(front)
            except httpx.HTTPError as exc:  # the server was killed: expected, and the end of this client
                acked.errors.append(f"{type(exc).__name__}: {exc}")
            finally:
                front.client.close()

        return threading.Thread(target=run, daemon=True)

    counter = iter(range(10_000))

    def apply_and_token(front: Front) -> None:
        name = f"dep{next(counter)}"
        manifest = yaml.safe_load(template.replace(PLACEHOLDER, name))["items"][-1]
        r = front.client.put(f"{admin_url}/admin/deployments", json={"manifest": manifest})
        if r.status_code // 100 != 2:
            return
        acked.deployments.append(name)
        r = front.token(f"key-{name}", f"secret-{name}")
        if r.status_code == 200:
            acked.tokens.append((r.json()["access_token"], name))

    def mab_token(front: Front) -> None:
        r = front.token("mab-key", "mab-secret")
        if r.status_code == 200:
            acked.tokens.append((r.json()["access_token"], "eg-router"))

    mab = Front(url).token("mab-key", "mab-secret").json()["access_token"]
    out = Front(url).token("out-key", "out-secret").json()["access_token"]

    def feedback(front: Front) -> None:
        r = front.call(mab, "/api/v0.1/predictions", X)
        if r.status_code != 200:
            return
        answer = r.json()  # a fresh prediction: a distinct puid for every feedback
        acked.count("feedback_sent")
        r = front.call(mab, "/api/v0.1/feedback", {"request": X, "response": answer, "reward": 1.0})
        if r.status_code == 200:
            acked.count("feedback_acked")

    def observe(front: Front) -> None:
        acked.count("rows_sent")
        r = front.call(out, "/api/v0.1/predictions", X)
        if r.status_code == 200:
            acked.count("rows_acked")

    return [guarded(body) for body in (apply_and_token, mab_token, feedback, feedback, observe)]


def node_states(listing: Any) -> dict[str, dict[str, Any]]:
    """node name -> the state `seldon get -o json` shows for it (router counts, detector counts)."""
    found: dict[str, dict[str, Any]] = {}

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            if isinstance(value.get("state"), dict) and "name" in value:
                found[value["name"]] = value["state"]
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    walk(listing)
    return found


def test_kill_9_of_the_whole_server_loses_nothing_acknowledged(tmp_path: Path) -> None:
    manifests = tmp_path / "manifests"
    manifests.mkdir()
    mab = ["mab", "--imageA", MOCK, "--imageB", MOCK]
    generate(manifests, mab, "mab", "--oauth-key", "mab-key", "--oauth-secret", "mab-secret")
    detector = ["outlier-detector", "--image", MOCK]
    generate(manifests, detector, "out", "--oauth-key", "out-key", "--oauth-secret", "out-secret")
    template = generate(
        tmp_path,
        ["serve-simple", "--image", MOCK],
        PLACEHOLDER,
        "--oauth-key",
        f"key-{PLACEHOLDER}",
        "--oauth-secret",
        f"secret-{PLACEHOLDER}",
    ).read_text()
    acked = Acknowledged()
    with contextlib.ExitStack() as stack:
        server = stack.enter_context(crash_gateway(tmp_path))
        stop = threading.Event()
        threads = load(server.url, server.admin_url, template, stop, acked)
        for thread in threads:
            thread.start()
        # Mid-load: once every kind of write has been acknowledged (polled), then a random
        # stretch of further load, so that the kill lands at a moment nobody chose (a deliberate
        # duration of the scenario).
        wait_until(
            lambda: acked.deployments and acked.tokens and acked.feedback_acked and acked.rows_acked,
            "every kind of write acknowledged under load",
            timeout=20,
        )
        time.sleep(random.uniform(0.0, 2.5))
        killpg(server.process, signal.SIGKILL)  # parent and both workers at once, mid-load
        server.process.wait(10)
        stop.set()
        for thread in threads:
            thread.join(30)
        assert not any(thread.is_alive() for thread in threads)
        assert acked.deployments and acked.tokens and acked.feedback_acked and acked.rows_acked, acked

        ports = {"http_port": server.http_port, "grpc_port": server.grpc_port}
        restarted = stack.enter_context(crash_gateway(tmp_path, **ports))  # same state dir and ports
        front = Front(server.url)
        stack.callback(front.client.close)
        listing = subprocess.run(
            [seldon_bin(), "get", "-o", "json", "--server", restarted.admin_url],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        ).stdout
        parsed = json.loads(listing)
        listed = {item["metadata"]["name"] for item in parsed["items"]}
        missing = set(acked.deployments) - listed
        assert not missing, f"acknowledged deployments lost: {sorted(missing)}"

        for token, node in acked.tokens:
            r = front.call(token, "/api/v0.1/predictions", X)
            assert r.status_code == 200, f"an acknowledged token no longer works: {r.text}"
            path = r.json()["meta"]["requestPath"]
            assert node in path, (node, path)

        states = node_states(parsed)
        tries = sum(branch["tries"] for branch in states["eg-router"]["branches"])
        assert acked.feedback_acked <= tries <= acked.feedback_sent, (acked, tries)
        observations = states["outlier-detector"]["observations"]
        assert acked.rows_acked <= observations <= acked.rows_sent, (acked, observations)
        print(
            f"acknowledged before the kill: {len(acked.deployments)} applies, {len(acked.tokens)} tokens,"
            f" {acked.feedback_acked}/{acked.feedback_sent} feedbacks (router tries {tries}),"
            f" {acked.rows_acked}/{acked.rows_sent} detector rows (observations {observations})"
        )
