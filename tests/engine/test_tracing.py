"""Tracing inside one gateway worker: a span per request and per node step, into the SDK's
in-memory exporter (the spans across processes are tests/e2e/test_tracing.py's)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from seldon_serving.engine import tracing
from seldon_serving.engine.plane import DataPlane
from seldon_serving.protocol.message import NDARRAY, Feedback, SeldonMessage
from tests.engine.build import build
from tests.engine.test_graph import CHAIN


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.enable(provider)
    try:
        yield exporter
    finally:
        tracing.disable()


def traced_plane() -> DataPlane:
    # What deploy/local.py does when the environment turns tracing on.
    plane = DataPlane()
    plane.hook_factories.append(tracing.node_hook)
    plane.request_tracer = tracing.request_span
    plane.install(build(CHAIN))
    return plane


def request(puid: str) -> SeldonMessage:
    return SeldonMessage(form=NDARRAY, payload=[[1.0, 2.0]], names=["x", "y"], meta={"puid": puid})


def by_trace(finished: tuple[ReadableSpan, ...]) -> dict[int, list[ReadableSpan]]:
    out: dict[int, list[ReadableSpan]] = {}
    for span in finished:
        assert span.context is not None
        out.setdefault(span.context.trace_id, []).append(span)
    return out


def test_one_trace_per_request_with_a_span_per_node_step(spans: InMemorySpanExporter) -> None:
    plane = traced_plane()

    async def two() -> list[SeldonMessage]:
        return list(await asyncio.gather(*(plane.predict("chain", None, request(p)) for p in ("p1", "p2"))))

    answers = asyncio.run(two())
    assert [a.meta["puid"] for a in answers] == ["p1", "p2"]  # tracing changes no answer
    traces = by_trace(spans.get_finished_spans())
    assert len(traces) == 2
    puids = set()
    for trace_spans in traces.values():
        roots = [s for s in trace_spans if s.parent is None]
        assert [s.name for s in roots] == ["chain predictions"]
        root = roots[0]
        assert root.attributes is not None and root.context is not None
        attributes = dict(root.attributes)
        puids.add(attributes.pop("seldon.puid"))
        assert attributes == {
            "seldon.deployment": "chain",
            "seldon.namespace": "default",
            "seldon.predictor": "main",
            "seldon.method": "predictions",
        }
        # The walk: t1, t2, the router (branch 1), b; each node step a child of the request.
        nodes = sorted((s for s in trace_spans if s is not root), key=lambda s: s.start_time or 0)
        assert [s.name for s in nodes] == ["t1 predict", "t2 predict", "router route", "b predict"]
        for span in nodes:
            assert span.parent is not None and span.parent.span_id == root.context.span_id
            assert span.attributes is not None and span.attributes["seldon.predictor"] == "main"
            assert span.attributes["seldon.node"] == span.name.split()[0]
    assert puids == {"p1", "p2"}


def test_feedback_span_names_the_puid_it_rewards(spans: InMemorySpanExporter) -> None:
    plane = traced_plane()
    req = request("fb-1")
    answer = asyncio.run(plane.predict("chain", None, req))
    spans.clear()
    asyncio.run(plane.send_feedback("chain", None, Feedback(request=req, response=answer, reward=1.0)))
    finished = spans.get_finished_spans()
    root = next(s for s in finished if s.parent is None)
    assert root.name == "chain feedback"
    assert root.attributes is not None and root.attributes["seldon.puid"] == "fb-1"
    assert "router send-feedback" in {s.name for s in finished}


def test_a_traceparent_the_request_came_with_is_continued(spans: InMemorySpanExporter) -> None:
    plane = traced_plane()
    incoming = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"

    async def from_an_edge() -> None:
        tracing.INCOMING.set(incoming)  # what the REST and gRPC edges do with the header
        await plane.predict("chain", None, request("tp"))

    asyncio.run(from_an_edge())
    finished = spans.get_finished_spans()
    assert {s.context.trace_id for s in finished if s.context} == {0x0AF7651916CD43DD8448EB211C80319C}
    root = next(s for s in finished if s.name == "chain predictions")
    assert root.parent is not None and root.parent.span_id == 0xB7AD6B7169203331 and root.parent.is_remote


def test_without_tracing_no_node_gets_a_hook() -> None:
    # Off (the default): the factory gives nothing, so the walk pays only its one check per step.
    assert not tracing.ON
    plane = DataPlane()
    plane.hook_factories.append(tracing.node_hook)
    deployment = build(CHAIN)
    plane.install(deployment)
    assert all(node.hooks == () for node in deployment.primary.root.walk())
    assert plane.request_tracer is None
