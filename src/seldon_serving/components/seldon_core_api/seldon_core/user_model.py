"""`SeldonComponent` (an optional base class whose methods all say "not implemented"),
`SeldonResponse` and `SeldonNotImplementedError`, as seldon-core defines them."""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

from .flask_utils import SeldonMicroserviceException

INCLUDE_METRICS_IN_CLIENT_RESPONSE = (
    os.environ.get("INCLUDE_METRICS_IN_CLIENT_RESPONSE", "true").lower() == "true"
)


class SeldonNotImplementedError(SeldonMicroserviceException):
    status_code = 400

    def __init__(self, message: str) -> None:
        SeldonMicroserviceException.__init__(self, message)


class SeldonResponse:
    """Data returned by a component method together with runtime tags and metrics."""

    def __init__(
        self, data: Any, tags: dict[str, Any] | None = None, metrics: list[dict[str, Any]] | None = None
    ):
        self.data = data
        self.tags = tags if tags is not None else {}
        self.metrics = metrics if metrics is not None else []

    @classmethod
    def create(cls, data: Any) -> SeldonResponse:
        return data if isinstance(data, cls) else cls(data=data)


class SeldonComponent:
    """Subclass it, or not: the servers call only the methods a subclass defines itself."""

    def __init__(self, **kwargs: Any) -> None:
        pass

    def tags(self) -> dict[str, Any]:
        raise SeldonNotImplementedError("tags is not implemented")

    def class_names(self) -> Iterable[str]:
        raise SeldonNotImplementedError("class_names is not implemented")

    def load(self) -> None:
        pass

    def predict(self, X: Any, names: Iterable[str], meta: dict[str, Any] | None = None) -> Any:
        raise SeldonNotImplementedError("predict is not implemented")

    def predict_raw(self, msg: Any) -> Any:
        raise SeldonNotImplementedError("predict_raw is not implemented")

    def send_feedback_raw(self, feedback: Any) -> Any:
        raise SeldonNotImplementedError("send_feedback_raw is not implemented")

    def transform_input(self, X: Any, names: Iterable[str], meta: dict[str, Any] | None = None) -> Any:
        raise SeldonNotImplementedError("transform_input is not implemented")

    def transform_input_raw(self, msg: Any) -> Any:
        raise SeldonNotImplementedError("transform_input_raw is not implemented")

    def transform_output(self, X: Any, names: Iterable[str], meta: dict[str, Any] | None = None) -> Any:
        raise SeldonNotImplementedError("transform_output is not implemented")

    def transform_output_raw(self, msg: Any) -> Any:
        raise SeldonNotImplementedError("transform_output_raw is not implemented")

    def metrics(self) -> list[dict[str, Any]]:
        raise SeldonNotImplementedError("metrics is not implemented")

    def feature_names(self) -> Iterable[str]:
        raise SeldonNotImplementedError("feature_names is not implemented")

    def send_feedback(
        self, features: Any, feature_names: Iterable[str], reward: float, truth: Any, routing: int | None
    ) -> Any:
        raise SeldonNotImplementedError("send_feedback is not implemented")

    def route(self, features: Any, feature_names: Iterable[str]) -> Any:
        raise SeldonNotImplementedError("route is not implemented")

    def route_raw(self, msg: Any) -> Any:
        raise SeldonNotImplementedError("route_raw is not implemented")

    def aggregate(self, features_list: list[Any], feature_names_list: list[Any]) -> Any:
        raise SeldonNotImplementedError("aggregate is not implemented")

    def aggregate_raw(self, msgs: Any) -> Any:
        raise SeldonNotImplementedError("aggregate_raw is not implemented")

    def health_status(self) -> Any:
        raise SeldonNotImplementedError("health is not implemented")

    def health_status_raw(self) -> Any:
        raise SeldonNotImplementedError("health_raw is not implemented")

    def metadata(self) -> dict[str, Any]:
        raise SeldonNotImplementedError("metadata is not implemented")

    def init_metadata(self) -> dict[str, Any]:
        raise SeldonNotImplementedError("init_metadata is not implemented")
