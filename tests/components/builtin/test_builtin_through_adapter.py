"""The built-ins as the servers see them: through the component adapter."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from seldon_serving.components.adapter import ComponentAdapter
from seldon_serving.components.builtin import EpsilonGreedy, MockClassifier, OutlierMahalanobis
from seldon_serving.components.loader import load_user_class
from seldon_serving.protocol.message import Feedback, SeldonMessage


def ndarray(rows: list[list[float]], puid: str | None = None) -> SeldonMessage:
    meta = {"puid": puid} if puid else {}
    return SeldonMessage(
        form="ndarray", payload=rows, names=[f"f{i}" for i in range(len(rows[0]))], meta=meta
    )


def test_loadable_by_module_dot_class_name() -> None:
    assert load_user_class("seldon_serving.components.builtin.EpsilonGreedy") is EpsilonGreedy


def test_mock_classifier_answer() -> None:
    adapter = ComponentAdapter(MockClassifier(), service_type="MODEL")
    answer = asyncio.run(adapter.predict(ndarray([[1.0, 2.0]])))
    assert answer.names == ["proba"]
    assert np.asarray(answer.payload)[0, 0] == pytest.approx(0.195185, abs=1e-6)


def test_detector_tags_and_metrics_are_per_request_and_not_duplicated() -> None:
    adapter = ComponentAdapter(OutlierMahalanobis(), service_type="TRANSFORMER")
    rng = np.random.default_rng(0)

    requests = [rng.normal(size=(10, 4)).tolist() for _ in range(5)]
    requests[-1][-1] = [100.0, 100.0, 100.0, 100.0]  # far from the 49 rows before it

    async def serve() -> list[SeldonMessage]:
        return [await adapter.transform_input(ndarray(rows, puid=f"p{i}")) for i, rows in enumerate(requests)]

    last = asyncio.run(serve())[-1]
    assert len(last.meta["tags"]["outlierScore"]) == 10
    assert last.meta["tags"]["outlier-predictions"] == [0] * 9 + [1]
    keys = [m["key"] for m in last.meta["metrics"]]
    assert sorted(keys) == sorted(
        ["is_outlier", "outlier_score", "nb_outliers", "fraction_outliers", "observation", "threshold"]
    )
    assert {m["key"]: m["value"] for m in last.meta["metrics"]}["observation"] == 50
    np.testing.assert_array_equal(np.asarray(last.payload), np.asarray(requests[-1]))  # data untouched


def test_router_learns_through_route_and_feedback() -> None:
    router = EpsilonGreedy(n_branches=2, epsilon=0.2, seed=0)
    adapter = ComponentAdapter(router, unit_id="eg-router", service_type="ROUTER")

    async def rounds() -> None:
        for _ in range(100):
            request = ndarray([[1.0]])
            branch = int(np.asarray((await adapter.route(request)).payload).ravel()[0])
            response = SeldonMessage(form="ndarray", payload=[[0.0]], meta={"routing": {"eg-router": branch}})
            reward = 1.0 if branch == 1 else 0.0
            await adapter.send_feedback(Feedback(request=request, response=response, reward=reward))

    asyncio.run(rounds())
    summary = router.state_summary()
    assert summary["best_branch"] == 1
    assert sum(b["tries"] for b in summary["branches"]) == 100
