"""Runs INSIDE .venv-v2clients: drives the real V2 clients (Triton's `tritonclient` or KServe's
`InferenceRESTClient` / `InferenceGRPCClient`) as their users call them, from calls given as
JSON on stdin, and prints the outcomes as JSON on stdout.  argv[1] picks the library ("triton"
or "kserve"): the two register the same protobuf package, so never both in one process.

A call: {"transport": "http" | "grpc", "url": ..., "op": "infer" | "live" | "ready" |
"model_ready" | "metadata" | "server_metadata", "model": ..., "inputs": [{"name", "datatype",
"shape", "data" (flat; BYTES as str)}], "binary": bool (inputs as binary / raw), "outputs":
[{"name", "binary"}], "headers": {...}, "parameters": {...}, "id": ...}.
An outcome: {"outputs": {name: {"datatype", "shape", "data"}}, "parameters", "id"} for an
inference, {"value": ...} for the others, or {"error": str, "status": int | str} for a failure.
"""

import asyncio
import json
import sys

import numpy as np

LIB = sys.argv[1]


def np_dtype(datatype):
    return {
        "BOOL": np.bool_,
        "UINT8": np.uint8,
        "UINT16": np.uint16,
        "UINT32": np.uint32,
        "UINT64": np.uint64,
        "INT8": np.int8,
        "INT16": np.int16,
        "INT32": np.int32,
        "INT64": np.int64,
        "FP16": np.float16,
        "FP32": np.float32,
        "FP64": np.float64,
        "BYTES": np.object_,
    }[datatype]


def to_numpy(spec):
    if spec["datatype"] == "BYTES":
        flat = np.array([s.encode() for s in spec["data"]], dtype=np.object_)
    else:
        flat = np.array(spec["data"], dtype=np_dtype(spec["datatype"]))
    return flat.reshape(spec["shape"])


def plain(array, datatype):
    flat = np.asarray(array).reshape(-1)
    if datatype == "BYTES":
        return [v.decode() if isinstance(v, bytes) else str(v) for v in flat]
    return [v.item() for v in flat]


def triton_call(call):
    if call["transport"] == "http":
        import tritonclient.http as client_lib
    else:
        import tritonclient.grpc as client_lib
    from tritonclient.utils import InferenceServerException

    client = client_lib.InferenceServerClient(url=call["url"])
    headers = call.get("headers")
    op = call["op"]
    try:
        if op == "live":
            return {"value": client.is_server_live(headers=headers)}
        if op == "ready":
            return {"value": client.is_server_ready(headers=headers)}
        if op == "model_ready":
            return {"value": client.is_model_ready(call["model"], headers=headers)}
        if op == "server_metadata":
            value = client.get_server_metadata(headers=headers)
            return {"value": value if isinstance(value, dict) else _message_dict(value)}
        if op == "metadata":
            value = client.get_model_metadata(call["model"], headers=headers)
            return {"value": value if isinstance(value, dict) else _message_dict(value)}
        inputs = []
        for spec in call["inputs"]:
            item = client_lib.InferInput(spec["name"], spec["shape"], spec["datatype"])
            array = to_numpy(spec)
            if call["transport"] == "http":
                item.set_data_from_numpy(array, binary_data=call.get("binary", True))
            else:
                item.set_data_from_numpy(array)
            inputs.append(item)
        outputs = None
        if call.get("outputs") is not None:
            if call["transport"] == "http":
                outputs = [
                    client_lib.InferRequestedOutput(o["name"], binary_data=o.get("binary", True))
                    for o in call["outputs"]
                ]
            else:
                outputs = [client_lib.InferRequestedOutput(o["name"]) for o in call["outputs"]]
        kwargs = {"headers": headers, "request_id": call.get("id", "")}
        if call.get("parameters"):
            kwargs["parameters"] = call["parameters"]
        result = client.infer(call["model"], inputs, outputs=outputs, **kwargs)
        response = result.get_response()
        if not isinstance(response, dict):
            response = _message_dict(response)
        out = {}
        for entry in response.get("outputs", []):
            array = result.as_numpy(entry["name"])
            out[entry["name"]] = {
                "datatype": entry["datatype"],
                "shape": list(array.shape),
                "data": plain(array, entry["datatype"]),
            }
        return {
            "outputs": out,
            "parameters": _parameters(response.get("parameters")),
            "id": response.get("id"),
        }
    except InferenceServerException as exc:
        return {"error": exc.message(), "status": exc.status()}
    finally:
        client.close()


def _message_dict(message):
    from google.protobuf import json_format

    return json_format.MessageToDict(message, preserving_proto_field_name=True)


def _parameters(parameters):
    """Parameters as plain values (gRPC's JSON form wraps each one in its oneof field)."""
    out = {}
    for key, value in (parameters or {}).items():
        if isinstance(value, dict) and len(value) == 1 and next(iter(value)).endswith("_param"):
            value = next(iter(value.values()))
        out[key] = value
    return out


async def kserve_call(call):
    import grpc
    import httpx
    from kserve import InferenceGRPCClient, InferenceRESTClient, InferInput, InferRequest, RESTConfig
    from kserve.protocol.infer_type import RequestedOutput

    headers = call.get("headers")
    op = call["op"]
    grpc_call = call["transport"] == "grpc"
    if grpc_call:
        client = InferenceGRPCClient(call["url"])
    else:
        client = InferenceRESTClient(RESTConfig(protocol="v2", retries=1))
    try:
        if op == "live":
            if grpc_call:
                return {"value": await client.is_server_live(headers=_grpc_headers(headers))}
            return {"value": await client.is_server_live(call["url"], headers=headers)}
        if op == "ready":
            if grpc_call:
                return {"value": await client.is_server_ready(headers=_grpc_headers(headers))}
            return {"value": await client.is_server_ready(call["url"], headers=headers)}
        if op == "model_ready":
            if grpc_call:
                return {"value": await client.is_model_ready(call["model"], headers=_grpc_headers(headers))}
            return {"value": await client.is_model_ready(call["url"], call["model"], headers=headers)}
        inputs = []
        for spec in call["inputs"]:
            item = InferInput(spec["name"], spec["shape"], spec["datatype"])
            # KServe's default (binary_data=True) over gRPC: raw contents, all inputs or none as
            # the protocol has it; over REST JSON, but FP16 only as binary data.
            binary = call.get("binary", grpc_call or spec["datatype"] == "FP16")
            item.set_data_from_numpy(to_numpy(spec), binary_data=binary)
            inputs.append(item)
        outputs = None
        if call.get("outputs") is not None:
            outputs = [
                RequestedOutput(o["name"], {"binary_data": True} if o.get("binary") else None)
                for o in call["outputs"]
            ]
        request = InferRequest(
            call["model"],
            inputs,
            request_id=call.get("id"),
            parameters=call.get("parameters"),
            request_outputs=outputs,
        )
        if grpc_call:
            response = await client.infer(request, headers=_grpc_headers(headers))
        else:
            response = await client.infer(call["url"], request, model_name=call["model"], headers=headers)
        out = {}
        for output in response.outputs:
            array = output.as_numpy()
            out[output.name] = {
                "datatype": output.datatype,
                "shape": list(array.shape),
                "data": plain(array, output.datatype),
            }
        parameters = response.parameters or {}
        if not isinstance(parameters, dict):
            parameters = dict(parameters)
        plain_parameters = {}
        for key, value in parameters.items():
            if hasattr(value, "WhichOneof"):
                value = getattr(value, value.WhichOneof("parameter_choice"))
            plain_parameters[key] = value
        return {"outputs": out, "parameters": plain_parameters, "id": response.id}
    except grpc.RpcError as exc:
        return {"error": exc.details(), "status": exc.code().name}
    except httpx.HTTPStatusError as exc:
        return {"error": exc.response.json().get("error"), "status": exc.response.status_code}
    finally:
        await client.close()


def _grpc_headers(headers):
    return tuple((headers or {}).items())


def main():
    calls = json.load(sys.stdin)
    if LIB == "triton":
        outcomes = [triton_call(call) for call in calls]
    else:

        async def run_all():
            return [await kserve_call(call) for call in calls]

        outcomes = asyncio.run(run_all())
    json.dump(outcomes, sys.stdout)


if __name__ == "__main__":
    main()
