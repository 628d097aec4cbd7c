"""MLServer custom runtime for the benchmark: the same softmax(X @ W + b) as
bench/models/BenchModel.py (W and B are loaded from that file), on the V2
inference protocol (one FP64 [1, 4] input tensor in, one FP64 [1, 3] tensor out).
"""

import importlib.util
from pathlib import Path

import numpy as np
from mlserver import MLModel
from mlserver.codecs import NumpyCodec
from mlserver.types import InferenceRequest, InferenceResponse

_MODEL_FILE = Path(__file__).resolve().parent.parent / "models" / "BenchModel.py"


def _load_bench_module():
    spec = importlib.util.spec_from_file_location("bench_model_math", _MODEL_FILE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class BenchRuntime(MLModel):
    async def load(self) -> bool:
        module = _load_bench_module()
        self._w = module.W
        self._b = module.B
        return True

    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        x = NumpyCodec.decode_input(payload.inputs[0]).astype(np.float64, copy=False)
        z = x @ self._w + self._b
        z = z - z.max(axis=1, keepdims=True)
        e = np.exp(z)
        y = e / e.sum(axis=1, keepdims=True)
        return InferenceResponse(
            model_name=self.name,
            id=payload.id,
            outputs=[NumpyCodec.encode_output(name="probabilities", payload=y)],
        )
