"""A model for the V2 tests: several inputs come back as they are, each under its own name;
one numeric input comes back doubled (the same numbers Seldon's protocol gives for the same
rows), anything else (BOOL, BYTES) as it is."""

import numpy as np


class V2Doubler:
    def predict(self, X, features_names=None):
        if isinstance(X, dict):
            return dict(X)
        X = np.asarray(X)
        return X * 2 if X.dtype.kind in "iuf" else X
