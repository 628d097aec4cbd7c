"""Fuzz a real gateway (`seldon serve` with the seed's four example deployments) through
its own OpenAPI document (/openapi.json), whose path parameters name the running
deployments and graph nodes so that requests reach the data plane, not only 404s.

The example graphs (mock classifier, A/B test, epsilon-greedy bandit, outlier detector)
are built in and must never answer 5xx: every one is a bug.  At least 1,000 requests,
then every deployment must still answer a normal prediction.
"""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

# the `test` extra; without it these tests are skipped rather than failing to import
pytest.importorskip("schemathesis")

from hypothesis import strategies as st
from schemathesis import GenerationMode

from tests.deploy.gateway import EXAMPLES
from tests.fuzz.harness import Fuzzer
from tests.fuzz.strategies import numeric_feedback, numeric_message
from tests.helpers import Gateway

pytestmark = pytest.mark.slow

MIN_REQUESTS = 1000
# Operations that change what later requests see: pausing takes the gateway out of rotation,
# the admin API would apply or delete deployments.
SKIP = (
    "GET /pause",
    "GET /unpause",
    "PUT /admin/deployments",
    "DELETE /admin/deployments/{namespace}/{name}",
)


def examples(operation: object, mode: GenerationMode) -> int:
    if operation.method.upper() == "POST":  # type: ignore[attr-defined]
        return 40 if mode == GenerationMode.POSITIVE else 30
    if "{" in operation.path or operation.path.startswith("/api/"):  # type: ignore[attr-defined]
        return 5  # metadata: path parameters and headers to vary
    return 3 if mode == GenerationMode.POSITIVE else 0


def test_fuzz_gateway(start_gateway: Callable[..., Gateway]) -> None:
    gateway = start_gateway(EXAMPLES, log_level="CRITICAL")
    base = gateway.url
    fuzzer = Fuzzer(base, "/openapi.json")
    parameters = fuzzer.schema.raw_schema["paths"]["/seldon/{deployment}/api/v1.0/predictions"]["post"]
    names = next(p["schema"]["enum"] for p in parameters["parameters"] if p["name"] == "deployment")
    assert sorted(names) == ["myabtest", "mymab", "mymodel", "myout"]
    nodes = fuzzer.schema.raw_schema["paths"]["/seldon/{deployment}/api/v1.0/metadata/{model}"]["get"]
    node_names = next(p["schema"]["enum"] for p in nodes["parameters"] if p["name"] == "model")

    fuzzer.run(examples, skip=SKIP)
    # well-formed numeric requests reach every graph's models, routers and detector
    deployment = st.fixed_dictionaries({"deployment": st.sampled_from(names)})
    predict = "POST /seldon/{deployment}/api/v1.0/predictions"
    # two columns mostly: the outlier detector keeps the width of the first rows it saw
    fuzzer.run_bodies(predict, numeric_message(cols=2), 160, path_parameters=deployment)
    fuzzer.run_bodies(predict, numeric_message(), 40, path_parameters=deployment)
    fuzzer.run_bodies(
        "POST /seldon/{deployment}/api/v0.1/feedback",
        numeric_feedback(node_names, cols=2),
        80,
        path_parameters=deployment,
    )
    report = fuzzer.report

    print(report.summary())
    assert not report.problems, report.summary()
    assert report.requests >= MIN_REQUESTS, report.summary()
    assert gateway.process.poll() is None, "the gateway died"
    assert httpx.get(f"{base}/ready", timeout=5).text == "ready"
    for name in names:
        # rows as wide as the outlier detector learnt them from the first rows it took (a
        # fuzzed one-column row may have come first: seed 2657268659)
        width = _detector_width(gateway, name) or 2
        row = {"data": {"ndarray": [[float(i + 1) for i in range(width)]]}}
        answer = httpx.post(f"{base}/seldon/{name}/api/v1.0/predictions", json=row, timeout=5)
        assert answer.status_code == 200, (name, answer.text)


def _detector_width(gateway: Gateway, name: str) -> int | None:
    """The row width a deployment's outlier detector has learnt, if it has one."""
    view = httpx.get(f"{gateway.admin_url}/admin/deployments/default/{name}", timeout=5).json()
    for predictor in view["predictors"]:
        for node in predictor["nodes"]:
            width = (node.get("state") or {}).get("n_features")
            if isinstance(width, int):
                return width
    return None
