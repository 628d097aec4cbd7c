"""OpenAPI 3 documents of the REST edges, built from one set of Seldon schemas.

Requests and answers have separate schemas.  Request schemas describe what the codec
accepts in proto3 JSON (one data form per message, numbers or the "NaN"/"Infinity"
strings in float fields); they are strict enough that a schema-driven generator (or
a client generator) produces messages that reach the model rather than a 400.  Answer
schemas are stricter still: only the fields SeldonClient's strict parser knows.
Every error is declared with the FAILURE body all our errors share.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from seldon_serving.protocol.arrays import TF_TYPES

_INT32 = {"type": "integer", "format": "int32", "minimum": -(2**31), "maximum": 2**31 - 1}
# proto3 JSON writes non-finite floats as these strings (JSON itself has no NaN literal)
_NON_FINITE = {"type": "string", "enum": ["NaN", "Infinity", "-Infinity"]}
_FLOAT = {"anyOf": [{"type": "number"}, _NON_FINITE]}
_FLOAT_LIST = {"type": "array", "items": _FLOAT}
# int64 / uint64 values are strings in proto3 JSON (numbers are accepted too)
_INT64 = {"anyOf": [{"type": "integer"}, {"type": "string", "pattern": "^-?[0-9]{1,18}$"}]}
_STR_MAP = {"type": "object", "additionalProperties": {"type": "string"}}
_BYTES = {"type": "string", "format": "byte"}
_MESSAGE_FORMS = ("data", "binData", "strData", "jsonData", "customData")
_DATA_FORMS = ("tensor", "ndarray", "tftensor")


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _one_form(common: dict[str, Any], forms: dict[str, Any]) -> dict[str, Any]:
    """An object carrying `common` and at most one of `forms` (a protobuf oneof)."""
    variants = [{"type": "object", "properties": common, "additionalProperties": False}]
    for name, schema in forms.items():
        variants.append(
            {
                "type": "object",
                "properties": {**common, name: schema},
                "required": [name],
                "additionalProperties": False,
            }
        )
    return {"anyOf": variants}


def _tensor_proto(out: bool) -> dict[str, Any]:
    int_list = {"type": "array", "items": {"type": "integer"}}
    dim = {
        "type": "object",
        "properties": {"size": {"type": "string"} if out else _INT64, "name": {"type": "string"}},
        "additionalProperties": False,
    }
    properties: dict[str, Any] = {
        "dtype": {"type": "string", "enum": sorted(TF_TYPES)},
        "tensorShape": {
            "type": "object",
            "properties": {"dim": {"type": "array", "items": dim}},
            "additionalProperties": False,
        },
        "tensorContent": _BYTES,
        "stringVal": {"type": "array", "items": _BYTES},
    }
    if not out:  # we answer with tensorContent (or stringVal) only
        properties.update(
            {
                "floatVal": _FLOAT_LIST,
                "doubleVal": _FLOAT_LIST,
                "scomplexVal": _FLOAT_LIST,
                "dcomplexVal": _FLOAT_LIST,
                "intVal": int_list,
                "halfVal": int_list,
                "uint32Val": int_list,
                "int64Val": {"type": "array", "items": _INT64},
                "uint64Val": {"type": "array", "items": _INT64},
                "boolVal": {"type": "array", "items": {"type": "boolean"}},
            }
        )
    return {"type": "object", "required": ["dtype"], "properties": properties, "additionalProperties": False}


def _schemas() -> dict[str, Any]:
    metric_common = {
        "key": {"type": "string"},
        "type": {"type": "string", "enum": ["COUNTER", "GAUGE", "TIMER", "HISTOGRAM"]},
        "value": _FLOAT,
        "tags": _STR_MAP,
        "bins": _FLOAT_LIST,
    }
    status = {
        "type": "object",
        "properties": {
            "code": _INT32,
            "info": {"type": "string"},
            "reason": {"type": "string"},
            "status": {"type": "string", "enum": ["SUCCESS", "FAILURE"]},
        },
        "additionalProperties": False,
    }

    def meta(metric: str) -> dict[str, Any]:
        return {
            "type": "object",
            "properties": {
                "puid": {"type": "string"},
                "tags": {"type": "object"},
                "routing": {"type": "object", "additionalProperties": _INT32},
                "requestPath": _STR_MAP,
                "metrics": {"type": "array", "items": _ref(metric)},
            },
            "additionalProperties": False,
        }

    def message(suffix: str) -> dict[str, Any]:
        return _one_form(
            {"status": _ref("Status"), "meta": _ref("Meta" + suffix)},
            {
                "data": _ref("DefaultData" + suffix),
                "binData": _BYTES,
                "strData": {"type": "string"},
                "jsonData": {},
                "customData": {
                    "type": "object",
                    "required": ["@type"],
                    "properties": {"@type": {"type": "string"}},
                },
            },
        )

    names = {"type": "array", "items": {"type": "string"}}
    return {
        "Status": status,
        "Metric": {"type": "object", "properties": metric_common, "additionalProperties": False},
        "Meta": meta("Metric"),
        # A request tensor: the shape must hold as many values as given (an empty or
        # missing shape takes any count); values are numbers or proto3's NaN strings.
        "Tensor": {
            "type": "object",
            "properties": {
                "shape": {"type": "array", "items": {"type": "integer", "minimum": 0, "maximum": 2**31 - 1}},
                "values": _FLOAT_LIST,
            },
            "additionalProperties": False,
        },
        "TensorProto": _tensor_proto(out=False),
        # ndarray is a google.protobuf.ListValue: any rectangular JSON list (numeric for a
        # numeric model; ragged lists are refused).
        "DefaultData": _one_form(
            {"names": names},
            {"tensor": _ref("Tensor"), "ndarray": {"type": "array"}, "tftensor": _ref("TensorProto")},
        ),
        "SeldonMessage": message(""),
        "SeldonMessageList": {
            "type": "object",
            "properties": {"seldonMessages": {"type": "array", "items": _ref("SeldonMessage")}},
            "additionalProperties": False,
        },
        "Feedback": {
            "type": "object",
            "properties": {
                "request": _ref("SeldonMessage"),
                "response": _ref("SeldonMessage"),
                "reward": _FLOAT,
                "truth": _ref("SeldonMessage"),
            },
            "additionalProperties": False,
        },
        # --- what we answer ---
        "MetaOut": meta("Metric"),
        "TensorOut": {
            "type": "object",
            # a feedback answer is a protobuf message's JSON, which leaves empty fields out
            "required": ["shape"],
            "properties": {"shape": {"type": "array", "items": {"type": "integer"}}, "values": _FLOAT_LIST},
            "additionalProperties": False,
        },
        "TensorProtoOut": _tensor_proto(out=True),
        "DefaultDataOut": _one_form(
            {"names": names},
            {"tensor": _ref("TensorOut"), "ndarray": {"type": "array"}, "tftensor": _ref("TensorProtoOut")},
        ),
        "SeldonMessageOut": message("Out"),
        "Empty": {"type": "object", "additionalProperties": False},
        # Every error answer: a SeldonMessage whose status says FAILURE, reason and info.
        "Failure": {
            "type": "object",
            "required": ["status"],
            "properties": {
                "status": {
                    "type": "object",
                    "required": ["code", "info", "reason", "status"],
                    "properties": {
                        "code": {"type": "integer"},
                        "info": {"type": "string"},
                        "reason": {"type": "string", "minLength": 1},
                        "status": {"type": "string", "enum": ["FAILURE"]},
                    },
                    "additionalProperties": False,
                }
            },
        },
        "ModelMetadata": {
            "type": "object",
            "properties": {
                "name": {"type": "string"},
                "versions": names,
                "platform": {"type": "string"},
                "inputs": {"type": "array"},
                "outputs": {"type": "array"},
                "custom": _STR_MAP,
            },
        },
        "GraphMetadata": {
            "type": "object",
            "required": ["name", "models"],
            "properties": {
                "name": {"type": "string"},
                "models": {"type": "object", "additionalProperties": _ref("ModelMetadata")},
                "inputs": {"type": "array"},
                "outputs": {"type": "array"},
            },
        },
    }


_V2_DATATYPES = ["BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64"]
_V2_DATATYPES += ["FP16", "FP32", "FP64", "BYTES"]


def _v2_schemas() -> dict[str, Any]:
    """The Open Inference Protocol's REST bodies (docs/v2.md)."""
    parameters = {"type": "object", "additionalProperties": True}
    shape = {"type": "array", "items": {"type": "integer", "minimum": 0}, "maxItems": 32}
    tensor_metadata = {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "datatype": {"type": "string"},
            "shape": {"type": "array", "items": {"type": "integer"}},
        },
    }
    data = {"type": "array", "description": "row-major, flat or nested; BYTES as strings"}
    return {
        "V2InferenceRequest": {
            "type": "object",
            "required": ["inputs"],
            "properties": {
                "id": {"type": "string"},
                "parameters": parameters,
                "inputs": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["name", "datatype", "shape", "data"],
                        "properties": {
                            "name": {"type": "string", "minLength": 1},
                            "datatype": {"type": "string", "enum": _V2_DATATYPES},
                            "shape": shape,
                            "data": data,
                            "parameters": parameters,
                        },
                    },
                },
                "outputs": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["name"],
                        "properties": {"name": {"type": "string"}, "parameters": parameters},
                    },
                },
            },
        },
        "V2InferenceResponse": {
            "type": "object",
            "required": ["model_name", "outputs"],
            "properties": {
                "model_name": {"type": "string"},
                "model_version": {"type": "string"},
                "id": {"type": "string"},
                "parameters": parameters,
                "outputs": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["name", "datatype", "shape"],
                        "properties": {
                            "name": {"type": "string"},
                            "datatype": {"type": "string", "enum": _V2_DATATYPES},
                            "shape": shape,
                            "data": data,
                            "parameters": parameters,
                        },
                    },
                },
            },
        },
        "V2ModelMetadata": {
            "type": "object",
            "required": ["name", "versions", "platform", "inputs", "outputs"],
            "properties": {
                "name": {"type": "string"},
                "versions": {"type": "array", "items": {"type": "string"}},
                "platform": {"type": "string"},
                "inputs": {"type": "array", "items": tensor_metadata},
                "outputs": {"type": "array", "items": tensor_metadata},
            },
        },
        "V2Error": {
            "type": "object",
            "required": ["error"],
            "properties": {"error": {"type": "string"}},
        },
    }


SCHEMAS: dict[str, Any] = {**_schemas(), **_v2_schemas()}

_FAILURE = {"application/json": {"schema": _ref("Failure")}}
ERRORS: dict[str, dict[str, Any]] = {
    "400": {"description": "the request was malformed (the info says what was wrong)", "content": _FAILURE},
    "401": {"description": "no valid bearer token (OAuth front end only)", "content": _FAILURE},
    "404": {"description": "no such path, deployment or model", "content": _FAILURE},
    "405": {"description": "the path does not take this method", "content": _FAILURE},
    "413": {"description": "the body is larger than --max-message-size", "content": _FAILURE},
    "500": {"description": "the model (a graph node) raised an error", "content": _FAILURE},
    "503": {"description": "paused, or a graph node cannot be reached", "content": _FAILURE},
    "504": {"description": "a graph node did not answer in time", "content": _FAILURE},
}
_MICROSERVICE_ERRORS = ("400", "404", "405", "413", "500")

_EXAMPLE = {"data": {"names": ["a", "b", "c", "d"], "ndarray": [[1.0, 2.0, 3.0, 4.0]]}}


def post_operation(
    summary: str,
    body_schema: str,
    *,
    answer_schema: str = "SeldonMessageOut",
    errors: Iterable[str] = _MICROSERVICE_ERRORS,
    parameters: list[dict[str, Any]] | None = None,
    example: Any = None,
) -> dict[str, Any]:
    json_body: dict[str, Any] = {"schema": _ref(body_schema)}
    if example is not None:
        json_body["example"] = example
    operation: dict[str, Any] = {
        "summary": summary,
        # Seldon's wrapper also reads a form field `json=<message>` (and multipart bodies,
        # one part per top-level key, which a schema cannot describe usefully).
        "requestBody": {
            "required": True,
            "content": {
                "application/json": json_body,
                "application/x-www-form-urlencoded": {
                    "schema": {
                        "type": "object",
                        "required": ["json"],
                        "properties": {"json": {"type": "string"}},
                    }
                },
            },
        },
        "responses": {
            "200": {
                "description": "the answer",
                "content": {"application/json": {"schema": _ref(answer_schema)}},
            },
            **{code: ERRORS[code] for code in errors},
        },
    }
    if parameters:
        operation["parameters"] = parameters
    return {"post": operation}


def get_operation(
    summary: str,
    content_type: str = "application/json",
    *,
    schema: str | None = None,
    errors: Iterable[str] = ("404", "405"),
    parameters: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    if schema:
        content: dict[str, Any] = {"schema": _ref(schema)}
    else:
        content = {"schema": {"type": "object" if content_type == "application/json" else "string"}}
    operation: dict[str, Any] = {
        "summary": summary,
        "responses": {
            "200": {"description": "ok", "content": {content_type: content}},
            **{code: ERRORS[code] for code in errors},
        },
    }
    if parameters:
        operation["parameters"] = parameters
    return {"get": operation}


_V2_ERROR = {"application/json": {"schema": _ref("V2Error")}}
_V2_ERRORS = {
    "400": "the request was malformed (the error says what was wrong)",
    "404": "no such model or V2 path",
    "405": "the path does not take this method",
    "413": "the body is larger than --max-message-size",
    "500": "the model (a graph node) raised an error",
    "501": "a graph node served over REST or gRPC cannot take V2 yet",
    "503": "a graph node cannot be reached",
    "504": "a graph node did not answer in time",
}


def v2_paths(model: dict[str, Any], params: list[dict[str, Any]], prefix: str = "") -> dict[str, Any]:
    """The Open Inference Protocol's paths (under `prefix`), `model` the {name} parameter."""

    def answer(
        schema: dict[str, Any], summary: str, errors: Iterable[str], post: bool = False
    ) -> dict[str, Any]:
        operation: dict[str, Any] = {
            "summary": summary,
            "responses": {
                "200": {"description": "ok", "content": {"application/json": {"schema": schema}}},
                **{code: {"description": _V2_ERRORS[code], "content": _V2_ERROR} for code in errors},
            },
        }
        if params:
            operation["parameters"] = params
        if post:
            operation["requestBody"] = {
                "required": True,
                "content": {
                    "application/json": {"schema": _ref("V2InferenceRequest")},
                    "application/octet-stream": {
                        "schema": {
                            "type": "string",
                            "format": "binary",
                            "description": "Triton's binary extension: the JSON (its length in the "
                            "Inference-Header-Content-Length header), then the tensors' bytes",
                        }
                    },
                },
            }
            return {"post": operation}
        return {"get": operation}

    flag = {
        "type": "object",
        "properties": {"name": {"type": "string"}, "live": {"type": "boolean"}, "ready": {"type": "boolean"}},
    }
    version = {
        "name": "version",
        "in": "path",
        "required": True,
        "schema": {"type": "string", "minLength": 1},
    }
    paths: dict[str, Any] = {
        f"{prefix}/v2/health/live": answer(flag, "V2 liveness", ("405",)),
        f"{prefix}/v2/health/ready": answer(flag, "V2 readiness", ("405",)),
        f"{prefix}/v2": answer({"type": "object"}, "V2 server metadata", ("405",)),
    }
    for base, extra in (
        (f"{prefix}/v2/models/{{model}}", []),
        (f"{prefix}/v2/models/{{model}}/versions/{{version}}", [version]),
    ):
        with_model = [*params, model, *extra]
        for path, operation in (
            (base, answer(_ref("V2ModelMetadata"), "V2 model metadata", ("404", "405"))),
            (f"{base}/ready", answer(flag, "V2 model readiness", ("404", "405"))),
            (
                f"{base}/infer",
                answer(
                    _ref("V2InferenceResponse"),
                    "V2 inference",
                    ("400", "404", "405", "413", "500", "501", "503", "504"),
                    post=True,
                ),
            ),
        ):
            for body in operation.values():
                body["parameters"] = with_model
            paths[path] = operation
    return paths


def document(title: str, paths: dict[str, Any]) -> dict[str, Any]:
    return {
        "openapi": "3.0.3",
        "info": {"title": title, "version": "1.0", "license": {"name": "Apache-2.0"}},
        "paths": paths,
        "components": {"schemas": SCHEMAS},
    }


def microservice_openapi(model_name: str = "") -> dict[str, Any]:
    """The microservice's document; `model_name` its V2 model name."""
    paths: dict[str, Any] = {}
    for path in ("/predict", "/api/v1.0/predictions", "/api/v0.1/predictions"):
        paths[path] = post_operation("Predict", "SeldonMessage", example=_EXAMPLE)
    paths["/transform-input"] = post_operation("Transform input", "SeldonMessage", example=_EXAMPLE)
    paths["/transform-output"] = post_operation("Transform output", "SeldonMessage", example=_EXAMPLE)
    paths["/route"] = post_operation("Route: answers the chosen branch as a 1x1 array", "SeldonMessage")
    paths["/aggregate"] = post_operation("Aggregate the outputs of several children", "SeldonMessageList")
    for path in ("/send-feedback", "/api/v1.0/feedback", "/api/v0.1/feedback"):
        paths[path] = post_operation("Send feedback", "Feedback")
    paths["/health/ping"] = get_operation("Liveness", "text/plain")
    paths["/health/status"] = get_operation(
        "Health via the model", schema="SeldonMessageOut", errors=("405", "500")
    )
    paths["/metadata"] = get_operation("Model metadata", schema="ModelMetadata")
    paths["/metrics"] = get_operation("Prometheus metrics", "text/plain")
    schema: dict[str, Any] = {"type": "string", "minLength": 1}
    if model_name:
        schema["enum"] = [model_name]
    name = {"name": "model", "in": "path", "required": True, "schema": schema}
    paths.update(v2_paths(name, []))
    return document("Seldon Serving component microservice", paths)


GATEWAY_API_VERSIONS = ("v0.1", "v1.0")


def gateway_openapi(served: Iterable[tuple[str, str, Iterable[str]]] = ()) -> dict[str, Any]:
    """The gateway's document; `served` is (namespace, name, node names) of each running
    deployment, given as enums of the path parameters so a schema-driven client (or fuzzer)
    reaches the data plane and not only 404s."""
    served = list(served)
    names = sorted({name for _, name, _ in served})
    namespaces = sorted({namespace for namespace, _, _ in served})
    nodes = sorted({node for _, _, graph in served for node in graph})

    def param(name: str, where: str, values: list[str], description: str) -> dict[str, Any]:
        schema: dict[str, Any] = {"type": "string", "minLength": 1}
        if values:
            schema["enum"] = values
        return {
            "name": name,
            "in": where,
            "required": where == "path",
            "schema": schema,
            "description": description,
        }

    deployment = param("deployment", "path", names, "a running SeldonDeployment")
    namespace = param("namespace", "path", namespaces, "its namespace")
    model = param("model", "path", nodes, "a node of the deployment's graph")
    headers = [
        param("seldon", "header", names, "the deployment (needed when several are running)"),
        param("namespace", "header", namespaces, "its namespace"),
    ]
    errors = ("400", "401", "404", "405", "413", "500", "503", "504")
    example = {"data": {"names": ["a", "b"], "ndarray": [[1.0, 2.0]]}}
    paths: dict[str, Any] = {}
    for prefix, params in (
        ("/seldon/{deployment}", [deployment]),
        ("/seldon/{namespace}/{deployment}", [namespace, deployment]),
        ("", headers),
    ):
        for version in GATEWAY_API_VERSIONS:
            base = f"{prefix}/api/{version}"
            paths[f"{base}/predictions"] = post_operation(
                "Predict through the deployment's graph",
                "SeldonMessage",
                errors=errors,
                parameters=params,
                example=example,
            )
            paths[f"{base}/feedback"] = post_operation(
                "Send feedback (answers {})",
                "Feedback",
                answer_schema="Empty",
                errors=errors,
                parameters=params,
            )
        get_errors = ("401", "404", "405", "503", "504")
        paths[f"{prefix}/api/v1.0/metadata"] = get_operation(
            "Graph metadata", schema="GraphMetadata", errors=get_errors, parameters=params
        )
        paths[f"{prefix}/api/v1.0/metadata/{{model}}"] = get_operation(
            "Model metadata of one node",
            schema="ModelMetadata",
            errors=get_errors,
            parameters=[*params, model],
        )
    v2_model = param("model", "path", names, "a running SeldonDeployment (the V2 model)")
    paths.update(v2_paths(v2_model, headers[1:]))
    paths.update(v2_paths(v2_model, [deployment], "/seldon/{deployment}"))
    paths.update(v2_paths(v2_model, [namespace, deployment], "/seldon/{namespace}/{deployment}"))
    for path, summary in (("/ping", "pong"), ("/live", "live")):
        paths[path] = get_operation(summary, "text/plain", errors=("405",))
    ready = get_operation("ready, or 503 with the reason", "text/plain", errors=("405",))
    ready["get"]["responses"]["503"] = {"description": "not ready", "content": {"text/plain": {}}}
    paths["/ready"] = ready
    # On `seldon serve` these answer on the public port only to the admin token (metrics also with
    # --public-metrics), and 404 naming the admin port without one; `seldon engine` serves them.
    admin_only = ("401", "404", "405")
    admin_401 = {"description": "no admin token, or not this server's", "content": _FAILURE}
    admin_404 = {"description": "served on the admin port (no admin token configured)", "content": _FAILURE}

    def admin_get(summary: str, content_type: str = "text/plain") -> dict[str, Any]:
        operation = get_operation(summary, content_type, errors=admin_only)
        operation["get"]["responses"].update({"401": admin_401, "404": admin_404})
        return operation

    paths["/pause"] = admin_get("Take the gateway out of rotation (admin)")
    paths["/unpause"] = admin_get("Put the gateway back into rotation (admin)")
    paths["/metrics"] = paths["/prometheus"] = admin_get("Prometheus metrics (admin, or --public-metrics)")
    admin_errors = {**{code: ERRORS[code] for code in ("400", "404")}, "401": admin_401}
    paths["/admin/deployments"] = {
        **admin_get("List deployments (admin)", "application/json"),
        "put": {
            "summary": "Apply a manifest (admin)",
            "responses": {"200": {"description": "applied"}, **admin_errors},
        },
    }
    paths["/admin/deployments/{namespace}/{name}"] = {
        "parameters": [
            {"name": "namespace", "in": "path", "required": True, "schema": {"type": "string"}},
            {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}},
        ],
        **admin_get("One deployment with its status (admin)", "application/json"),
        "delete": {
            "summary": "Delete a deployment (admin)",
            "responses": {"200": {"description": "deleted"}, **admin_errors},
        },
    }
    return document("Seldon Serving gateway", paths)
