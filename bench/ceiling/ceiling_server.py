"""Reference ceiling, not a product: the least one Python process can do for the
benchmark's request on this machine, with the same libraries as ours.

REST: a raw ASGI callable under uvicorn (httptools, uvloop) that parses the Seldon JSON
with orjson, runs the same numpy math as bench/models/BenchModel.py, and answers
`{"data":{"names":[...],"ndarray":[[...]]},"meta":{}}` with a content-length.
gRPC: a bare grpc.aio generic handler for /seldon.protos.Model/Predict doing the same
with our generated protobuf classes.  Both in one process and one event loop, like one
worker of ours, so the difference to ours is our own layers.

    python bench/ceiling/ceiling_server.py --http-port 9000 --grpc-port 5000
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import grpc
import numpy as np
import orjson
import uvicorn
import uvloop

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "models"))
from BenchModel import softmax_rows  # the very math the servers run

from seldon_serving.protocol._pb import prediction_pb2

NAMES = ["c0", "c1", "c2"]
JSON_HEADERS = [(b"content-type", b"application/json")]


async def app(scope, receive, send) -> None:
    if scope["type"] != "http":
        return
    body = b""
    while True:
        event = await receive()
        body += event.get("body", b"")
        if not event.get("more_body"):
            break
    rows = orjson.loads(body)["data"]["ndarray"]
    answer = softmax_rows(np.asarray(rows, dtype=np.float64))
    out = orjson.dumps(
        {"data": {"names": NAMES, "ndarray": answer}, "meta": {}}, option=orjson.OPT_SERIALIZE_NUMPY
    )
    headers = [*JSON_HEADERS, (b"content-length", str(len(out)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": out})


async def predict(request: prediction_pb2.SeldonMessage, context) -> prediction_pb2.SeldonMessage:
    tensor = request.data.tensor
    answer = softmax_rows(np.asarray(tensor.values, dtype=np.float64).reshape(tuple(tensor.shape)))
    return prediction_pb2.SeldonMessage(
        data=prediction_pb2.DefaultData(
            names=NAMES,
            tensor=prediction_pb2.Tensor(shape=list(answer.shape), values=answer.ravel().tolist()),
        )
    )


async def serve(http_port: int, grpc_port: int) -> None:
    server = grpc.aio.server()
    handler = grpc.unary_unary_rpc_method_handler(
        predict,
        request_deserializer=prediction_pb2.SeldonMessage.FromString,
        response_serializer=prediction_pb2.SeldonMessage.SerializeToString,
    )
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler("seldon.protos.Model", {"Predict": handler}),)
    )
    server.add_insecure_port(f"127.0.0.1:{grpc_port}")
    await server.start()
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=http_port,
        http="httptools",
        loop="none",
        lifespan="off",
        access_log=False,
        proxy_headers=False,
        log_level="warning",
    )
    try:
        await uvicorn.Server(config).serve()
    finally:
        await server.stop(1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--http-port", type=int, default=9000)
    parser.add_argument("--grpc-port", type=int, default=5000)
    args = parser.parse_args()
    uvloop.run(serve(args.http_port, args.grpc_port))


if __name__ == "__main__":
    main()
