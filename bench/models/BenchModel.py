"""The benchmark's trivial model: softmax(X @ W + b) for a 1x4 float64 row.

Seldon-style user class, served unchanged by our `seldon microservice` and by
seldon-core's `seldon-core-microservice`.  The MLServer runtime in
bench/mlserver_model/ imports W and B from here so all three stacks do the same math.
"""

import numpy as np

W = np.array(
    [
        [0.2, -0.1, 0.4],
        [0.5, 0.3, -0.2],
        [-0.3, 0.8, 0.1],
        [0.1, -0.4, 0.6],
    ],
    dtype=np.float64,
)
B = np.array([0.1, -0.2, 0.05], dtype=np.float64)


def softmax_rows(X):
    z = np.asarray(X, dtype=np.float64) @ W + B
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


class BenchModel:
    def __init__(self):
        self.class_names = ["c0", "c1", "c2"]

    def predict(self, X, features_names=None):
        return softmax_rows(X)
