"""route() and send_feedback(): branch encoding and the three historical feedback signatures."""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import pytest

from seldon_serving.components.adapter import ComponentAdapter
from seldon_serving.protocol.errors import BadRequest, NotImplementedByComponent
from seldon_serving.protocol.json_codec import decode_message
from tests.components._util import as_json, feedback, run

NDARRAY_REQ = {
    "data": {"names": ["a", "b"], "ndarray": [[1.0, 2.0]]},
    "meta": {"puid": "p9", "tags": {"x": 1}},
}
TENSOR_REQ = {"data": {"tensor": {"shape": [1, 2], "values": [1.0, 2.0]}}}


class Fixed:
    def __init__(self, branch: Any) -> None:
        self.branch = branch

    def route(self, features: Any, feature_names: list[str]) -> Any:
        return self.branch


def route(obj: Any, request: dict[str, Any]) -> dict[str, Any]:
    return as_json(run(ComponentAdapter(obj).route(decode_message(request))))


def test_branch_comes_back_as_1x1_array_in_the_requests_form() -> None:
    answer = route(Fixed(1), NDARRAY_REQ)
    assert answer["data"] == {"names": ["t:0"], "ndarray": [[1]]}
    assert route(Fixed(0), TENSOR_REQ)["data"] == {
        "names": ["t:0"],
        "tensor": {"shape": [1, 1], "values": [0.0]},
    }


def test_router_answer_carries_puid_but_not_request_tags() -> None:
    # seldon-core builds the routing answer without the request meta (the engine merges it).
    assert route(Fixed(0), NDARRAY_REQ)["meta"] == {"puid": "p9"}


def test_numpy_integer_and_minus_one_are_accepted() -> None:
    assert route(Fixed(np.int64(2)), NDARRAY_REQ)["data"]["ndarray"] == [[2]]
    assert route(Fixed(-1), NDARRAY_REQ)["data"]["ndarray"] == [[-1]]


@pytest.mark.parametrize("bad", [1.0, "1", True, [1], None])
def test_non_int_branch_is_rejected(bad: Any) -> None:
    with pytest.raises(BadRequest, match="Routing response must be int but got"):
        route(Fixed(bad), NDARRAY_REQ)


def test_route_missing_is_not_implemented() -> None:
    class Model:
        def predict(self, X: Any, names: list[str]) -> Any:
            return X

    adapter = ComponentAdapter(Model())
    assert not adapter.implements("route")
    with pytest.raises(NotImplementedByComponent, match=r"^Route not defined$"):  # Seldon's words
        run(adapter.route(decode_message(NDARRAY_REQ)))


def test_route_gets_meta_when_it_asks_for_it() -> None:
    class MetaRouter:
        def route(self, features: Any, names: list[str], meta: dict[str, Any] | None = None) -> int:
            assert meta is not None
            return int(meta["tags"]["x"])

    assert route(MetaRouter(), NDARRAY_REQ)["data"]["ndarray"] == [[1]]


# --- feedback --------------------------------------------------------------------------------

FEEDBACK = {
    "request": {"data": {"names": ["a", "b"], "ndarray": [[1.0, 2.0]]}},
    "response": {"meta": {"routing": {"eg-router": 1}}},
    "reward": 1,
    "truth": {"data": {"ndarray": [[0.0, 1.0]]}},
}


class Recorder:
    calls: list[dict[str, Any]]

    def __init__(self) -> None:
        self.calls = []


class V1(Recorder):
    def send_feedback(
        self, features: Any, feature_names: Any, reward: Any, truth: Any, routing: Any = None
    ) -> None:
        self.calls.append(
            dict(features=features, names=feature_names, reward=reward, truth=truth, routing=routing)
        )


class OldRouter(Recorder):  # seldon 0.2.x routers, e.g. mab_epsilon_greedy:1.1
    def send_feedback(self, features: Any, feature_names: Any, routing: Any, reward: Any, truth: Any) -> None:
        self.calls.append(
            dict(features=features, names=feature_names, reward=reward, truth=truth, routing=routing)
        )


class OldModel(Recorder):  # seldon 0.2.x models
    def send_feedback(self, features: Any, feature_names: Any, truth: Any, reward: Any) -> None:
        self.calls.append(dict(features=features, names=feature_names, reward=reward, truth=truth))


class NoRouting(Recorder):  # v1 models often leave routing out
    def send_feedback(self, features: Any, feature_names: Any, reward: Any, truth: Any) -> None:
        self.calls.append(dict(features=features, names=feature_names, reward=reward, truth=truth))


@pytest.mark.parametrize("cls", [V1, OldRouter, OldModel, NoRouting])
def test_every_feedback_signature_gets_the_right_values(cls: type[Recorder]) -> None:
    user = cls()
    feedback(ComponentAdapter(user, unit_id="eg-router"), FEEDBACK)
    (call,) = user.calls
    assert call["features"].tolist() == [[1.0, 2.0]]
    assert call["names"] == ["a", "b"]
    assert call["reward"] == 1.0
    assert call["truth"].tolist() == [[0.0, 1.0]]
    if "routing" in call:
        assert call["routing"] == 1


def test_routing_is_none_when_this_unit_made_no_decision() -> None:
    user = V1()
    feedback(ComponentAdapter(user, unit_id="other"), FEEDBACK)
    feedback(ComponentAdapter(user), FEEDBACK)
    assert [c["routing"] for c in user.calls] == [None, None]


def test_feedback_without_request_or_truth_gives_empty_arrays() -> None:
    user = V1()
    feedback(
        ComponentAdapter(user, unit_id="eg-router"), {"response": {"meta": {"routing": {"eg-router": 0}}}}
    )
    (call,) = user.calls
    assert call["features"].shape == (0,) and call["truth"].shape == (0,)
    assert call["reward"] == 0.0 and call["routing"] == 0


def test_reward_sent_as_string_is_read_as_number() -> None:
    user = V1()
    feedback(ComponentAdapter(user), {**FEEDBACK, "reward": "0.9"})
    assert user.calls[0]["reward"] == pytest.approx(0.9)


def test_feedback_answer_is_the_return_value_or_empty() -> None:
    class Answers:
        def send_feedback(
            self, features: Any, names: Any, reward: float, truth: Any, routing: Any = None
        ) -> Any:
            return {"accepted": reward > 0}

    assert feedback(ComponentAdapter(Answers()), FEEDBACK) == {"jsonData": {"accepted": True}}
    assert feedback(ComponentAdapter(V1()), FEEDBACK) == {"data": {"names": [], "ndarray": []}}

    class Nothing:
        pass

    adapter = ComponentAdapter(Nothing())
    assert not adapter.implements("send_feedback")
    assert feedback(adapter, FEEDBACK) == {"data": {"names": [], "ndarray": []}}


class EpsilonGreedy11:
    """Behaves like the seldonio/mab_epsilon_greedy:1.1 router (0.2.x argument order)."""

    def __init__(self, n_branches: int | None = None, epsilon: float = 0.1, verbose: bool = False) -> None:
        if n_branches is None:
            raise Exception("n_branches parameter must be given")
        self.n_branches = n_branches
        self.epsilon = epsilon
        self.best_branch = 0
        self.branches_success = [0] * n_branches
        self.branches_tries = [0] * n_branches

    def route(self, features: Any, feature_names: Any) -> int:
        if random.random() > self.epsilon:
            return self.best_branch
        return random.choice([i for i in range(self.n_branches) if i != self.best_branch])

    def send_feedback(
        self, features: Any, feature_names: Any, routing: int, reward: float, truth: Any
    ) -> None:
        n_rows = features.shape[0]
        n_success = int(reward * n_rows)
        self.branches_success[routing] += n_success
        self.branches_tries[routing] += n_rows
        perf = [
            (s + 1) / float(t + 1) for s, t in zip(self.branches_success, self.branches_tries, strict=True)
        ]
        self.best_branch = int(np.argmax(perf))


def test_epsilon_greedy_1_1_learns_through_the_adapter(monkeypatch: pytest.MonkeyPatch) -> None:
    router = EpsilonGreedy11(n_branches=2, epsilon=0.2)
    adapter = ComponentAdapter(router, unit_id="eg-router", service_type="ROUTER")
    one_row = {"data": {"ndarray": [[1.0]]}}
    feedback(adapter, {"request": one_row, "response": {"meta": {"routing": {"eg-router": 1}}}, "reward": 1})
    assert (router.branches_success, router.branches_tries, router.best_branch) == ([0, 1], [0, 1], 0)
    feedback(adapter, {"request": one_row, "response": {"meta": {"routing": {"eg-router": 0}}}, "reward": 0})
    assert (router.branches_success, router.branches_tries, router.best_branch) == ([0, 1], [1, 1], 1)
    monkeypatch.setattr(random, "random", lambda: 0.99)  # exploit
    assert as_json(run(adapter.route(decode_message(one_row))))["data"]["ndarray"] == [[1]]
