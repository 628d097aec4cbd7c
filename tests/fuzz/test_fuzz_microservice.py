"""Fuzz a real component microservice through its own OpenAPI document (/seldon.json).

The component is tests/fuzz/models/FuzzModel.py: it never raises except when asked to
(strData "fail on purpose"), so the only 5xx allowed is that one declared model error;
any other is a bug of the server.  At least 1,000 requests, then the server must still
be alive and answering.
"""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

# the `test` extra; without it these tests are skipped rather than failing to import
pytest.importorskip("schemathesis")

from hypothesis import strategies as st
from schemathesis import GenerationMode

from tests.fuzz.harness import Fuzzer
from tests.fuzz.models.FuzzModel import FAIL_ON, FAILURE_INFO
from tests.fuzz.strategies import numeric_feedback, numeric_message
from tests.helpers import ROOT, Server

pytestmark = pytest.mark.slow

MODELS = ROOT / "tests" / "fuzz" / "models"
MIN_REQUESTS = 1000


def declared_model_error(case: object, response: object) -> bool:
    if response.status_code != 500:  # type: ignore[attr-defined]
        return False
    status = response.json().get("status", {})  # type: ignore[attr-defined]
    return status.get("reason") == "MICROSERVICE_INTERNAL_ERROR" and FAILURE_INFO in status.get("info", "")


def examples(operation: object, mode: GenerationMode) -> int:
    if operation.method.upper() != "POST":  # type: ignore[attr-defined]
        return 3 if mode == GenerationMode.POSITIVE else 0  # nothing to vary but the path
    return 45 if mode == GenerationMode.POSITIVE else 35


def test_fuzz_microservice(start_microservice: Callable[..., Server]) -> None:
    # CRITICAL: every refused request would be logged; the report says what matters
    server = start_microservice("FuzzModel", cwd=MODELS, log_level="CRITICAL")
    base = server.url
    fuzzer = Fuzzer(base, "/seldon.json", allowed_5xx=declared_model_error)
    fuzzer.run(examples)
    # well-formed numeric requests reach the model's arithmetic (4 columns) or its echo
    fuzzer.run_bodies("POST /predict", numeric_message(cols=4), 120)
    fuzzer.run_bodies("POST /predict", numeric_message(), 80)
    fuzzer.run_bodies("POST /transform-input", numeric_message(), 40)
    fuzzer.run_bodies("POST /send-feedback", numeric_feedback(["FuzzModel"]), 60)
    report = fuzzer.run_bodies("POST /predict", st.just({"strData": FAIL_ON}), 1)

    print(report.summary())
    assert not report.problems, report.summary()
    assert report.requests >= MIN_REQUESTS, report.summary()
    assert report.statuses[500] == 1, "the declared model error answers 500"
    assert server.process.poll() is None, "the server died"
    assert httpx.get(f"{base}/health/ping", timeout=5).text == "pong"
    answer = httpx.post(f"{base}/predict", json={"data": {"ndarray": [[1, 2, 3, 4]]}}, timeout=5)
    assert answer.status_code == 200 and len(answer.json()["data"]["ndarray"][0]) == 3
