"""Schema-driven fuzzing of a running server with schemathesis: every operation of the
server's own OpenAPI document, requests valid by the schema (positive) and not
(negative), then undeclared methods on every path.

Each answer is checked for what "bad input cannot break the server" means here: no 5xx
except the ones a test declares, every error body a Seldon FAILURE status, nothing of a
Python traceback anywhere, and the answer conforming to the schema (status code declared,
content type, body).  Problems are collected rather than raised on the first one (no
shrinking: it would take long and the server logs say more), then reported together.

`SELDON_FUZZ_SEED=<int>` replays a run; otherwise the seed is random and printed on failure.
"""

from __future__ import annotations

import contextlib
import os
import random
import time
import urllib.parse
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import hypothesis
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.core.failures import FailureGroup

_CHECKS = (status_code_conformance, content_type_conformance, response_schema_conformance)
_TRACEBACK_MARKS = ("Traceback (most recent call last)", 'File "/', '.py", line ')
_OTHER_METHODS = ("PUT", "DELETE", "PATCH")

# (case, response) -> True when this 5xx is one the test expects (a declared model error)
Allowed = Callable[[Any, Any], bool]


@dataclass
class Report:
    requests: int = 0
    seconds: float = 0.0
    seed: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    problems: Counter[str] = field(default_factory=Counter)
    examples: dict[str, str] = field(default_factory=dict)

    def problem(self, key: str, detail: str) -> None:
        self.problems[key] += 1
        self.examples.setdefault(key, detail)

    def summary(self) -> str:
        lines = [
            f"{self.requests} requests in {self.seconds:.1f} s (seed {self.seed}; replay with "
            f"SELDON_FUZZ_SEED={self.seed}), statuses {dict(sorted(self.statuses.items()))}"
        ]
        for key, count in self.problems.most_common(20):
            lines.append(f"{count:5d} x {key}\n        e.g. {self.examples[key]}")
        return "\n".join(lines)


def header(response: Any, name: str) -> str:
    """A header of a requests or a schemathesis response (whose values are lists)."""
    for key, value in response.headers.items():
        if key.lower() == name:
            return value[0] if isinstance(value, list) else value
    return ""


def _v2_path(response: Any) -> bool:
    """Whether the request went to an Open Inference Protocol (V2) path (`.../v2` or `.../v2/...`)."""
    path = urllib.parse.urlsplit(str(getattr(response.request, "url", ""))).path
    return path.endswith("/v2") or "/v2/" in path


def failure_body_problem(response: Any) -> str | None:
    """Why an error answer is not `{"status": {"status": "FAILURE", "reason": ..., "info": ...}}`
    (on V2 paths: not the protocol's `{"error": "..."}`)."""
    content_type = header(response, "content-type")
    if not content_type.startswith("application/json"):
        return f"content-type {content_type!r}"
    try:
        body = response.json()
    except ValueError:
        return "not JSON"
    if _v2_path(response):
        ok = isinstance(body, dict) and list(body) == ["error"] and isinstance(body["error"], str)
        return None if ok else "not the V2 error form"
    status = body.get("status") if isinstance(body, dict) else None
    if not isinstance(status, dict) or status.get("status") != "FAILURE":
        return "no FAILURE status"
    if not isinstance(status.get("reason"), str) or not status["reason"]:
        return "no reason"
    if not isinstance(status.get("info"), str) or not isinstance(status.get("code"), int):
        return "no info or code"
    return None


def _describe(case: Any, response: Any) -> str:
    body = repr(case.body)
    if len(body) > 300:
        body = body[:300] + "..."
    answer = "" if response is None else f" -> {response.status_code} {response.text[:300]}"
    extra = ""
    if case.headers:
        extra += f" headers={case.headers!r}"
    if case.query:
        extra += f" query={case.query!r}"
    return f"{case.method} {case.formatted_path} [{case.media_type}] {body}{extra}{answer}"


class Fuzzer:
    def __init__(self, base_url: str, schema_path: str, *, allowed_5xx: Allowed | None = None) -> None:
        self.base_url = base_url
        self.schema = schemathesis.openapi.from_url(base_url + schema_path)
        self.allowed_5xx = allowed_5xx or (lambda case, response: False)
        self.session = requests.Session()
        env_seed = os.environ.get("SELDON_FUZZ_SEED")
        self.report = Report(seed=int(env_seed) if env_seed else random.randrange(2**32))

    def check(self, case: Any, response: Any) -> None:
        report = self.report
        report.requests += 1
        report.statuses[response.status_code] += 1
        label = f"{case.method} {case.path}"
        if any(mark in response.text for mark in _TRACEBACK_MARKS):
            report.problem(f"traceback in the body: {label}", _describe(case, response))
        if response.status_code >= 500 and not self.allowed_5xx(case, response):
            info = response.text[:60]
            report.problem(f"{response.status_code} on {label}: {info}", _describe(case, response))
        if response.status_code >= 400:
            why = failure_body_problem(response)
            if why:
                report.problem(f"error body {why}: {label}", _describe(case, response))
        try:
            case.validate_response(response, checks=list(_CHECKS))
        except FailureGroup as group:
            for failure in group.exceptions:
                report.problem(
                    f"{failure.title} ({response.status_code} on {label})",
                    f"{_describe(case, response)}\n        {failure.message[:600]}",
                )

    def call(self, case: Any) -> None:
        try:
            response = case.call(base_url=self.base_url, session=self.session, timeout=10)
        except requests.Timeout:
            self.report.problem(f"no answer within 10 s: {case.method} {case.path}", _describe(case, None))
            return
        except requests.ConnectionError as exc:
            self.report.problem(
                f"connection failed: {case.method} {case.path}", f"{_describe(case, None)} {exc}"
            )
            return
        except (ValueError, UnicodeError):
            return  # the client refused to send it (e.g. an unencodable header): not our request
        self.check(case, response)

    def run(self, examples: Callable[[Any, GenerationMode], int], skip: Iterable[str] = ()) -> Report:
        """Every operation but `skip` ("GET /pause"): `examples(operation, mode)` requests of
        each generation mode, then the undeclared methods of every path."""
        skipped = set(skip)
        for result in self.schema.get_all_operations():
            operation = result.ok()
            if operation.label in skipped:
                continue
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                count = examples(operation, mode)
                if count > 0:
                    # Unsatisfiable: nothing to vary (no parameters, no body), no negative case
                    with contextlib.suppress(Unsatisfiable):
                        self._drive(count, operation.as_strategy(generation_mode=mode))
        started = time.monotonic()
        self._other_methods(skipped)
        self.report.seconds += time.monotonic() - started
        return self.report

    def run_bodies(
        self, label: str, bodies: st.SearchStrategy[Any], count: int, *, path_parameters: Any = None
    ) -> Report:
        """`count` requests to one operation ("POST /path/{x}") with bodies (and path
        parameters) drawn from a strategy of our own: what a schema cannot say, such as a
        numeric array whose shape matches its values, with extreme floats."""
        method, path = label.split(" ", 1)
        operation = self.schema[path][method]
        cases = st.builds(
            lambda body, params: operation.Case(
                body=body, path_parameters=params, media_type="application/json"
            ),
            bodies,
            path_parameters if path_parameters is not None else st.just({}),
        )
        self._drive(count, cases)
        return self.report

    def _drive(self, count: int, cases: st.SearchStrategy[Any]) -> None:
        @settings(
            max_examples=count,
            deadline=None,
            database=None,
            phases=[Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(cases)
        def fuzz(case: Any) -> None:
            self.call(case)

        started = time.monotonic()
        try:
            hypothesis.seed(self.report.seed)(fuzz)()
        finally:
            self.report.seconds += time.monotonic() - started

    def _other_methods(self, skipped: set[str]) -> None:
        """Methods a path does not declare: 405 (or 404) with a FAILURE body and an Allow header."""
        for path, item in self.schema.raw_schema["paths"].items():
            if "{" in path:
                continue
            declared = {m.upper() for m in item if m in ("get", "post", "put", "delete", "patch")}
            if any(f"{m} {path}" in skipped for m in declared):
                continue
            for method in _OTHER_METHODS:
                if method in declared:
                    continue
                response = self.session.request(method, self.base_url + path, timeout=10)
                self.report.requests += 1
                self.report.statuses[response.status_code] += 1
                label = f"{method} {path}"
                if response.status_code not in (404, 405):
                    self.report.problem(f"undeclared method answered {response.status_code}: {label}", label)
                if response.status_code == 405 and not header(response, "allow"):
                    self.report.problem(f"405 without Allow: {label}", label)
                why = failure_body_problem(response)
                if why:
                    self.report.problem(f"error body {why}: {label}", f"{label} -> {response.text[:200]}")
