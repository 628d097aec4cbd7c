"""The graph walk with in-process nodes: what a caller sees in the answer and its meta."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from typing import Any

import numpy as np
import pytest

from seldon_serving.protocol import json_codec
from seldon_serving.protocol.errors import MicroserviceError, NodeTimeout
from seldon_serving.protocol.message import NDARRAY, TENSOR, Feedback, SeldonMessage
from tests.engine.build import build, manifest, node, predictor, user_object


def request(rows: list[list[float]], puid: str | None = None) -> SeldonMessage:
    meta = {"puid": puid} if puid else {}
    return SeldonMessage(form=NDARRAY, payload=rows, names=["x", "y"], meta=meta)


def values(msg: SeldonMessage) -> list[list[float]]:
    return np.asarray(msg.array(), dtype=float).round(6).tolist()


CHAIN = manifest(
    "chain",
    node(
        "t1",
        "TRANSFORMER",
        params={"factor": 2.0, "tag": "t1"},
        children=[
            node(
                "t2",
                "TRANSFORMER",
                params={"factor": 3.0, "tag": "t2"},
                children=[
                    node(
                        "router",
                        "ROUTER",
                        params={"branch": 1},
                        children=[
                            node("a", "MODEL", params={"tag": "a"}),
                            node("b", "MODEL", params={"offset": 100.0, "tag": "b"}),
                        ],
                    )
                ],
            )
        ],
    ),
    {"t1": "Scale", "t2": "Scale", "router": "FixedRouter", "a": "RowSum", "b": "RowSum"},
)


def test_transformer_chain_router_and_meta() -> None:
    deployment = build(CHAIN)
    answer = asyncio.run(deployment.predict(request([[1.0, 2.0]])))
    # (1+2)*2*3 = 18, then model b adds 100
    assert values(answer) == [[118.0]]
    meta = answer.meta
    assert meta["routing"] == {"t1": -1, "t2": -1, "router": 1}
    assert meta["requestPath"] == {
        "t1": "example/scale:1.0",
        "t2": "example/scale:1.0",
        "router": "example/fixedrouter:1.0",
        "b": "example/rowsum:1.0",
    }
    assert meta["tags"] == {"t1": 2.0, "t2": 3.0, "b": True}
    assert [m["key"] for m in meta["metrics"]] == ["b_calls"]
    assert len(meta["puid"]) >= 20
    assert user_object(deployment, "a").calls == 0


def test_puid_is_kept_and_the_answer_encodes_to_schema_fields_only() -> None:
    deployment = build(CHAIN)
    answer = asyncio.run(deployment.predict(request([[1.0, 1.0]], puid="my-puid")))
    assert answer.meta["puid"] == "my-puid"
    encoded = json_codec.encode_message(answer)
    assert set(encoded) <= {"data", "meta", "status"}
    assert set(encoded["meta"]) <= {"puid", "tags", "routing", "requestPath", "metrics"}


def test_feedback_follows_the_routing_of_the_response() -> None:
    deployment = build(CHAIN)
    req = request([[1.0, 2.0]])
    answer = asyncio.run(deployment.predict(req))
    asyncio.run(deployment.send_feedback(Feedback(request=req, response=answer, reward=0.75)))
    router, a, b = (user_object(deployment, n) for n in ("router", "a", "b"))
    assert router.feedback == [(0.75, 1)]
    assert b.feedback == [(0.75, None)]
    assert a.feedback == []  # the branch that did not answer hears nothing

    # without routing in the response, every branch gets it
    asyncio.run(deployment.send_feedback(Feedback(request=req, response=SeldonMessage(), reward=1.0)))
    assert len(a.feedback) == 1 and len(b.feedback) == 2


def test_random_abtest_reaches_both_branches() -> None:
    deployment = build(
        manifest(
            "ab",
            node(
                "ab",
                implementation="RANDOM_ABTEST",
                params={"ratioA": 0.5},
                children=[node("a", "MODEL", params={"tag": "a"}), node("b", "MODEL", params={"tag": "b"})],
            ),
            {"a": "RowSum", "b": "RowSum"},
        )
    )

    async def many() -> Counter[int]:
        seen: Counter[int] = Counter()
        for _ in range(200):
            answer = await deployment.predict(request([[1.0, 2.0]]))
            seen[answer.meta["routing"]["ab"]] += 1
            assert answer.meta["requestPath"]["ab"] == "RANDOM_ABTEST"  # no image: the implementation
        return seen

    seen = asyncio.run(many())
    assert set(seen) == {0, 1}
    assert 50 < seen[0] < 150


def test_average_combiner_and_user_combiner_merge_tags() -> None:
    children = [
        node("a", "MODEL", params={"tag": "a"}),
        node("b", "MODEL", params={"offset": 10.0, "tag": "b"}),
    ]
    avg = build(
        manifest(
            "avg",
            node("c", implementation="AVERAGE_COMBINER", children=children),
            {"a": "RowSum", "b": "RowSum"},
        )
    )
    answer = asyncio.run(avg.predict(request([[1.0, 2.0], [3.0, 4.0]])))
    assert values(answer) == [[8.0], [12.0]]
    assert answer.meta["routing"] == {"c": -1}
    assert answer.meta["tags"] == {"a": True, "b": True}
    assert sorted(m["key"] for m in answer.meta["metrics"]) == ["a_calls", "b_calls"]

    mx = build(
        manifest(
            "max",
            node("c", "COMBINER", children=children),
            {"c": "MaxCombiner", "a": "RowSum", "b": "RowSum"},
        )
    )
    answer = asyncio.run(mx.predict(request([[1.0, 2.0]])))
    assert values(answer) == [[13.0]]
    assert answer.meta["tags"] == {"a": True, "b": True, "combined": True}
    assert set(answer.meta["requestPath"]) == {"c", "a", "b"}


def test_output_transformer_runs_on_the_way_back() -> None:
    deployment = build(
        manifest(
            "out",
            node(
                "ot",
                "OUTPUT_TRANSFORMER",
                params={"factor": 10.0, "tag": "ot"},
                children=[node("m", "MODEL")],
            ),
            {"ot": "Scale", "m": "RowSum"},
        )
    )
    msg = SeldonMessage(form=TENSOR, payload=np.array([[1.0, 2.0]]))
    answer = asyncio.run(deployment.predict(msg))
    assert answer.form == TENSOR  # the request's data form is kept
    assert values(answer) == [[30.0]]
    assert answer.meta["routing"] == {"ot": -1}
    assert answer.meta["tags"] == {"model": True, "ot": 10.0}


def test_builtin_simple_model_and_router() -> None:
    deployment = build(
        manifest(
            "simple",
            node("r", implementation="SIMPLE_ROUTER", children=[node("m", implementation="SIMPLE_MODEL")]),
            {},
        )
    )
    answer = asyncio.run(deployment.predict(request([[1.0, 2.0]])))
    assert answer.names == ["class0", "class1", "class2"]
    assert values(answer) == [[0.1, 0.9, 0.5]]
    assert answer.meta["routing"] == {"r": 0}
    assert {m["key"] for m in answer.meta["metrics"]} == {
        "mymetric_counter",
        "mymetric_gauge",
        "mymetric_timer",
    }


def test_a_failing_node_is_named_in_the_failure() -> None:
    deployment = build(
        manifest(
            "fail",
            node("t", "TRANSFORMER", children=[node("boom", "MODEL")]),
            {"t": "Scale", "boom": "Boom"},
        )
    )
    with pytest.raises(MicroserviceError) as caught:
        asyncio.run(deployment.predict(request([[1.0, 2.0]])))
    error = caught.value
    assert error.node == "boom" and "boom on purpose" in error.info and "'boom'" in error.info
    assert error.http_status == 500
    assert error.body()["status"]["status"] == "FAILURE" and error.body()["status"]["code"] == 203


def test_a_slow_node_times_out_with_504() -> None:
    deployment = build(
        manifest(
            "slow",
            node("s", "MODEL", params={"seconds": 2.0}),
            {"s": "Sleepy"},
            annotations={"seldon.io/rest-read-timeout": "100"},
        )
    )
    started = time.monotonic()
    with pytest.raises(NodeTimeout) as caught:
        asyncio.run(deployment.predict(request([[1.0, 2.0]])))
    assert time.monotonic() - started < 1.5
    assert caught.value.http_status == 504 and "'s'" in caught.value.info


def test_traffic_split_and_shadow() -> None:
    def one(name: str, offset: float, **extra: object) -> dict:
        return predictor(name, node("m", "MODEL", params={"offset": offset}), {"m": "RowSum"}, **extra)

    deployment = build(
        manifest(
            "canary",
            predictors=[
                one("main", 0.0, traffic=75),
                one("canary", 1000.0, traffic=25),
                one("mirror", 5000.0, shadow=True),
            ],
        )
    )

    async def many() -> Counter[float]:
        seen: Counter[float] = Counter()
        for _ in range(400):
            answer = await deployment.predict(request([[1.0, 2.0]]))
            seen[values(answer)[0][0]] += 1
        # the shadow copies run on their own: wait (bounded) until the shadow has seen them all
        shadow = user_object(deployment, "m", predictor=2)
        deadline = time.monotonic() + 5
        while shadow.calls < 400 and time.monotonic() < deadline:
            await asyncio.sleep(0.001)
        return seen

    seen = asyncio.run(many())
    assert set(seen) == {3.0, 1003.0}  # the shadow never answers
    assert 50 < seen[1003.0] < 150
    assert user_object(deployment, "m", predictor=2).calls == 400


def test_feedback_reaches_the_canary_that_answered() -> None:
    def one(name: str, version: str, offset: float) -> dict:
        graph = node("m", "MODEL", params={"offset": offset})
        return predictor(name, graph, {"m": "RowSum"}, version=version, traffic=50)

    deployment = build(manifest("canary", predictors=[one("main", "1.0", 0.0), one("canary", "2.0", 1000.0)]))

    async def many() -> Counter[str]:
        answered: Counter[str] = Counter()
        for _ in range(60):
            req = request([[1.0, 2.0]])
            answer = await deployment.predict(req)
            answered["canary" if values(answer)[0][0] > 1000 else "main"] += 1
            await deployment.send_feedback(Feedback(request=req, response=answer, reward=1.0))
        return answered

    answered = asyncio.run(many())
    assert len(user_object(deployment, "m", predictor=0).feedback) == answered["main"]
    assert len(user_object(deployment, "m", predictor=1).feedback) == answered["canary"]


def test_hooks_wrap_every_node_step_of_an_installed_deployment() -> None:
    from seldon_serving.engine.plane import DataPlane

    seen: list[tuple[str, str, str, str]] = []

    def factory(deployment: Any, predictor: Any, graph_node: Any) -> Any:
        if graph_node.name == "a":  # one node without a hook
            return None

        async def hook(node: Any, step: str, given: Any, work: Any) -> Any:
            seen.append((deployment.name, node.name, step, type(given).__name__))
            return await work

        return hook

    plane = DataPlane()
    plane.hook_factories.append(factory)
    deployment = build(CHAIN)
    plane.install(deployment)
    req = request([[1.0, 2.0]])
    answer = asyncio.run(plane.predict("chain", None, req))
    assert values(answer) == [[118.0]]  # hooks change nothing
    assert seen == [
        ("chain", "t1", "predict", "SeldonMessage"),
        ("chain", "t2", "predict", "SeldonMessage"),
        ("chain", "router", "route", "SeldonMessage"),
        ("chain", "b", "predict", "SeldonMessage"),
    ]
    seen.clear()
    asyncio.run(plane.send_feedback("chain", None, Feedback(request=req, response=answer, reward=1.0)))
    assert ("chain", "router", "send-feedback", "Feedback") in seen
