"""NaN and Infinity through SeldonClient (seldon-core's strict json_format parser): a
request carrying them arrives, and an answer carrying them parses, in every data form."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from tests.compat.conftest import Endpoints, ours, run_seldon_client

pytestmark = [pytest.mark.compat, pytest.mark.slow]

ROW = [[math.nan, math.inf, -math.inf, 1.0]]  # LinearSoftmax answers NaN for every class


def test_seldon_client_sends_and_reads_non_finite_values(compat_python: Path) -> None:
    with ours("LinearSoftmax", "MODEL") as server:
        endpoints = Endpoints(server)
        calls = [
            {
                "call": "microservice",
                "client": {
                    "transport": transport,
                    "payload_type": payload,
                    "microservice_endpoint": endpoint,
                },
                "kwargs": {"method": "predict", "data": ROW},
            }
            for transport, endpoint in (("rest", endpoints.rest()), ("grpc", endpoints.grpc_endpoint()))
            for payload in ("tensor", "ndarray", "tftensor")
        ]
        results = run_seldon_client(compat_python, calls)
    for call, result in zip(calls, results, strict=True):
        label = f"{call['client']['transport']}-{call['client']['payload_type']}"
        assert result["success"], (label, result["msg"])
        data = result["response"]["data"]
        if "tensor" in data:  # json_format writes non-finite doubles as proto3 strings
            assert data["tensor"]["values"] == ["NaN", "NaN", "NaN"], label
        elif "ndarray" in data:
            # JSON's ListValue cannot hold NaN (null); protobuf's binary one can (and json_format
            # shows it as "NaN" when the driver prints it)
            expected = None if call["client"]["transport"] == "rest" else "NaN"
            assert data["ndarray"] == [[expected] * 3], label
        else:
            assert data["tftensor"]["dtype"] == "DT_DOUBLE", label
