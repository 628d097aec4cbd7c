"""KServe peer of the model-server scenarios: a `kserve.Model` that loads the same joblib file
our SKLEARN_SERVER and MLServer's sklearn runtime load, and answers `predict_proba`.

KServe's own sklearn server (`sklearnserver`) is not published on PyPI, so this is the model a
KServe user writes for it. REST: KServe's v1 protocol (`POST /v1/models/<name>:predict`,
`{"instances": [...]}`); gRPC: the Open Inference Protocol (`ModelInfer`), both KServe's own
servers (`--workers N` forks N uvicorn REST workers; gRPC stays one process, as KServe does).
Run with the KServe venv: python digits_server.py --model_dir DIR --model_name digits
--http_port P --grpc_port G --workers N
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import joblib
import numpy as np
from kserve import InferRequest, Model, ModelServer, model_server
from kserve.utils.utils import get_predict_response


class DigitsModel(Model):
    def __init__(self, name: str, model_dir: str) -> None:
        super().__init__(name)
        self.model_dir = Path(model_dir)
        self.model: Any = None
        self.load()

    def load(self) -> bool:
        self.model = joblib.load(self.model_dir / "model.joblib")
        self.ready = True
        return self.ready

    def predict(self, payload: dict[str, Any] | InferRequest, headers: dict[str, str] | None = None) -> Any:
        if isinstance(payload, InferRequest):
            rows = payload.inputs[0].as_numpy()
            return get_predict_response(payload, self.model.predict_proba(rows), self.name)
        rows = np.asarray(payload["instances"], dtype=np.float64)
        return {"predictions": self.model.predict_proba(rows).tolist()}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(parents=[model_server.parser])
    parser.add_argument("--model_dir", required=True)
    args, _ = parser.parse_known_args()
    ModelServer(http_port=args.http_port, grpc_port=args.grpc_port, workers=args.workers).start(
        [DigitsModel(args.model_name, args.model_dir)]
    )
