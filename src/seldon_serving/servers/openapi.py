"""OpenAPI 3 documents of the REST edges, built from one set of Seldon schemas."""

from __future__ import annotations

from typing import Any

_NUMBER_LIST = {"type": "array", "items": {"type": "number"}}

SCHEMAS: dict[str, Any] = {
    "Status": {
        "type": "object",
        "properties": {
            "code": {"type": "integer"},
            "info": {"type": "string"},
            "reason": {"type": "string"},
            "status": {"type": "string", "enum": ["SUCCESS", "FAILURE"]},
        },
    },
    "Metric": {
        "type": "object",
        "properties": {
            "key": {"type": "string"},
            "type": {"type": "string", "enum": ["COUNTER", "GAUGE", "TIMER", "HISTOGRAM"]},
            "value": {"type": "number"},
            "tags": {"type": "object", "additionalProperties": {"type": "string"}},
        },
    },
    "Meta": {
        "type": "object",
        "properties": {
            "puid": {"type": "string"},
            "tags": {"type": "object"},
            "routing": {"type": "object", "additionalProperties": {"type": "integer"}},
            "requestPath": {"type": "object", "additionalProperties": {"type": "string"}},
            "metrics": {"type": "array", "items": {"$ref": "#/components/schemas/Metric"}},
        },
    },
    "Tensor": {
        "type": "object",
        "required": ["shape", "values"],
        "properties": {"shape": {"type": "array", "items": {"type": "integer"}}, "values": _NUMBER_LIST},
    },
    "DefaultData": {
        "type": "object",
        "properties": {
            "names": {"type": "array", "items": {"type": "string"}},
            "tensor": {"$ref": "#/components/schemas/Tensor"},
            "ndarray": {"type": "array", "items": {}},
            "tftensor": {"type": "object"},
        },
    },
    "SeldonMessage": {
        "type": "object",
        "properties": {
            "status": {"$ref": "#/components/schemas/Status"},
            "meta": {"$ref": "#/components/schemas/Meta"},
            "data": {"$ref": "#/components/schemas/DefaultData"},
            "binData": {"type": "string", "format": "byte"},
            "strData": {"type": "string"},
            "jsonData": {},
        },
    },
    "SeldonMessageList": {
        "type": "object",
        "properties": {
            "seldonMessages": {"type": "array", "items": {"$ref": "#/components/schemas/SeldonMessage"}}
        },
    },
    "Feedback": {
        "type": "object",
        "properties": {
            "request": {"$ref": "#/components/schemas/SeldonMessage"},
            "response": {"$ref": "#/components/schemas/SeldonMessage"},
            "reward": {"type": "number"},
            "truth": {"$ref": "#/components/schemas/SeldonMessage"},
        },
    },
}


def _post(summary: str, body_schema: str) -> dict[str, Any]:
    ref = {"$ref": f"#/components/schemas/{body_schema}"}
    answer = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/SeldonMessage"}}}}
    return {
        "post": {
            "summary": summary,
            "requestBody": {"required": True, "content": {"application/json": {"schema": ref}}},
            "responses": {
                "200": {"description": "the answer", **answer},
                "400": {"description": "the request was malformed", **answer},
                "500": {"description": "the model raised an error", **answer},
            },
        }
    }


def _get(summary: str, content_type: str = "application/json") -> dict[str, Any]:
    return {
        "get": {
            "summary": summary,
            "responses": {"200": {"description": "ok", "content": {content_type: {}}}},
        }
    }


def document(title: str, paths: dict[str, Any]) -> dict[str, Any]:
    return {
        "openapi": "3.0.3",
        "info": {"title": title, "version": "1.0", "license": {"name": "Apache-2.0"}},
        "paths": paths,
        "components": {"schemas": SCHEMAS},
    }


def microservice_openapi() -> dict[str, Any]:
    paths: dict[str, Any] = {}
    for path in ("/predict", "/api/v1.0/predictions", "/api/v0.1/predictions"):
        paths[path] = _post("Predict", "SeldonMessage")
    paths["/transform-input"] = _post("Transform input", "SeldonMessage")
    paths["/transform-output"] = _post("Transform output", "SeldonMessage")
    paths["/route"] = _post("Route: answers the chosen branch as a 1x1 array", "SeldonMessage")
    paths["/aggregate"] = _post("Aggregate the outputs of several children", "SeldonMessageList")
    for path in ("/send-feedback", "/api/v1.0/feedback", "/api/v0.1/feedback"):
        paths[path] = _post("Send feedback", "Feedback")
    paths["/health/ping"] = _get("Liveness", "text/plain")
    paths["/health/status"] = _get("Health via the model")
    paths["/metadata"] = _get("Model metadata")
    paths["/metrics"] = _get("Prometheus metrics", "text/plain")
    return document("Seldon Serving component microservice", paths)
