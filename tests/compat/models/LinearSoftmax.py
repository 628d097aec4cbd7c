import numpy as np

W = np.array([[0.2, -0.1, 0.4], [0.5, 0.3, -0.2], [-0.3, 0.8, 0.1], [0.1, -0.4, 0.6]])
B = np.array([0.01, -0.02, 0.03])


class LinearSoftmax:
    """The bench's trivial model: softmax of a fixed 4x3 linear layer."""

    def __init__(self, scale=1.0):
        self.scale = float(scale)
        self.class_names = ["a", "b", "c"]

    def predict(self, X, features_names=None):
        z = np.asarray(X, dtype=float) @ W * self.scale + B
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    def tags(self):
        return {"model": "linear-softmax"}

    def metrics(self):
        return [{"type": "COUNTER", "key": "mycounter", "value": 1}]
