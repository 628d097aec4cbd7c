"""Our microservice vs Seldon's own wrapper, both driven by the real SeldonClient.

Every call is sent to `seldon microservice` and to `seldon-core-microservice`
wrapping the same class; the answers must agree on data (form, values, names),
status and the meta a component defines (tags, metrics)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from seldon_serving.protocol import json_codec
from tests.compat.conftest import run_seldon_client

pytestmark = [pytest.mark.compat, pytest.mark.slow]

X = [[1.0, 2.0, 3.0, 4.0], [0.5, -1.0, 2.0, 0.0]]
TRANSPORTS = ("rest", "grpc")
PAYLOADS = ("ndarray", "tensor", "tftensor")


def normalize(response: dict[str, Any] | None) -> dict[str, Any] | None:
    """What a user compares: data form, names and values; other payloads; tags; metric keys; status."""
    if response is None:
        return None
    out: dict[str, Any] = {}
    message = json_codec.decode_message(response)
    if message.form in ("ndarray", "tensor", "tftensor"):
        values = np.asarray(message.array(), dtype=float)
        out["data"] = (message.form, list(message.names), np.round(values, 6).tolist())
    elif message.form is not None:
        out["data"] = (message.form, message.payload)
    meta = message.meta
    out["tags"] = meta.get("tags", {})
    out["metrics"] = sorted(
        (m["key"], m.get("type", "COUNTER"), m.get("value")) for m in meta.get("metrics", [])
    )
    out["status"] = (message.status or {}).get("status", "SUCCESS") if message.status else None
    return out


def _call(endpoint: str, transport: str, payload: str, **kwargs: Any) -> dict[str, Any]:
    return {
        "call": "microservice",
        "client": {"transport": transport, "payload_type": payload, "microservice_endpoint": endpoint},
        "kwargs": kwargs,
    }


@pytest.fixture(scope="module")
def answers(servers_for: Any, compat_python: Path) -> dict[str, tuple[dict, dict]]:
    """Run every call against both servers in ONE SeldonClient process."""
    servers = servers_for(
        {
            "model": ("LinearSoftmax", "MODEL"),
            "transformer": ("Doubler", "TRANSFORMER"),
            "router": ("RowRouter", "ROUTER"),
            "combiner": ("MeanCombiner", "COMBINER"),
            "failing": ("Failing", "MODEL"),
        }
    )
    names: list[str] = []
    calls: list[dict[str, Any]] = []

    def add(name: str, kind: str, transport: str, payload: str, **kwargs: Any) -> None:
        for side, endpoints in zip(("ours", "theirs"), servers[kind], strict=True):
            endpoint = endpoints.rest() if transport == "rest" else endpoints.grpc_endpoint()
            names.append(f"{name}|{side}")
            calls.append(_call(endpoint, transport, payload, **kwargs))

    for transport in TRANSPORTS:
        for payload in PAYLOADS:
            key = f"{transport}-{payload}"
            add(f"predict-{key}", "model", transport, payload, method="predict", data=X, names=list("abcd"))
            add(f"tin-{key}", "transformer", transport, payload, method="transform-input", data=X)
            add(f"tout-{key}", "transformer", transport, payload, method="transform-output", data=X)
            add(f"route1-{key}", "router", transport, payload, method="route", data=[[1.0, 2.0]])
            add(f"route0-{key}", "router", transport, payload, method="route", data=[[-1.0, 2.0]])
            add(
                f"aggregate-{key}",
                "combiner",
                transport,
                payload,
                method="aggregate",
                datas=[[[1.0, 2.0]], [[3.0, 5.0]]],
            )
            add(f"failing-{key}", "failing", transport, payload, method="predict", data=X)
        add(
            f"str-{transport}",
            "transformer",
            transport,
            "ndarray",
            method="transform-input",
            str_data="hello",
        )
        feedback = {
            "prediction_request": {"data": {"ndarray": [[1.0, 2.0]]}},
            "prediction_response": {"meta": {"routing": {"RowRouter": 1}}, "data": {"ndarray": [[1.0]]}},
            "reward": 1.0,
        }
        for side, endpoints in zip(("ours", "theirs"), servers["router"], strict=True):
            endpoint = endpoints.rest() if transport == "rest" else endpoints.grpc_endpoint()
            names.append(f"feedback-{transport}|{side}")
            calls.append(
                {
                    "call": "microservice_feedback",
                    "client": {"transport": transport, "microservice_endpoint": endpoint},
                    "kwargs": feedback,
                }
            )
    results = run_seldon_client(compat_python, calls)
    by_name: dict[str, dict[str, Any]] = dict(zip(names, results, strict=True))
    pairs: dict[str, tuple[dict, dict]] = {}
    for name in {n.split("|")[0] for n in names}:
        pairs[name] = (by_name[f"{name}|ours"], by_name[f"{name}|theirs"])
    return pairs


CASES = [
    f"{op}-{t}-{p}"
    for op in ("predict", "tin", "tout", "route1", "route0", "aggregate")
    for t in TRANSPORTS
    for p in PAYLOADS
]


@pytest.mark.parametrize("case", CASES)
def test_same_answer_as_seldon(answers: dict[str, tuple[dict, dict]], case: str) -> None:
    ours, theirs = answers[case]
    assert theirs["success"], f"seldon's own wrapper failed on {case}: {theirs['msg']}"
    assert ours["success"], f"ours failed on {case}: {ours['msg']}"
    assert ours["response"] is not None, "SeldonClient could not parse our answer"
    assert normalize(ours["response"]) == normalize(theirs["response"])


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_str_data_passes_through_like_seldon(answers: dict[str, tuple[dict, dict]], transport: str) -> None:
    ours, theirs = answers[f"str-{transport}"]
    assert ours["success"] and theirs["success"]
    assert normalize(ours["response"]) == normalize(theirs["response"])


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_feedback_accepted_like_seldon(answers: dict[str, tuple[dict, dict]], transport: str) -> None:
    ours, theirs = answers[f"feedback-{transport}"]
    assert theirs["success"], theirs["msg"]
    assert ours["success"], ours["msg"]
    assert normalize(ours["response"]) == normalize(theirs["response"])


@pytest.mark.parametrize("case", [f"failing-{t}-{p}" for t in TRANSPORTS for p in PAYLOADS])
def test_model_exception_is_a_failure_for_both(answers: dict[str, tuple[dict, dict]], case: str) -> None:
    ours, theirs = answers[case]
    assert not theirs["success"]
    assert not ours["success"]
    if case.startswith("failing-rest"):
        # REST: both answer a parseable FAILURE status naming the error.
        assert ours["response"]["status"]["status"] == "FAILURE"
        assert "model exploded on purpose" in ours["response"]["status"]["info"]
        assert ours["response"]["status"]["reason"] == theirs["response"]["status"]["reason"]
