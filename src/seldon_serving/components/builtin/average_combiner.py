"""Seldon's averaging combiner (implementation AVERAGE_COMBINER): the element-wise mean of
its children's 2-D answers of one shape, in the first answer's data form and names."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from seldon_serving.components.response import ComponentResponse
from seldon_serving.protocol.errors import RoutingError

from ._support import Children


class AverageCombiner:
    """COMBINER: averages what its children answered."""

    children: ClassVar[Children] = Children(minimum=1)

    def aggregate(self, Xs: list[Any], features_names_list: list[list[str]]) -> ComponentResponse:
        if not Xs:
            raise RoutingError("combiner received no outputs")
        arrays: list[np.ndarray] = []
        for X in Xs:
            if not isinstance(X, np.ndarray | list):
                raise RoutingError(f"combiner received {type(X).__name__}, not an array")
            array = np.asarray(X)
            if array.dtype.kind not in "iuf":
                raise RoutingError(f"combiner received {array.dtype} data, not numbers")
            if array.ndim != 2:
                raise RoutingError("combiner received data that is not 2 dimensional")
            if arrays and array.shape != arrays[0].shape:
                raise RoutingError(f"combiner expected shape {arrays[0].shape} but found {array.shape}")
            arrays.append(array)
        # A float answer keeps its precision (a DT_FLOAT tftensor stays DT_FLOAT); integers average
        # to float64.
        dtype = np.result_type(*arrays) if all(a.dtype.kind == "f" for a in arrays) else np.float64
        mean = np.mean(np.stack(arrays), axis=0, dtype=dtype)
        return ComponentResponse(mean, names=list(features_names_list[0]))
