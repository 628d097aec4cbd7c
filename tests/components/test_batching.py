"""Adaptive batching (`components.batching`) over a real ComponentAdapter and user class: what
can be stacked, answers equal to the unbatched ones request by request, one bad request failing
alone, a model whose answers cannot be split, per-request meta, and the manifest settings'
validation."""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
import pytest

from seldon_serving.components.adapter import ComponentAdapter
from seldon_serving.components.batching import Batcher, check_batching, stack_key, why_not_batched
from seldon_serving.components.response import ComponentResponse
from seldon_serving.engine.plan import check_deployment
from seldon_serving.protocol.errors import SeldonError
from seldon_serving.protocol.json_codec import decode_message
from seldon_serving.protocol.message import SeldonMessage
from seldon_serving.spec import ManifestError
from seldon_serving.spec.loading import parse_deployment
from tests.components._util import as_json


class RowModel:
    """Row-wise: each row's answer depends on that row only; a negative value is refused."""

    def __init__(self) -> None:
        self.calls: list[int] = []  # rows per call

    def predict(self, X: np.ndarray, features_names: list[str]) -> Any:
        self.calls.append(len(X))
        if (X < 0).any():
            raise ValueError("negative values are refused")
        return ComponentResponse(X * 2 + X.sum(axis=1, keepdims=True), tags={"calls": len(self.calls)})


class SumModel:
    """Aggregates its rows: one answer row whatever it is given."""

    def __init__(self) -> None:
        self.calls: list[int] = []

    def predict(self, X: np.ndarray, features_names: list[str]) -> np.ndarray:
        self.calls.append(len(X))
        return np.asarray(X.sum(axis=0, keepdims=True))


def message(body: dict[str, Any]) -> SeldonMessage:
    return decode_message(body)


def batcher(model: Any, size: int = 64, time_ms: float = 20.0) -> Batcher:
    adapter = ComponentAdapter(model)

    async def predict(msg: SeldonMessage, raw: bool) -> SeldonMessage:
        return await adapter.predict(msg, raw=raw)

    return Batcher(predict, max_batch_size=size, max_batch_time_ms=time_ms, node="m")


async def answers(call: Any, bodies: list[dict[str, Any]]) -> list[Any]:
    """Each request's answer as a client would parse it, or its error's status and text."""

    async def one(body: dict[str, Any]) -> Any:
        try:
            return as_json(await call(message(body)))
        except SeldonError as exc:
            return ("error", exc.http_status, exc.info)

    return await asyncio.gather(*(one(b) for b in bodies))


def mixed_requests() -> list[dict[str, Any]]:
    """64 requests: ndarray (ints and floats, 3 or 4 columns, 1-3 rows), tensor, tftensor,
    named features, a 1-d array, strData, and one with a negative value."""
    bodies: list[dict[str, Any]] = []
    for i in range(64):
        width, rows = 3 + i % 2, 1 + i % 3
        values = [[float(i * 10 + r + c) for c in range(width)] for r in range(rows)]
        flat = [v for row in values for v in row]
        if i % 5 == 0:
            body: dict[str, Any] = {"data": {"tensor": {"shape": [rows, width], "values": flat}}}
        elif i % 7 == 0:
            body = {"data": {"names": [f"f{c}" for c in range(width)], "ndarray": values}}
        elif i % 11 == 0:
            body = {"data": {"ndarray": [[int(v) for v in row] for row in values]}}
        elif i % 13 == 0:
            shape = {"dim": [{"size": str(rows)}, {"size": str(width)}]}
            body = {"data": {"tftensor": {"dtype": "DT_FLOAT", "tensorShape": shape, "floatVal": flat}}}
        else:
            body = {"data": {"ndarray": values}, "meta": {"puid": f"p{i}", "tags": {"mine": i}}}
        bodies.append(body)
    bodies[9] = {"data": {"ndarray": [[1.0, -2.0, 3.0]]}, "meta": {"puid": "bad"}}
    bodies[21] = {"data": {"ndarray": [4.0, 5.0]}}  # 1-d: alone
    bodies[33] = {"strData": "hello"}  # not an array: alone (and refused by the model)
    return bodies


def test_batched_answers_equal_unbatched_answers_request_by_request() -> None:
    bodies = mixed_requests()
    alone_model = RowModel()
    alone = ComponentAdapter(alone_model)
    expected = asyncio.run(answers(alone.predict, bodies))
    batched_model = RowModel()
    batched = batcher(batched_model)
    got = asyncio.run(answers(batched.predict, bodies))

    for i, (want, have) in enumerate(zip(expected, got, strict=True)):
        if isinstance(want, dict):  # the class's per-call tag differs: it counts calls
            want["meta"].get("tags", {}).pop("calls", None)
            have["meta"].get("tags", {}).pop("calls", None)
        assert have == want, f"request {i}"
    assert got[9][:2] == ("error", 500) and "negative" in got[9][2]
    assert got[0]["data"]["tensor"]["shape"] == [1, 3]
    assert got[12]["meta"] == {"puid": "p12", "tags": {"mine": 12}}
    # Far fewer calls than requests: a few per kind, plus the failed batch's requests again alone.
    assert len(batched_model.calls) < 45, batched_model.calls
    assert max(batched_model.calls) > 10


def test_tags_a_class_returns_per_call_apply_to_every_request_of_the_batch() -> None:
    model = RowModel()
    run = batcher(model)
    bodies = [{"data": {"ndarray": [[float(i), 1.0]]}, "meta": {"puid": f"r{i}"}} for i in range(8)]
    got = asyncio.run(answers(run.predict, bodies))
    assert model.calls == [8]
    assert [a["meta"] for a in got] == [{"puid": f"r{i}", "tags": {"calls": 1}} for i in range(8)]
    assert [a["data"]["ndarray"] for a in got] == [[[3.0 * i + 1, 2.0 + i + 1]] for i in range(8)]


def test_a_full_batch_does_not_wait_for_the_batch_time() -> None:
    model = RowModel()
    run = batcher(model, size=4, time_ms=5000)
    bodies = [{"data": {"ndarray": [[float(i)]]}} for i in range(8)]

    async def timed() -> float:
        loop = asyncio.get_running_loop()
        start = loop.time()
        await answers(run.predict, bodies)
        return loop.time() - start

    assert asyncio.run(timed()) < 1.0
    assert model.calls == [4, 4]


def test_a_lone_request_waits_at_most_the_batch_time() -> None:
    model = RowModel()
    run = batcher(model, size=64, time_ms=50)

    async def timed() -> tuple[float, Any]:
        loop = asyncio.get_running_loop()
        start = loop.time()
        answer = await run.predict(message({"data": {"ndarray": [[1.0, 2.0]]}}))
        return loop.time() - start, as_json(answer)

    took, answer = asyncio.run(timed())
    assert 0.04 <= took < 0.5
    assert answer["data"]["ndarray"] == [[5.0, 7.0]]


def test_answers_that_cannot_be_split_turn_batching_off(caplog: pytest.LogCaptureFixture) -> None:
    bodies = [{"data": {"ndarray": [[float(i), 2.0 * i]]}} for i in range(16)]
    expected = asyncio.run(answers(ComponentAdapter(SumModel()).predict, bodies))
    model = SumModel()
    run = batcher(model)
    got = asyncio.run(answers(run.predict, bodies))
    again = asyncio.run(answers(run.predict, bodies))
    assert got == expected and again == expected
    assert not run.splittable
    # One batched call, its 16 requests again alone, then alone from the start.
    assert model.calls == [16] + [1] * 32
    warnings = [r.getMessage() for r in caplog.records if "cannot be split" in r.getMessage()]
    assert len(warnings) == 1 and "'m'" in warnings[0]


def test_a_cancelled_request_leaves_the_others_of_its_batch_answered() -> None:
    model = RowModel()
    run = batcher(model, size=64, time_ms=30)

    async def scenario() -> list[Any]:
        tasks = [
            asyncio.ensure_future(run.predict(message({"data": {"ndarray": [[float(i)]]}}))) for i in range(4)
        ]
        await asyncio.sleep(0.005)
        tasks[1].cancel()
        done = await asyncio.gather(*tasks, return_exceptions=True)
        return [d if isinstance(d, BaseException) else as_json(d)["data"]["ndarray"] for d in done]

    got = asyncio.run(scenario())
    assert isinstance(got[1], asyncio.CancelledError)
    assert [got[0], got[2], got[3]] == [[[0.0]], [[6.0]], [[9.0]]]


def test_what_can_be_stacked() -> None:
    def key(body: dict[str, Any]) -> Any:
        found = stack_key(message(body))
        return None if found is None else found[0]

    a = key({"data": {"ndarray": [[1.0, 2.0]]}})
    assert a is not None
    assert key({"data": {"ndarray": [[3.0, 4.0], [5.0, 6.0]]}}) == a  # more rows: same kind
    assert key({"data": {"ndarray": [[1.0, 2.0, 3.0]]}}) != a  # another trailing shape
    assert key({"data": {"ndarray": [[1, 2]]}}) != a  # ints are not floats
    assert key({"data": {"names": ["x", "y"], "ndarray": [[1.0, 2.0]]}}) != a  # other names
    assert key({"data": {"tensor": {"shape": [1, 2], "values": [1.0, 2.0]}}}) != a  # other form
    assert key({"data": {"ndarray": [["a", "bc"]]}}) == key({"data": {"ndarray": [["long", "longer"]]}})
    for alone in (
        {"data": {"ndarray": [1.0, 2.0]}},  # 1-d
        {"data": {"ndarray": [[1, "a"], [None, 2]]}},  # mixed types
        {"data": {"tensor": {"shape": [0, 2], "values": []}}},  # no rows
        {"strData": "x"},
        {"jsonData": {"a": 1}},
        {"binData": "AAE="},
    ):
        assert key(alone) is None, alone
    # Ragged (a component's answer passed on in a graph: clients' requests are refused earlier).
    assert stack_key(SeldonMessage(form="ndarray", payload=[[1.0], [2.0, 3.0]])) is None


def test_classes_with_raw_predict_are_not_batched() -> None:
    assert why_not_batched(frozenset({"predict"})) is None
    assert "predict_raw" in (why_not_batched(frozenset({"predict", "predict_raw"})) or "")
    assert "no predict" in (why_not_batched(frozenset({"route"})) or "")


def test_check_batching_says_which_setting_is_wrong() -> None:
    assert check_batching("8", "2.5", "{}") == (8, 2.5)
    with pytest.raises(ValueError, match=r"^max-batch-size is 'two': it must be a whole number"):
        check_batching("two", "1", "{}")
    with pytest.raises(ValueError, match="max-batch-size is '0'"):
        check_batching("0", "1", "{}")
    with pytest.raises(ValueError, match=r"max-batch-time-ms is '-1': it must be a number of milliseconds"):
        check_batching("2", "-1", "{}")
    with pytest.raises(ValueError, match="max-batch-time-ms is 'nan'"):
        check_batching("2", "nan", "{}")


def manifest(annotations: dict[str, str], parameters: list[dict[str, str]] | None = None) -> dict[str, Any]:
    unit = {"name": "clf", "type": "MODEL", "parameters": parameters or []}
    containers = [{"name": "clf", "env": [{"name": "MODEL_NAME", "value": "RowModel"}]}]
    return {
        "apiVersion": "machinelearning.seldon.io/v1",
        "kind": "SeldonDeployment",
        "metadata": {"name": "shop"},
        "spec": {
            "annotations": annotations,
            "predictors": [
                {"name": "main", "componentSpecs": [{"spec": {"containers": containers}}], "graph": unit}
            ],
        },
    }


def test_the_manifest_sets_batching_per_deployment_and_per_node() -> None:
    doc = manifest({"seldon.io/max-batch-size": "32", "seldon.io/max-batch-time-ms": "4"})
    (plan,) = check_deployment(parse_deployment(doc))
    assert (plan.max_batch_size, plan.max_batch_time_ms) == (32, 4.0)
    node = [{"name": "seldon.io/max-batch-size", "value": "8", "type": "INT"}]
    (plan,) = check_deployment(parse_deployment(manifest({"seldon.io/max-batch-size": "32"}, node)))
    assert (plan.max_batch_size, plan.max_batch_time_ms) == (8, 0.0)
    assert "seldon.io/max-batch-size" not in plan.parameters  # never given to the class
    (plan,) = check_deployment(parse_deployment(manifest({})))
    assert plan.max_batch_size == 1


@pytest.mark.parametrize(
    ("annotations", "parameters", "expected"),
    [
        (
            {"seldon.io/max-batch-size": "many"},
            None,
            "shop.yaml: spec.annotations.seldon.io/max-batch-size: seldon.io/max-batch-size of node 'clf' "
            "is 'many': it must be a whole number of at least 1 (1: no batching)",
        ),
        (
            {"seldon.io/max-batch-size": "4", "seldon.io/max-batch-time-ms": "-3"},
            None,
            "shop.yaml: spec.annotations.seldon.io/max-batch-time-ms: seldon.io/max-batch-time-ms of node "
            "'clf' is '-3': it must be a number of milliseconds, 0 or more",
        ),
        (
            {},
            [{"name": "seldon.io/max-batch-size", "value": "0", "type": "STRING"}],
            "shop.yaml: spec.predictors[0].graph.parameters[0].value: seldon.io/max-batch-size of node "
            "'clf' is '0': it must be a whole number of at least 1 (1: no batching)",
        ),
    ],
)
def test_bad_batching_settings_are_one_sentence_naming_the_setting_and_node(
    annotations: dict[str, str], parameters: list[dict[str, str]] | None, expected: str
) -> None:
    with pytest.raises(ManifestError) as caught:
        check_deployment(parse_deployment(manifest(annotations, parameters), source="shop.yaml"))
    assert str(caught.value) == expected


class TwoInputModel:
    """V2 with two inputs: a dict of named arrays in, two outputs out (row-wise)."""

    def __init__(self) -> None:
        self.calls: list[int] = []

    def predict(self, X: dict[str, np.ndarray], features_names: list[str]) -> dict[str, np.ndarray]:
        self.calls.append(len(X["a"]))
        if (X["a"] < 0).any():
            raise ValueError("negative values are refused")
        return {"sum": X["a"] + X["b"].sum(axis=1, keepdims=True), "first": X["a"][:, :1]}


def v2_requests() -> list[dict[str, Any]]:
    """48 V2 requests: one input (FP64, 2 or 3 columns, 1-3 rows; INT32), two inputs, a 1-d
    input (alone), and one with a negative value."""
    bodies: list[dict[str, Any]] = []
    for i in range(48):
        rows, width = 1 + i % 3, 2 + i % 2
        flat = [float(i + r * width + c) for r in range(rows) for c in range(width)]
        body: dict[str, Any] = {"id": f"req-{i}", "parameters": {"puid": f"p{i}"}}
        if i % 4 == 3:
            body["inputs"] = [
                {"name": "a", "datatype": "FP64", "shape": [rows, width], "data": flat},
                {"name": "b", "datatype": "FP64", "shape": [rows, 1], "data": [float(i)] * rows},
            ]
        elif i % 5 == 0:
            body["inputs"] = [
                {"name": "a", "datatype": "INT32", "shape": [rows, width], "data": [int(v) for v in flat]}
            ]
        else:
            body["inputs"] = [{"name": "a", "datatype": "FP64", "shape": [rows, width], "data": flat}]
        bodies.append(body)
    bodies[7]["inputs"][0]["data"][0] = -1.0  # two inputs, refused by the model
    bodies[10]["inputs"] = [{"name": "a", "datatype": "FP64", "shape": [3], "data": [1.0, 2.0, 3.0]}]
    return bodies


def test_v2_requests_are_batched_input_by_input_with_answers_equal_to_unbatched() -> None:
    from seldon_serving.protocol import v2, v2_edge

    class Model(TwoInputModel):
        def predict(self, X: Any, features_names: list[str]) -> Any:
            if isinstance(X, dict):
                return super().predict(X, features_names)
            self.calls.append(len(X))
            return X * 3

    async def run(call: Any) -> list[Any]:
        async def one(body: dict[str, Any]) -> Any:
            request = v2.decode_json(body)
            try:
                answer = await call(v2_edge.request_message(request))
            except SeldonError as exc:
                return ("error", exc.http_status)
            obj = v2.encode_json(v2_edge.answer_payload(answer, request, "m"))[0]
            return v2.loads(v2.dumps(obj))  # as a client reads it

        return await asyncio.gather(*(one(b) for b in v2_requests()))

    alone_model, batched_model = Model(), Model()
    alone = ComponentAdapter(alone_model)
    expected = asyncio.run(run(alone.predict))
    got = asyncio.run(run(batcher(batched_model).predict))
    assert got == expected
    assert got[7] == ("error", 500)
    assert got[3]["id"] == "req-3" and got[3]["parameters"]["puid"] == "p3"
    assert [o["name"] for o in got[3]["outputs"]] == ["sum", "first"]
    assert len(batched_model.calls) < 20, batched_model.calls  # 48 requests, 5 kinds + the failed batch
    assert max(batched_model.calls) > 10


def test_what_v2_requests_can_be_stacked() -> None:
    from seldon_serving.protocol import v2, v2_edge

    def key(inputs: list[dict[str, Any]]) -> Any:
        found = stack_key(v2_edge.request_message(v2.decode_json({"inputs": inputs})))
        return None if found is None else found[0]

    def fp64(name: str, shape: list[int]) -> dict[str, Any]:
        return {"name": name, "datatype": "FP64", "shape": shape, "data": [0.0] * int(np.prod(shape))}

    a = key([fp64("x", [1, 4])])
    assert a is not None and key([fp64("x", [5, 4])]) == a
    assert key([fp64("y", [1, 4])]) != a  # another input name
    assert key([fp64("x", [1, 3])]) != a  # another trailing shape
    assert key([{**fp64("x", [1, 4]), "datatype": "FP32"}]) != a
    assert key([fp64("x", [2, 4]), fp64("z", [2, 1])]) is not None
    assert key([fp64("x", [2, 4]), fp64("z", [3, 1])]) is None  # inputs disagree on rows
    assert key([fp64("x", [4])]) is None  # 1-d
    assert key([fp64("x", [0, 4])]) is None  # no rows
