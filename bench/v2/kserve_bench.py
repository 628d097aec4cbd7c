"""KServe peer of bench/v2_bench.py: a `kserve.Model` doing the bench model's maths,
softmax(x @ W + b) with W and b taken from bench/models/BenchModel.py, on the Open Inference
Protocol (V2) over REST (`POST /v2/models/<name>/infer`) and gRPC (`ModelInfer`), both KServe's
own servers.  `--workers N` forks N uvicorn REST workers; gRPC stays one process, as KServe runs it.

Run with the KServe venv:
    python kserve_bench.py --model_name bench --http_port P --grpc_port G --workers N
"""

from __future__ import annotations

import argparse
import importlib.util
from pathlib import Path
from typing import Any

import numpy as np
from kserve import InferRequest, Model, ModelServer, model_server
from kserve.utils.utils import get_predict_response

_MODEL_FILE = Path(__file__).resolve().parent.parent / "models" / "BenchModel.py"


def _weights() -> tuple[np.ndarray, np.ndarray]:
    # BenchModel.py is loaded by path: it is a user class, not a package of any venv.
    spec = importlib.util.spec_from_file_location("bench_model_math", _MODEL_FILE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.W, module.B


class BenchV2Model(Model):
    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.w, self.b = _weights()  # arrays, not the module's function: --workers N pickles the model
        self.ready = True

    def predict(self, payload: InferRequest, headers: dict[str, str] | None = None) -> Any:
        z = payload.inputs[0].as_numpy().astype(np.float64, copy=False) @ self.w + self.b
        z = z - z.max(axis=1, keepdims=True)
        e = np.exp(z)
        return get_predict_response(payload, e / e.sum(axis=1, keepdims=True), self.name)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(parents=[model_server.parser])
    args, _ = parser.parse_known_args()
    ModelServer(http_port=args.http_port, grpc_port=args.grpc_port, workers=args.workers).start(
        [BenchV2Model(args.model_name)]
    )
