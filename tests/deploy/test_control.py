"""The local control plane over a real SQLite file: two ControlPlanes on one file play
two worker processes of one server (each with its own data plane)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from seldon_serving.deploy.control import ControlPlane
from seldon_serving.deploy.records import Records
from seldon_serving.engine.plane import DataPlane
from seldon_serving.protocol.errors import BadRequest, DeploymentNotFound
from seldon_serving.protocol.message import NDARRAY, Feedback, SeldonMessage
from seldon_serving.servers.oauth import OAuthService
from seldon_serving.state import SqliteStore
from tests.deploy.gateway import EXAMPLES, example_model

X = SeldonMessage(form=NDARRAY, payload=[[1.0, 2.0]])


def worker(path: Path) -> ControlPlane:
    store = SqliteStore(path)
    return ControlPlane(Records(store, OAuthService(store)), DataPlane(), store, poll_interval=0.02)


def proba(control: ControlPlane, name: str) -> float:
    return float(asyncio.run(control.plane.predict(name, None, X)).array()[0][0])


def apply(control: ControlPlane, doc: dict[str, Any], base_dir: str | None = None) -> dict[str, Any]:
    return asyncio.run(control.apply({"manifest": doc, "base_dir": base_dir}))


def test_apply_reports_created_configured_unchanged_and_status(tmp_path: Path) -> None:
    control = worker(tmp_path / "state.db")
    asyncio.run(control.sync())
    first = apply(control, example_model("iris"))
    assert first["result"] == "created"
    status = first["deployment"]["manifest"]["status"]
    assert status == {
        "state": "Available",
        "description": "",
        "predictorStatus": [
            {
                "name": "iris",
                "replicas": 1,
                "replicasAvailable": 1,
                "nodes": [
                    {
                        "name": "iris",
                        "runs": "in-process MockClassifier (built-in for seldonio/mock_classifier:1.0)",
                    }
                ],
            }
        ],
    }
    assert first["deployment"]["manifest"]["metadata"]["generation"] == 1
    assert apply(control, example_model("iris"))["result"] == "unchanged"
    second = apply(control, example_model("iris", intValue=-2))
    assert second["result"] == "configured"
    assert second["deployment"]["manifest"]["metadata"]["generation"] == 2
    assert proba(control, "iris") == pytest.approx(0.6418, abs=1e-4)
    nodes = second["deployment"]["predictors"][0]["nodes"]
    assert nodes == [
        {"name": "iris", "runs": "in-process MockClassifier (built-in for seldonio/mock_classifier:1.0)"}
    ]


def test_a_bad_manifest_is_refused_with_its_field(tmp_path: Path) -> None:
    control = worker(tmp_path / "state.db")
    doc = example_model("iris")
    doc["spec"]["predictors"][0]["graph"]["type"] = "MODLE"
    with pytest.raises(BadRequest, match=r"spec\.predictors\[0\]\.graph\.type"):
        apply(control, doc)
    assert asyncio.run(control.list()) == {"items": []}


def test_compile_failure_is_a_failed_status_and_others_keep_serving(tmp_path: Path) -> None:
    control = worker(tmp_path / "state.db")
    apply(control, example_model("good"))
    broken = example_model("broken")
    broken["spec"]["predictors"][0]["componentSpecs"][0]["spec"]["containers"][0]["env"] = [
        {"name": "MODEL_NAME", "value": "NotThere"}
    ]
    result = apply(control, broken, base_dir=str(tmp_path))
    status = result["deployment"]["manifest"]["status"]
    assert status["state"] == "Failed" and "NotThere" in status["description"]
    assert status["predictorStatus"][0]["replicasAvailable"] == 0
    assert proba(control, "good") > 0
    with pytest.raises(DeploymentNotFound, match="NotThere"):
        proba(control, "broken")

    # the user adds the missing class and applies the same manifest again: a retry, not "unchanged"
    (tmp_path / "NotThere.py").write_text(
        "class NotThere:\n    def predict(self, X, features_names=None):\n        return X\n"
    )
    retried = apply(control, broken, base_dir=str(tmp_path))
    assert retried["result"].startswith("configured")
    assert retried["deployment"]["manifest"]["status"]["state"] == "Available"
    assert proba(control, "broken") == 1.0


def test_a_failed_update_keeps_the_previous_generation_serving(tmp_path: Path) -> None:
    control = worker(tmp_path / "state.db")
    (tmp_path / "Answer.py").write_text(
        "class Answer:\n    def predict(self, X, features_names=None):\n        return [[1.0]]\n"
    )
    doc = example_model("mine")
    doc["spec"]["predictors"][0]["componentSpecs"][0]["spec"]["containers"][0]["env"] = [
        {"name": "MODEL_NAME", "value": "Answer"}
    ]
    assert apply(control, doc, base_dir=str(tmp_path))["result"] == "created"
    (tmp_path / "Answer.py").write_text(
        "class Answer:\n    def __init__(self):\n        raise ValueError('no')\n"
    )
    failed = apply(control, doc, base_dir=str(tmp_path))
    status = failed["deployment"]["manifest"]["status"]
    assert status["state"] == "Failed"
    assert status["description"].startswith("generation 2 failed, the previous one keeps serving: ")
    assert "ValueError: no" in status["description"]
    assert proba(control, "mine") == 1.0  # as a failed rollout on a cluster: the old pods serve
    assert asyncio.run(control.plane.not_ready()) is None


def test_every_worker_follows_changes_made_through_another(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    one, two = worker(path), worker(path)

    async def scenario() -> list[Any]:
        await one.start()
        await two.start()
        try:
            # apply through worker one returns once worker two serves it too
            await one.apply({"manifest": example_model("iris"), "base_dir": None})
            seen = [two.plane.get("default", "iris") is not None]
            await one.apply({"manifest": example_model("iris", intValue=-2), "base_dir": None})
            answer = await two.plane.predict("iris", None, X)
            seen.append(round(float(answer.array()[0][0]), 4))
            await two.set_paused(True)
            seen.append(one.plane.paused)
            await two.delete("default", "iris")
            seen.append(one.plane.get("default", "iris"))
            return seen
        finally:
            await one.stop()
            await two.stop()

    assert asyncio.run(scenario()) == [True, 0.6418, True, None]


def test_deployments_come_back_from_the_file(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    first = worker(path)
    apply(first, example_model("iris"))
    first.records.store.close()

    again = worker(path)
    asyncio.run(again.sync())
    assert proba(again, "iris") == pytest.approx(0.1952, abs=1e-4)
    listed = asyncio.run(again.list())["items"]
    assert [i["manifest"]["metadata"]["name"] for i in listed] == ["iris"]
    with pytest.raises(DeploymentNotFound):
        asyncio.run(again.get("default", "other"))


def test_get_shows_what_a_router_has_learned(tmp_path: Path) -> None:
    import yaml

    control = worker(tmp_path / "state.db")
    mab = yaml.safe_load((EXAMPLES / "mymab.yaml").read_text())["items"][0]
    apply(control, mab)

    async def learn() -> None:
        for _ in range(5):
            answer = await control.plane.predict("mymab", None, X)
            await control.plane.send_feedback("mymab", None, Feedback(request=X, response=answer, reward=1.0))

    asyncio.run(learn())
    status = asyncio.run(control.get("default", "mymab"))["manifest"]["status"]
    router = status["predictorStatus"][0]["nodes"][0]
    assert router["name"] == "eg-router" and router["runs"].startswith("in-process EpsilonGreedy")
    assert sum(b["tries"] for b in router["state"]["branches"]) == 5
