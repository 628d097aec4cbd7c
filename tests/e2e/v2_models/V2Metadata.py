"""A model that declares V2-style metadata (MODEL_METADATA / init_metadata)."""


class V2Metadata:
    def init_metadata(self):
        return {
            "versions": ["3"],
            "platform": "python",
            "inputs": [{"name": "x", "datatype": "FP32", "shape": [-1, 2]}],
            "outputs": [{"name": "y", "datatype": "FP32", "shape": [-1]}],
        }

    def predict(self, X, features_names=None):
        return {"y": X.sum(axis=1)}
