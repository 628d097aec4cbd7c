"""The REST edges in-process: what fuzzing found at the HTTP layer (undeclared methods,
undecodable headers and multipart parts), each answered 4xx with a FAILURE status."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import numpy as np
import pytest

from seldon_serving.components.adapter import ComponentAdapter
from seldon_serving.engine.plane import DataPlane
from seldon_serving.servers.component_plane import ComponentPlane, metrics_sink
from seldon_serving.servers.gateway_rest import GatewayApp
from seldon_serving.servers.metrics import Metrics
from seldon_serving.servers.microservice_rest import MicroserviceApp
from seldon_serving.servers.openapi import gateway_openapi, microservice_openapi
from tests.engine.build import build, manifest, node
from tests.servers._asgi import assert_failure, request

JSON = {b"content-type": b"application/json"}


class Echo:
    def predict(self, X: Any, features_names: Any = None) -> Any:
        return X

    def aggregate(self, Xs: list[Any], features_names: Any = None) -> Any:
        return Xs[0]

    def metrics(self) -> list[dict[str, Any]]:
        return [{"type": "COUNTER", "key": "echo_calls", "value": 1}]


def microservice() -> tuple[MicroserviceApp, Metrics]:
    metrics = Metrics()
    adapter = ComponentAdapter(Echo(), on_metrics=metrics_sink(metrics, {"model_name": "echo"}))
    return MicroserviceApp(ComponentPlane(adapter, metrics, {"model_name": "echo"})), metrics


# --- methods ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("DELETE", "/predict", b"GET, POST"),
        ("PUT", "/api/v1.0/predictions", b"GET, POST"),
        ("PATCH", "/send-feedback", b"GET, POST"),
        ("POST", "/health/ping", b"GET, HEAD"),
        ("DELETE", "/metadata", b"GET, HEAD"),
    ],
)
def test_microservice_answers_405_for_a_method_a_path_does_not_take(
    method: str, path: str, allow: bytes
) -> None:
    # DELETE /predict used to be read as a request without a body: 400 "Can't find JSON"
    app, _ = microservice()
    answer = asyncio.run(request(app, method, path))
    assert_failure(answer, 405, f"{method} is not allowed on {path}")
    assert answer.headers[b"allow"] == allow


def test_microservice_still_takes_get_with_a_json_query_and_head() -> None:
    app, _ = microservice()
    query = b"json=" + json.dumps({"data": {"ndarray": [[1, 2]]}}).encode()
    assert asyncio.run(request(app, "GET", "/predict", query=query)).json()["data"]["ndarray"] == [[1, 2]]
    assert asyncio.run(request(app, "HEAD", "/health/ping")).status == 200


def test_answers_say_their_length_so_they_are_not_sent_chunked() -> None:
    app, _ = microservice()
    body = json.dumps({"data": {"ndarray": [[1, 2]]}}).encode()
    for path in ("/predict", "/api/v1.0/predictions"):
        answer = asyncio.run(request(app, "POST", path, body=body, headers=JSON))
        assert answer.headers[b"content-length"] == str(len(answer.body)).encode()
    failed = asyncio.run(request(app, "DELETE", "/predict"))
    assert failed.headers[b"content-length"] == str(len(failed.body)).encode()


def test_gateway_answers_405_for_metadata_by_post_and_for_put_predictions() -> None:
    app = GatewayApp(DataPlane(), Metrics())
    answer = asyncio.run(request(app, "POST", "/seldon/dep/api/v1.0/metadata"))
    assert_failure(answer, 405, "POST is not allowed")
    assert answer.headers[b"allow"] == b"GET, HEAD"
    assert_failure(asyncio.run(request(app, "PUT", "/seldon/dep/api/v1.0/predictions")), 405, "use GET, POST")
    assert_failure(asyncio.run(request(app, "DELETE", "/ping")), 405, "DELETE is not allowed on /ping")


# --- bytes that are not text ----------------------------------------------------------------


def test_gateway_header_that_is_not_utf8_finds_no_deployment() -> None:
    # the `seldon` header was decoded as UTF-8: any other byte answered 500
    app = GatewayApp(DataPlane(), Metrics())
    answer = asyncio.run(
        request(app, "POST", "/api/v1.0/predictions", b'{"strData": "x"}', {**JSON, b"seldon": b"\xff\xfe"})
    )
    assert_failure(answer, 404, "no deployment")


def multipart(*parts: tuple[bytes, bytes]) -> tuple[bytes, dict[bytes, bytes]]:
    body = b"".join(b"--b\r\n" + disposition + b"\r\n\r\n" + data + b"\r\n" for disposition, data in parts)
    return body + b"--b--\r\n", {b"content-type": b"multipart/form-data; boundary=b"}


def test_multipart_bin_data_that_is_not_text_is_a_bad_request() -> None:
    app, _ = microservice()
    body, headers = multipart((b'Content-Disposition: form-data; name="binData"', b"\xff\xfe\x00"))
    assert_failure(asyncio.run(request(app, "POST", "/predict", body, headers)), 400, "binData")


def test_multipart_part_names_that_are_not_utf8_are_ignored() -> None:
    app, _ = microservice()
    body, headers = multipart(
        (b'Content-Disposition: form-data; name="\xff\xfe"', b"1"),
        (b'Content-Disposition: form-data; name="strData"', b"hello"),
    )
    assert asyncio.run(request(app, "POST", "/predict", body, headers)).json()["strData"] == "hello"


def test_malformed_multipart_is_a_bad_request() -> None:
    app, _ = microservice()
    headers = {b"content-type": b"multipart/form-data; boundary=b"}
    answer = asyncio.run(request(app, "POST", "/predict", b"--b\r\nno headers end", headers))
    assert answer.status == 400, answer.body
    assert answer.json()["status"]["status"] == "FAILURE"


# --- metrics ---------------------------------------------------------------------------------


def test_aggregate_exports_only_the_components_own_metrics() -> None:
    # The inputs' metrics travel on in the answer, but exporting them let a client create
    # Prometheus series at will, and one key with two types answered 500 (DuplicateTimeseries).
    app, metrics = microservice()
    inputs = [
        {"meta": {"metrics": [{"key": "x", "type": "COUNTER", "value": 1}]}, "data": {"ndarray": [1]}},
        {"meta": {"metrics": [{"key": "x", "type": "GAUGE", "value": 2}]}, "data": {"ndarray": [2]}},
    ]
    body = json.dumps({"seldonMessages": inputs}).encode()
    answer = asyncio.run(request(app, "POST", "/aggregate", body, JSON))
    assert answer.status == 200, answer.body
    assert [m["key"] for m in answer.json()["meta"]["metrics"]] == ["x", "x", "echo_calls"]
    scrape = metrics.render()[0].decode()
    exported = [line for line in scrape.splitlines() if line.startswith("echo_calls_total{")]
    assert len(exported) == 1
    assert 'method="aggregate"' in exported[0] and 'model_name="echo"' in exported[0]
    assert "\nx_total" not in scrape and "\nx{" not in scrape


# --- the OpenAPI documents ---------------------------------------------------------------------


def test_gateway_document_names_the_running_deployments_and_their_nodes() -> None:
    plane = DataPlane()
    plane.install(build(manifest("iris", node("scale", "MODEL"), {"scale": "Scale"})))
    app = GatewayApp(plane, Metrics())
    document = asyncio.run(request(app, "GET", "/openapi.json")).json()
    operation = document["paths"]["/seldon/{namespace}/{deployment}/api/v1.0/predictions"]["post"]
    enums = {p["name"]: p["schema"]["enum"] for p in operation["parameters"]}
    assert enums == {"namespace": ["default"], "deployment": ["iris"]}
    model = document["paths"]["/seldon/{deployment}/api/v1.0/metadata/{model}"]["get"]["parameters"][-1]
    assert model["name"] == "model" and model["schema"]["enum"] == ["scale"]

    plane.install(build(manifest("wine", node("scale", "MODEL"), {"scale": "Scale"})))
    document = asyncio.run(request(app, "GET", "/openapi.json")).json()  # rebuilt for the new set
    operation = document["paths"]["/seldon/{deployment}/api/v1.0/predictions"]["post"]
    assert operation["parameters"][0]["schema"]["enum"] == ["iris", "wine"]


@pytest.mark.parametrize("document", [microservice_openapi(), gateway_openapi([("default", "iris", ["m"])])])
def test_documents_declare_every_error_and_every_path_parameter(document: dict[str, Any]) -> None:
    for path, item in document["paths"].items():
        declared = {p["name"] for p in item.get("parameters", [])}
        for method, operation in item.items():
            if method == "parameters":
                continue
            names = declared | {p["name"] for p in operation.get("parameters", []) if p["in"] == "path"}
            assert {part[1:-1] for part in path.split("/") if part.startswith("{")} <= names, path
            if method == "post" and not path.startswith("/admin"):
                # V2 paths answer the protocol's own `{"error": ...}`, every other path Seldon's FAILURE.
                form = "V2Error" if path.startswith("/v2/") or "/v2/" in path else "Failure"
                for code in ("400", "404", "405", "413", "500"):
                    schema = operation["responses"][code]["content"]["application/json"]["schema"]
                    assert schema == {"$ref": f"#/components/schemas/{form}"}, (path, code)


def test_documents_are_valid_openapi() -> None:
    schemathesis = pytest.importorskip("schemathesis")
    for document in (microservice_openapi(), gateway_openapi([("default", "iris", ["m"])])):
        schema = schemathesis.openapi.from_dict(json.loads(json.dumps(document)))
        assert all(result.ok() for result in schema.get_all_operations())


def test_numeric_echo_through_the_microservice_keeps_the_nan_policy() -> None:
    app, _ = microservice()
    body = b'{"data": {"tensor": {"shape": [3], "values": ["NaN", "Infinity", 1.5]}}}'
    values = asyncio.run(request(app, "POST", "/predict", body, JSON)).json()["data"]["tensor"]["values"]
    assert values == ["NaN", "Infinity", 1.5]
    assert np.isnan(np.array(values[:1], dtype=float)).all()
