"""The public API stays what the README promises."""

from __future__ import annotations

import seldon_serving
from seldon_serving.components.response import ComponentResponse


def test_public_names() -> None:
    assert sorted(seldon_serving.__all__) == ["ComponentResponse", "__version__"]
    assert seldon_serving.ComponentResponse is ComponentResponse
    assert seldon_serving.__version__.count(".") == 2


def test_component_response_carries_tags_and_metrics() -> None:
    response = ComponentResponse([[1.0]], tags={"a": 1}, metrics=[{"type": "GAUGE", "key": "g", "value": 2}])
    assert (response.data, response.tags, response.metrics[0]["key"]) == ([[1.0]], {"a": 1}, "g")
