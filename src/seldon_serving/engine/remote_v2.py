"""A V2 request at a graph node served by another process: the node's own V2 inference.

REST and process nodes get `POST /v2/models/<node>/infer` (binary tensors when the request came
so: REST only; a process node's socket takes JSON), gRPC nodes `ModelInfer`; a microservice of
ours answers V2 under its node name (PREDICTIVE_UNIT_ID) as well as its model name.  Seldon's
meta (puid, tags) travels in the request's parameters and comes back in the answer's.

The graph walk calls `infer`, which picks the call by the node's runner: process, REST
(`rest_infer`) or gRPC (`grpc_infer`); an engine of another cluster has no V2 node API and
answers V2 requests with `V2NotSupported` (501 / UNIMPLEMENTED), naming the node.
"""

from __future__ import annotations

from typing import Any

import grpc

from seldon_serving.engine.tracing import TRACEPARENT
from seldon_serving.protocol import v2
from seldon_serving.protocol._pb import open_inference_v2_pb2 as v2pb
from seldon_serving.protocol._pb import prediction_pb2 as pb
from seldon_serving.protocol.errors import BadRequest, MicroserviceError, NodeUnavailable, SeldonError
from seldon_serving.protocol.message import V2, SeldonMessage


class V2NotSupported(SeldonError):
    http_status = 501
    grpc_code = "UNIMPLEMENTED"
    reason = "Not Implemented"
    code = 501


def not_supported(node: str, step: str, how: str) -> V2NotSupported:
    return V2NotSupported(
        f"node '{node}' ({how}) cannot take a V2 request for its {step} step; call this deployment "
        "with Seldon's protocol, or serve the node in-process",
        node=node,
    )


def _request(msg: SeldonMessage) -> v2.InferPayload:
    payload: v2.InferPayload = msg.payload
    # The caller's binary_data_output is for the gateway's answer to it, not for this hop.
    dropped = ("puid", "tags", "binary_data_output")
    parameters = {k: v for k, v in payload.parameters.items() if k not in dropped}
    parameters.update(v2.meta_to_parameters({k: msg.meta[k] for k in ("puid", "tags") if k in msg.meta}))
    # Every output: the requested ones are the whole graph's, picked by the gateway at the end.
    return v2.InferPayload(payload.tensors, id=payload.id, parameters=parameters, binary=payload.binary)


def _answer(payload: v2.InferPayload) -> SeldonMessage:
    meta = v2.meta_from_parameters(payload.parameters)
    parameters = {
        k: v
        for k, v in payload.parameters.items()
        if k not in ("puid", "tags", "routing", "requestPath", "metrics")
    }
    payload.parameters = parameters
    return SeldonMessage(form=V2, payload=payload, names=payload.names(), meta=meta)


def _failure(node: str, status: int, raw: bytes) -> SeldonError:
    try:
        info = str(v2.loads(raw).get("error") or "")
    except Exception:
        info = ""
    info = info or raw[:200].decode(errors="replace") or f"HTTP {status}"
    kind = BadRequest if 400 <= status < 500 else MicroserviceError
    return kind(f"node '{node}' answered {status}: {info}", node=node)


async def rest_infer(runner: Any, msg: SeldonMessage) -> SeldonMessage:
    """`POST /v2/models/<node>/infer` on a RestRunner's node, over its pooled session."""
    import aiohttp

    request = _request(msg)
    body, header_length = v2.encode_rest_body(request, response=False)
    headers = {"Content-Type": "application/json"}
    if header_length is not None:
        headers = {
            "Content-Type": "application/octet-stream",
            "Inference-Header-Content-Length": str(header_length),
        }
    traceparent = TRACEPARENT.get()
    if traceparent is not None:  # set only when tracing is on
        headers["traceparent"] = traceparent
    url = f"{runner.base}/v2/models/{runner.node}/infer"
    try:
        async with runner._client().post(url, data=body, headers=headers) as response:
            raw = await response.read()
            status = response.status
            answer_length = response.headers.get("Inference-Header-Content-Length")
    except (aiohttp.ClientConnectionError, OSError) as exc:
        raise runner._unreachable(exc) from None
    if status >= 400:
        raise _failure(runner.node, status, raw)
    return _answer(v2.decode_rest_body(raw, answer_length, response=True))


async def process_infer(runner: Any, msg: SeldonMessage) -> SeldonMessage:
    """The same over a process node's socket (JSON tensors: its requests carry no extra headers)."""
    request = _request(msg)
    request.binary = False
    body, _ = v2.encode_rest_body(request, response=False)
    status, raw = await runner._exchange(b"POST", f"/v2/models/{runner.node}/infer", body)
    if status >= 400:
        raise _failure(runner.node, status, raw)
    return _answer(v2.decode_rest_body(raw, None, response=True))


async def grpc_infer(runner: Any, msg: SeldonMessage) -> SeldonMessage:
    """`inference.GRPCInferenceService/ModelInfer` on a GrpcRunner's node, over its channel."""
    request = v2.encode_proto_request(_request(msg), v2pb.ModelInferRequest(), runner.node)
    method = runner._methods.get("v2/ModelInfer")
    if method is None:
        runner._method("Model", "Predict", pb.SeldonMessage)  # opens the runner's channel if needed
        method = runner._channel.unary_unary(
            "/inference.GRPCInferenceService/ModelInfer",
            request_serializer=v2pb.ModelInferRequest.SerializeToString,
            response_deserializer=v2pb.ModelInferResponse.FromString,
        )
        runner._methods["v2/ModelInfer"] = method
    try:
        traceparent = TRACEPARENT.get()
        if traceparent is not None:  # set only when tracing is on
            response = await method(request, metadata=(("traceparent", traceparent),))
        else:
            response = await method(request)
    except grpc.aio.AioRpcError as exc:
        code, detail = exc.code(), exc.details() or exc.code().name
        if code == grpc.StatusCode.UNAVAILABLE:
            raise NodeUnavailable(
                f"node '{runner.node}' at {runner.target} is unreachable ({detail})", node=runner.node
            ) from None
        if code == grpc.StatusCode.INVALID_ARGUMENT:
            raise BadRequest(f"node '{runner.node}': {detail}", node=runner.node) from None
        raise MicroserviceError(
            f"node '{runner.node}' answered {code.name}: {detail}", node=runner.node
        ) from None
    return _answer(v2.decode_proto_response(response))


async def infer(runner: Any, msg: SeldonMessage) -> SeldonMessage:
    """A V2 request at a runner of another process: the node's own V2 inference (process, REST
    or gRPC node); 501 for the others."""
    from seldon_serving.engine.process import ProcessRunner
    from seldon_serving.engine.remote import EngineRunner, GrpcRunner, RestRunner

    if isinstance(runner, ProcessRunner):
        return await process_infer(runner, msg)
    if isinstance(runner, GrpcRunner):
        return await grpc_infer(runner, msg)
    # Another cluster's engine (a RestRunner too) has Seldon's external API only.
    if isinstance(runner, RestRunner) and not isinstance(runner, EngineRunner):
        return await rest_infer(runner, msg)
    raise not_supported(getattr(runner, "node", "?"), "predict", runner.describe())


__all__ = ["V2NotSupported", "grpc_infer", "infer", "not_supported", "process_infer", "rest_infer"]
