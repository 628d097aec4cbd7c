"""What every V2 edge (microservice and gateway, REST and gRPC) shares: the paths, a request as
a SeldonMessage, the answer as a V2 response, errors in the protocol's `{"error": ...}` form,
and the server and model metadata documents.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from seldon_serving.protocol import v2
from seldon_serving.protocol.errors import DeploymentNotFound, SeldonError, UserCodeError, answer_failure
from seldon_serving.protocol.message import ARRAY_FORMS, V2, SeldonMessage

SERVER_NAME = "seldon-serving"
EXTENSIONS = ["binary_tensor_data"]


class ModelNotFound(DeploymentNotFound):
    """A V2 path names a model this server does not serve (404 / NOT_FOUND)."""


# (operation, model, version): operation is "live", "ready", "server", "model", "model_ready" or "infer".
Target = tuple[str, str, str]


def parse_path(path: str) -> Target | None:
    """Which V2 operation a path (from `/v2` on) names, or None when it names none."""
    if path in ("/v2", "/v2/"):
        return "server", "", ""
    if path == "/v2/health/live":
        return "live", "", ""
    if path == "/v2/health/ready":
        return "ready", "", ""
    parts = path.split("/")
    # "", "v2", "models", name, ["versions", v], [op]
    if len(parts) < 4 or parts[1] != "v2" or parts[2] != "models" or not parts[3]:
        return None
    name, rest = parts[3], parts[4:]
    version = ""
    if len(rest) >= 2 and rest[0] == "versions" and rest[1]:
        version, rest = rest[1], rest[2:]
    if not rest or rest == [""]:
        return "model", name, version
    if rest == ["ready"]:
        return "model_ready", name, version
    if rest == ["infer"]:
        return "infer", name, version
    return None


def error_body(error: SeldonError | str) -> bytes:
    info = error.info if isinstance(error, SeldonError) else error
    return v2.dumps({"error": info})


def request_message(payload: v2.InferPayload) -> SeldonMessage:
    """A V2 request as the data plane's message; the puid and tags it sends become its meta."""
    return SeldonMessage(
        form=V2, payload=payload, names=payload.names(), meta=v2.meta_from_parameters(payload.parameters)
    )


def answer_payload(answer: SeldonMessage, request: v2.InferPayload, model_name: str) -> v2.InferPayload:
    """The V2 response to `request`: the outputs it asked for, its id, Seldon's meta in the
    parameters.  An answer whose status failed is that error; a Seldon array answer (from a
    raw method) is one output; anything else cannot be a V2 response."""
    failure = answer_failure(answer.status)
    if failure is not None:
        raise failure
    if answer.form == V2:
        payload: v2.InferPayload = answer.payload
    elif answer.form in ARRAY_FORMS:
        payload = v2.InferPayload([v2.tensor_from_value("output-0", np.asarray(answer.array()))])
    else:
        raise UserCodeError(f"the model answered a V2 request with {answer.form or 'no data'}, not tensors")
    selected = v2.select_outputs(payload, request)
    parameters = dict(selected.parameters)
    parameters.update(v2.meta_to_parameters(answer.meta))
    return v2.InferPayload(
        selected.tensors,
        id=request.id if request.id is not None else selected.id,
        parameters=parameters,
        model_name=model_name,
        model_version=selected.model_version,
        binary=request.binary,
    )


def server_metadata() -> dict[str, Any]:
    from importlib.metadata import PackageNotFoundError, version

    try:
        ours = version("seldon-serving")
    except PackageNotFoundError:  # run from a source tree that was never installed
        ours = ""
    return {"name": SERVER_NAME, "version": ours, "extensions": list(EXTENSIONS)}


def _tensor_metadata(items: Any) -> list[dict[str, Any]]:
    """V2-style tensor metadata (name, datatype, shape) from a Seldon metadata document's
    inputs/outputs; Seldon-style entries (messagetype, schema) have no V2 form and are left out."""
    out = []
    for item in items if isinstance(items, list) else []:
        if isinstance(item, Mapping) and isinstance(item.get("name"), str) and "datatype" in item:
            out.append(
                {"name": item["name"], "datatype": item["datatype"], "shape": list(item.get("shape") or [])}
            )
    return out


def model_metadata(name: str, document: Mapping[str, Any]) -> dict[str, Any]:
    """The V2 model metadata of a model whose Seldon metadata document is `document`
    (MODEL_METADATA / init_metadata): versions and platform as given, V2-style inputs/outputs."""
    versions = [str(v) for v in document.get("versions") or [] if v]
    return {
        "name": name,
        "versions": versions,
        "platform": str(document.get("platform") or ""),
        "inputs": _tensor_metadata(document.get("inputs")),
        "outputs": _tensor_metadata(document.get("outputs")),
    }


def check_model(name: str, served: str, aliases: frozenset[str] = frozenset()) -> None:
    if name != served and name not in aliases:
        raise ModelNotFound(f"no model named {v2.quote(name)} is served here (this server serves '{served}')")


JSON_HEADERS = [(b"content-type", b"application/json")]
_BINARY_TYPE = (b"content-type", b"application/octet-stream")


def rest_request(body: bytes, header_length: bytes) -> v2.InferPayload:
    """A REST V2 request body (Inference-Header-Content-Length given when binary data follows)."""
    return v2.decode_rest_body(body, header_length or None)


def rest_answer(
    payload: v2.InferPayload, request: v2.InferPayload
) -> tuple[bytes, list[tuple[bytes, bytes]]]:
    """The body and headers of a REST V2 response (binary outputs as the request asked)."""
    body, header_length = v2.encode_rest_body(payload, request)
    if header_length is None:
        return body, JSON_HEADERS
    return body, [_BINARY_TYPE, (b"inference-header-content-length", str(header_length).encode())]


def proto_model_metadata(document: Mapping[str, Any], response: Any) -> Any:
    """Fill a ModelMetadataResponse from the V2 model metadata document."""
    response.name = document["name"]
    response.versions.extend(document["versions"])
    response.platform = document["platform"]
    for key in ("inputs", "outputs"):
        for item in document[key]:
            entry = getattr(response, key).add()
            entry.name = item["name"]
            entry.datatype = str(item["datatype"])
            entry.shape.extend(int(d) for d in item["shape"])
    return response
