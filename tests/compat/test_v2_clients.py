"""The Open Inference Protocol's own clients, unchanged, against a microservice and through the
gateway (a single model served as a process node, an A/B graph served inline): Triton's
`tritonclient` (http and grpc) and KServe's `InferenceRESTClient` / `InferenceGRPCClient`, run
in their own venv (.venv-v2clients, scripts/v2-clients-venv.sh) by tests/compat/v2_driver.py."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.deploy.gateway import deployment, unit
from tests.helpers import ROOT, Gateway, Server, enter_all, gateway, microservice

pytestmark = [pytest.mark.compat, pytest.mark.slow]

V2_MODELS = Path(__file__).parent / "v2_models"
DRIVER = Path(__file__).parent / "v2_driver.py"

# One input of every datatype (flat data, BYTES as text): the model echoes several inputs.
EVERY_DATATYPE = [
    {"name": "bool", "datatype": "BOOL", "shape": [2, 2], "data": [True, False, False, True]},
    {"name": "u8", "datatype": "UINT8", "shape": [3], "data": [0, 7, 255]},
    {"name": "u16", "datatype": "UINT16", "shape": [1, 2], "data": [0, 65535]},
    {"name": "u32", "datatype": "UINT32", "shape": [2], "data": [1, 4294967295]},
    {"name": "u64", "datatype": "UINT64", "shape": [2], "data": [0, 18446744073709551615]},
    {"name": "i8", "datatype": "INT8", "shape": [2], "data": [-128, 127]},
    {"name": "i16", "datatype": "INT16", "shape": [2], "data": [-32768, 32767]},
    {"name": "i32", "datatype": "INT32", "shape": [2, 1], "data": [-(2**31), 2**31 - 1]},
    {"name": "i64", "datatype": "INT64", "shape": [2], "data": [-(2**63), 2**63 - 1]},
    {"name": "f16", "datatype": "FP16", "shape": [2], "data": [0.5, -1024.0]},
    {"name": "f32", "datatype": "FP32", "shape": [1, 3], "data": [0.25, -3.5, 2.0**100]},
    {"name": "f64", "datatype": "FP64", "shape": [2], "data": [1e-300, -2.5]},
    {"name": "text", "datatype": "BYTES", "shape": [3], "data": ["", "hé", "a b"]},
]
ROWS = [[1.0, 2.5, -3.0], [0.125, 4.0, 1e10]]


@pytest.fixture(scope="module")
def clients_python() -> Path:
    venv = Path(os.environ.get("SELDON_V2_CLIENTS_VENV") or ROOT / ".venv-v2clients")
    python = venv / "bin" / "python"
    if not python.exists():  # CI turns this skip into a failure (tests/conftest.py)
        pytest.skip(f"no V2 clients venv at {venv}: run scripts/v2-clients-venv.sh")
    return python


def drive(python: Path, lib: str, calls: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Run the calls with `lib` ("triton" or "kserve") in one client process."""
    completed = subprocess.run(
        [str(python), str(DRIVER), lib], input=json.dumps(calls).encode(), capture_output=True, timeout=120
    )
    if completed.returncode != 0:
        raise RuntimeError(completed.stderr.decode(errors="replace")[-3000:])
    outcomes: list[dict[str, Any]] = json.loads(completed.stdout)
    return outcomes


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Gateway]]:
    manifests = tmp_path_factory.mktemp("manifests")
    shutil.copy(V2_MODELS / "V2Doubler.py", manifests / "V2Doubler.py")
    single = deployment("v2single", unit("doubler", "MODEL"), {"doubler": "V2Doubler"})
    ab = deployment(
        "v2ab",
        unit(
            "ab",
            "ROUTER",
            implementation="RANDOM_ABTEST",
            params={"ratioA": 0.5},
            children=[unit("a", "MODEL"), unit("b", "MODEL")],
        ),
        {"a": "V2Doubler", "b": "V2Doubler"},
    )
    ab["metadata"]["annotations"] = {"seldon.io/execution": "inline"}
    (manifests / "single.yaml").write_text(yaml.safe_dump(single))
    (manifests / "ab.yaml").write_text(yaml.safe_dump(ab))
    with contextlib.ExitStack() as stack:
        service, gw = enter_all(
            stack,
            [
                microservice("V2Doubler", cwd=V2_MODELS),
                gateway(manifests, state_dir=tmp_path_factory.mktemp("state")),
            ],
        )
        yield service, gw  # type: ignore[misc]


def targets(servers: tuple[Server, Gateway]) -> list[tuple[str, int, int]]:
    """(model name, REST port, gRPC port) of the microservice and of both deployments."""
    service, gw = servers
    return [
        ("V2Doubler", service.http_port, service.grpc_port),
        ("v2single", gw.http_port, gw.grpc_port),
        ("v2ab", gw.http_port, gw.grpc_port),
    ]


def call(lib: str, transport: str, model: str, rest: int, grpc: int, **fields: Any) -> dict[str, Any]:
    if transport == "http":
        url = f"http://127.0.0.1:{rest}" if lib == "kserve" else f"127.0.0.1:{rest}"
    else:
        url = f"127.0.0.1:{grpc}"
    return {"transport": transport, "url": url, "model": model, "op": "infer", **fields}


def expected_echo(inputs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {i["name"]: {"datatype": i["datatype"], "shape": i["shape"], "data": i["data"]} for i in inputs}


CLIENTS = [("triton", "http"), ("triton", "grpc"), ("kserve", "http"), ("kserve", "grpc")]


def test_every_datatype_through_every_client_and_target(
    clients_python: Path, servers: tuple[Server, Gateway]
) -> None:
    for lib in ("triton", "kserve"):
        calls = []
        for _, transport in (c for c in CLIENTS if c[0] == lib):
            for model, rest, grpc in targets(servers):
                calls.append(call(lib, transport, model, rest, grpc, inputs=EVERY_DATATYPE))
                if transport == "http":  # JSON tensors too (Triton's default is binary; KServe's JSON)
                    as_json = lib == "triton"
                    calls.append(
                        call(lib, transport, model, rest, grpc, inputs=EVERY_DATATYPE, binary=not as_json)
                    )
        for sent, outcome in zip(calls, drive(clients_python, lib, calls), strict=True):
            where = f"{lib} {sent['transport']} {sent['model']} binary={sent.get('binary')}"
            assert "error" not in outcome, (where, outcome)
            assert outcome["outputs"] == expected_echo(EVERY_DATATYPE), where


def seldon_numbers(servers: tuple[Server, Gateway], model: str, rows: list[list[float]]) -> Any:
    """What Seldon's protocol answers for the same rows."""
    service, gw = servers
    url = (
        f"{service.url}/predict" if model == "V2Doubler" else f"{gw.url}/seldon/{model}/api/v1.0/predictions"
    )
    answer = httpx.post(url, json={"data": {"ndarray": rows}}, timeout=10)
    assert answer.status_code == 200, answer.text
    return answer.json()["data"]["ndarray"]


def test_same_numbers_as_seldons_protocol_for_the_same_rows(
    clients_python: Path, servers: tuple[Server, Gateway]
) -> None:
    flat = [v for row in ROWS for v in row]
    tensor = [{"name": "rows", "datatype": "FP64", "shape": [2, 3], "data": flat}]
    for lib, transport in CLIENTS:
        calls = [call(lib, transport, m, r, g, inputs=tensor) for m, r, g in targets(servers)]
        for (model, _, _), outcome in zip(targets(servers), drive(clients_python, lib, calls), strict=True):
            assert "error" not in outcome, (lib, transport, model, outcome)
            (only,) = outcome["outputs"].values()
            seldon = seldon_numbers(servers, model, ROWS)
            assert only["shape"] == [2, 3]
            assert only["data"] == [v for row in seldon for v in row] == [2 * v for v in flat]


def test_outputs_selection_binary_outputs_and_parameters(
    clients_python: Path, servers: tuple[Server, Gateway]
) -> None:
    two = EVERY_DATATYPE[-2:]  # f64 and text
    calls = []
    for model, rest, grpc in targets(servers):
        for transport in ("http", "grpc"):
            calls.append(
                call(
                    "triton",
                    transport,
                    model,
                    rest,
                    grpc,
                    inputs=two,
                    outputs=[{"name": "text", "binary": False}],
                )
            )
            calls.append(call("triton", transport, model, rest, grpc, inputs=two, outputs=[{"name": "nope"}]))
        # one unnamed output asked for by the name the client knows it by
        calls.append(call("triton", "http", model, rest, grpc, inputs=two[:1], outputs=[{"name": "OUTPUT0"}]))
        calls.append(
            call("triton", "http", model, rest, grpc, inputs=two[:1], id="my-id", parameters={"tags": "x"})
        )
    outcomes = iter(drive(clients_python, "triton", calls))
    for model, _, _ in targets(servers):
        for transport in ("http", "grpc"):
            picked = next(outcomes)
            assert picked["outputs"] == expected_echo(two[1:]), (model, transport)
            missing = next(outcomes)
            assert "no output named 'nope' (its outputs: f64, text)" in missing["error"]
            assert "400" in str(missing["status"]) or "INVALID_ARGUMENT" in str(missing["status"])
        renamed = next(outcomes)
        assert list(renamed["outputs"]) == ["OUTPUT0"]
        assert renamed["outputs"]["OUTPUT0"]["data"] == [2e-300, -5.0]
        tagged = next(outcomes)
        assert tagged["id"] == "my-id"
        if model != "V2Doubler":  # the gateway's answer carries Seldon's meta in its parameters
            assert len(tagged["parameters"]["puid"]) > 10
            assert set(tagged["parameters"]["requestPath"]) <= {"ab", "a", "b", "doubler"}
        if model == "v2ab":
            assert tagged["parameters"]["routing"]["ab"] in (0, 1)


def test_health_metadata_and_unknown_models(clients_python: Path, servers: tuple[Server, Gateway]) -> None:
    for lib in ("triton", "kserve"):
        calls = []
        for model, rest, grpc in targets(servers):
            for transport in ("http", "grpc"):
                for op in ("live", "ready", "model_ready"):
                    calls.append(call(lib, transport, model, rest, grpc, op=op))
                tensor = [{"name": "x", "datatype": "INT32", "shape": [1], "data": [1]}]
                calls.append(call(lib, transport, "no-such-model", rest, grpc, inputs=tensor))
        outcomes = drive(clients_python, lib, calls)
        for sent, outcome in zip(calls, outcomes, strict=True):
            if sent["op"] != "infer":
                assert outcome == {"value": True}, (lib, sent)
            else:
                assert "no-such-model" in outcome["error"], (lib, sent, outcome)
                assert str(outcome["status"]).endswith(("404", "NOT_FOUND")), (lib, sent, outcome)
    calls = [
        call("triton", transport, model, rest, grpc, op="metadata")
        for model, rest, grpc in targets(servers)
        for transport in ("http", "grpc")
    ]
    for sent, outcome in zip(calls, drive(clients_python, "triton", calls), strict=True):
        assert outcome["value"]["name"] == sent["model"]


def test_namespace_header_and_path_forms_reach_the_deployment(
    clients_python: Path, servers: tuple[Server, Gateway]
) -> None:
    _, gw = servers
    tensor = [{"name": "x", "datatype": "FP32", "shape": [1, 2], "data": [1.5, 2.0]}]
    triton = [
        call("triton", t, "v2single", gw.http_port, gw.grpc_port, inputs=tensor, headers={"namespace": n})
        for t in ("http", "grpc")
        for n in ("default", "elsewhere")
    ]
    outcomes = drive(clients_python, "triton", triton)
    assert [o.get("outputs", {}).get("output-0", {}).get("data") for o in outcomes] == [[3.0, 4.0], None] * 2
    assert "no deployment named 'v2single' in namespace 'elsewhere'" in outcomes[1]["error"]
    kserve = [
        {**call("kserve", "http", "v2single", 0, 0, inputs=tensor), "url": f"{gw.url}{prefix}"}
        for prefix in ("/seldon/v2single", "/seldon/default/v2single")
    ]
    for outcome in drive(clients_python, "kserve", kserve):
        assert outcome["outputs"]["output-0"]["data"] == [3.0, 4.0], outcome
