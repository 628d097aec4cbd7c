"""Request logging (issue 16): a graph node's `logger` sends what it was asked and what it
answered as CloudEvents to a real HTTP receiver (aiohttp, started here) or as JSON lines to a
file, and no event is lost without being counted."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families

from tests import helpers
from tests.helpers import free_port, wait_until

pytestmark = pytest.mark.slow

CE_REQUEST = "io.seldon.serving.inference.request"
CE_RESPONSE = "io.seldon.serving.inference.response"


class Receiver:
    """A CloudEvents sink on 127.0.0.1, in a thread of its own; what it received survives a
    stop and a restart on the same port."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/events"
        self.events: list[tuple[dict[str, str], bytes]] = []
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._runner: web.AppRunner | None = None

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.events.append(({k.lower(): v for k, v in request.headers.items()}, body))
        return web.Response(status=200)

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_post("/events", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port, reuse_address=True).start()

    async def _stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def start(self) -> None:
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(10)

    def close(self) -> None:
        self.stop()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    found = Receiver()
    found.start()
    try:
        yield found
    finally:
        found.close()


def manifest(path: Path, name: str, graph: dict[str, Any]) -> Path:
    doc = {
        "apiVersion": "machinelearning.seldon.io/v1",
        "kind": "SeldonDeployment",
        "metadata": {"name": name},
        "spec": {"predictors": [{"name": "main", "graph": graph}]},
    }
    path.write_text(json.dumps(doc))
    return path


def counters(gateway: helpers.Gateway) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """seldon_request_logger_* samples of the gateway (its admin port's Prometheus)."""
    text = httpx.get(f"{gateway.admin_url}/metrics", timeout=10).text
    out: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name.startswith("seldon_request_logger_") and sample.name.endswith("_total"):
                key = (sample.name, tuple(sorted(sample.labels.items())))
                out[key] = out.get(key, 0.0) + sample.value
    return out


def total(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str) -> float:
    return sum(v for (n, _), v in samples.items() if n == f"seldon_request_logger_{name}_total")


def predict_many(gateway: helpers.Gateway, name: str, values: range) -> list[dict[str, Any]]:
    url = f"{gateway.url}/seldon/default/{name}/api/v1.0/predictions"
    with httpx.Client(timeout=30) as client:

        def one(i: int) -> dict[str, Any]:
            answer = client.post(url, json={"data": {"ndarray": [[float(i), 0.5]]}})
            assert answer.status_code == 200, answer.text
            body: dict[str, Any] = answer.json()
            return body

        with ThreadPoolExecutor(4) as pool:
            return list(pool.map(one, values))


def test_mode_all_sends_every_request_and_answer_as_a_cloudevent(
    start_gateway: Any, receiver: Receiver, tmp_path: Path
) -> None:
    graph = {
        "name": "model",
        "type": "MODEL",
        "implementation": "SIMPLE_MODEL",
        "logger": {"mode": "all", "url": receiver.url},
    }
    gateway = start_gateway(manifest(tmp_path / "logged.json", "logged", graph))
    answers = predict_many(gateway, "logged", range(1000))
    wait_until(lambda: len(receiver.events) >= 2000, timeout=20, what="2,000 events at the receiver")
    time.sleep(0.3)  # none more comes
    assert len(receiver.events) == 2000

    puid_of = {answer["meta"]["puid"]: i for i, answer in enumerate(answers)}
    assert len(puid_of) == 1000
    kinds: Counter[tuple[str, str]] = Counter()
    ids = set()
    for headers, body in receiver.events:
        assert headers["ce-specversion"] == "1.0"
        assert headers["content-type"] == "application/json"
        assert headers["ce-modelid"] == "model"
        assert headers["ce-inferenceservicename"] == "logged"
        assert headers["ce-namespace"] == "default"
        assert headers["ce-endpoint"] == "main"
        assert headers["ce-protocol"] == "seldon"
        assert headers["ce-source"].startswith("http://")
        assert headers["ce-source"].endswith(f":{gateway.http_port}/")
        datetime.fromisoformat(headers["ce-time"])
        ids.add(headers["ce-id"])
        i = puid_of[headers["ce-requestid"]]
        kinds[(headers["ce-requestid"], headers["ce-type"])] += 1
        message = json.loads(body)
        if headers["ce-type"] == CE_REQUEST:
            assert message["data"]["ndarray"] == [[float(i), 0.5]]  # what the node was given
        else:
            assert headers["ce-type"] == CE_RESPONSE
            assert message["data"] == {"names": ["class0", "class1", "class2"], "ndarray": [[0.1, 0.9, 0.5]]}
    assert len(ids) == 2000  # every event its own id
    assert set(kinds.values()) == {1} and len(kinds) == 2000  # one request and one answer per puid

    samples = counters(gateway)
    assert total(samples, "events") == 2000
    assert total(samples, "delivered") == 2000
    assert total(samples, "dropped") == 0


def test_modes_request_and_response_and_the_file_sink(start_gateway: Any, tmp_path: Path) -> None:
    default_file = tmp_path / "default.jsonl"
    own_file = tmp_path / "second.jsonl"
    graph = {
        "name": "first",
        "type": "MODEL",
        "implementation": "SIMPLE_MODEL",
        "logger": {"mode": "request"},  # no url: the server's --request-logger-url
        "children": [
            {
                "name": "second",
                "type": "MODEL",
                "implementation": "SIMPLE_MODEL",
                "logger": {"mode": "response", "url": f"file://{own_file}"},
            },
            # not logged at all
        ],
    }
    gateway = start_gateway(
        manifest(tmp_path / "chain.json", "chain", graph),
        args=["--request-logger-url", f"file://{default_file}"],
    )
    answers = predict_many(gateway, "chain", range(20))

    def lines(path: Path) -> list[dict[str, Any]]:
        return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []

    both = lambda: len(lines(default_file)) >= 20 and len(lines(own_file)) >= 20  # noqa: E731
    wait_until(both, timeout=10, what="20 lines in each file")
    time.sleep(0.3)
    first, second = lines(default_file), lines(own_file)
    assert len(first) == len(second) == 20
    puids = {answer["meta"]["puid"] for answer in answers}
    assert {e["type"] for e in first} == {CE_REQUEST} and {e["modelid"] for e in first} == {"first"}
    assert {e["type"] for e in second} == {CE_RESPONSE} and {e["modelid"] for e in second} == {"second"}
    for event in first + second:
        assert event["specversion"] == "1.0"
        assert event["inferenceservicename"] == "chain"
        assert event["endpoint"] == "main"
        assert event["datacontenttype"] == "application/json"
    assert {e["requestid"] for e in first} == puids == {e["requestid"] for e in second}
    assert sorted(e["data"]["data"]["ndarray"][0][0] for e in first) == [float(i) for i in range(20)]
    assert all(e["data"]["data"]["ndarray"] == [[0.1, 0.9, 0.5]] for e in second)


def test_a_sink_stopped_and_restarted_loses_no_event_uncounted(
    start_gateway: Any, receiver: Receiver, tmp_path: Path
) -> None:
    graph = {
        "name": "model",
        "type": "MODEL",
        "implementation": "SIMPLE_MODEL",
        "logger": {"mode": "all", "url": receiver.url},
    }
    gateway = start_gateway(
        manifest(tmp_path / "logged.json", "logged", graph), args=["--request-logger-queue-size", "50"]
    )
    predict_many(gateway, "logged", range(100))
    receiver.stop()
    started = time.perf_counter()
    predict_many(gateway, "logged", range(200))  # the sink is down: predictions go on
    down = time.perf_counter() - started
    receiver.start()
    predict_many(gateway, "logged", range(100))

    def settled() -> bool:
        samples = counters(gateway)
        return total(samples, "events") == total(samples, "delivered") + total(samples, "dropped")

    wait_until(settled, timeout=20, what="every event delivered or dropped")
    samples = counters(gateway)
    received = {headers["ce-id"] for headers, _ in receiver.events}
    assert total(samples, "events") == 800
    assert total(samples, "dropped") > 0  # the queue (50) overflowed while the sink was down
    assert total(samples, "delivered") == len(received)
    assert len(received) + total(samples, "dropped") == 800
    assert down < 10  # predictions did not wait for the sink
    assert "dropped" in gateway.log()  # said in the log, not only counted
