"""The request logger's node hooks in process (issue 16): which nodes get one, what feedback
logs, what the dashboard reads back; the HTTP side is tests/e2e/test_request_logger.py."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from seldon_serving.engine.plane import DataPlane
from seldon_serving.engine.request_logger import CE_FEEDBACK, CE_REQUEST, CE_RESPONSE, RequestLogger
from seldon_serving.protocol import json_codec
from seldon_serving.protocol.message import Feedback
from tests.engine.build import build


def deployment(sink: str) -> dict[str, Any]:
    graph = {
        "name": "bandit",
        "implementation": "EPSILON_GREEDY",
        "parameters": [{"name": "n_branches", "value": "2", "type": "INT"}],
        "logger": {"mode": "response", "url": sink},
        "children": [
            {"name": "a", "type": "MODEL", "implementation": "SIMPLE_MODEL", "logger": {"mode": "request"}},
            {"name": "b", "type": "MODEL", "implementation": "SIMPLE_MODEL"},
        ],
    }
    return {
        "apiVersion": "machinelearning.seldon.io/v1",
        "kind": "SeldonDeployment",
        "metadata": {"name": "bandit"},
        "spec": {"predictors": [{"name": "main", "graph": graph}]},
    }


def test_logged_nodes_alone_get_a_hook_and_feedback_is_logged(tmp_path: Path) -> None:
    own, default = tmp_path / "own.jsonl", tmp_path / "default.jsonl"
    logger = RequestLogger(default_url=f"file://{default}", source="http://here:1/")
    plane = DataPlane()
    plane.hook_factories.append(logger.hook_factory)
    built = build(deployment(f"file://{own}"))
    plane.install(built)
    hooked = {node.name: bool(node.hooks) for node in built.predictors[0].root.walk()}
    assert hooked == {"bandit": True, "a": True, "b": False}  # no logger: no hook, no cost

    async def traffic() -> list[Any]:
        answers = []
        for i in range(10):
            request = json_codec.decode_request({"data": {"ndarray": [[float(i)]]}})
            answers.append(await plane.predict("bandit", None, request))
        for answer in answers:
            await plane.send_feedback("bandit", None, Feedback(response=answer, reward=1.0))
        await logger.close()
        return answers

    answers = asyncio.run(traffic())
    to_a = [a.meta["puid"] for a in answers if a.meta["routing"]["bandit"] == 0]
    lines = [json.loads(line) for line in own.read_text().splitlines()]
    # a router's route is not logged (as Seldon): only the feedback it took, with its answer's puid
    assert [e["type"] for e in lines] == [CE_FEEDBACK] * 10
    assert all(e["modelid"] == "bandit" and e["data"]["reward"] == 1.0 for e in lines)
    requests = [json.loads(line) for line in default.read_text().splitlines()] if default.exists() else []
    # node a (mode request, no url: the default sink) logged each request routed to it, no answer
    assert sorted(e["requestid"] for e in requests) == sorted(to_a)
    assert all(e["type"] == CE_REQUEST and e["modelid"] == "a" for e in requests)

    recent = logger.recent_events("default", "bandit", 5)
    assert len(recent) == 5
    assert recent[0]["type"] == CE_FEEDBACK and recent[0]["data"]["reward"] == 1.0  # newest first
    assert logger.recent_events("default", "other", 5) == []
    assert CE_RESPONSE not in {e["type"] for e in logger.recent_events("default", "bandit", 100)}
