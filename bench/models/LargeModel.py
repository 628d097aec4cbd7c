"""The large-payload benchmark's model: one linear layer, 3 features in, 3 scores out, per row.

Served by `bench/large_payload.py` with 10,000-row requests (~300 KB of JSON), so that a
request's cost is the protocol's (JSON parse, list -> numpy, numpy -> JSON), not the model's:
the matrix product on 10,000 x 3 float64 takes about 0.1 ms.
"""

import numpy as np

W = np.array([[0.5, -1.0, 0.25], [1.5, 0.5, -0.75], [-0.5, 2.0, 1.0]], dtype=np.float64)
B = np.array([0.1, -0.2, 0.3], dtype=np.float64)


class LargeModel:
    def __init__(self):
        self.class_names = ["s0", "s1", "s2"]

    def predict(self, X, features_names=None):
        return np.asarray(X, dtype=np.float64) @ W + B
