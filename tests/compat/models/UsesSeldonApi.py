"""Written against seldon-core's Python API, as its custom-metrics example is."""

import numpy as np
from seldon_core.flask_utils import SeldonMicroserviceException
from seldon_core.metrics import create_counter, create_gauge, create_timer, validate_metrics
from seldon_core.user_model import SeldonComponent, SeldonNotImplementedError, SeldonResponse
from seldon_core.utils import getenv_as_bool


class UsesSeldonApi(SeldonComponent):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.strict = getenv_as_bool("USES_SELDON_API_STRICT", default=True)

    def predict(self, X, features_names=None, **kwargs):
        X = np.asarray(X)
        if X.size and X.ravel()[0] < 0 and self.strict:
            raise SeldonMicroserviceException("negative input", status_code=422, reason="NEGATIVE")
        metrics = [create_counter("calls", 1), create_gauge("size", X.size), create_timer("took", 2.5)]
        assert validate_metrics(metrics)
        return SeldonResponse(data=X * 2, tags={"doubled": True}, metrics=metrics)

    def route(self, features, feature_names):
        raise SeldonNotImplementedError("no routing here")
