"""Fuzz every gRPC service and method of a real microservice and a real gateway with raw
bytes: generated SeldonMessage / Feedback / SeldonMessageList protobufs (every data form,
names, meta with tags, routing, requestPath and metrics, nested Struct/ListValue, sizes near
and over the max message size), plus random, truncated and bit-flipped serializations and
deeply nested values.

Both servers serve tests/fuzz/models/FuzzModel.py, which raises only on strData FAIL_ON; a
message carries it only when the test chooses so deliberately.  So every answer must be OK
or a caller's-fault status, INTERNAL exactly for those deliberate messages (naming the
model's error), no details with a Python traceback, and both servers alive and answering
afterwards.  Messages are drawn from a `random.Random` seeded by SELDON_FUZZ_SEED (random and
printed otherwise): hypothesis would spend more time drawing 20,000 messages than the
servers spend answering them.
"""

from __future__ import annotations

import os
import random
import shutil
import struct
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import pytest
import yaml
from google.protobuf import empty_pb2, struct_pb2
from google.protobuf.message import DecodeError, Message

from seldon_serving.protocol._pb import prediction_pb2 as pb
from seldon_serving.protocol._pb.tensorflow.core.framework import tensor_pb2, types_pb2
from tests.deploy.gateway import deployment, unit
from tests.fuzz.models.FuzzModel import FAIL_ON, FAILURE_INFO
from tests.helpers import ROOT, Server

pytestmark = pytest.mark.slow

MODELS = ROOT / "tests" / "fuzz" / "models"
PER_METHOD = 1000
MAX_MESSAGE = 4 * 1024 * 1024  # both servers' default --max-message-size
IN_FLIGHT = 48
TIMEOUT = 20.0  # FuzzModel answers at once: a call this slow is a server that hangs
ALLOWED = {
    grpc.StatusCode.OK,
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.UNIMPLEMENTED,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
    grpc.StatusCode.FAILED_PRECONDITION,
    grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.DEADLINE_EXCEEDED,
}
Metadata = tuple[tuple[str, str], ...]
TRACEBACK_MARKS = ("Traceback", 'File "')

# request kind of each method: "message", "feedback", "list", "empty", "model-metadata"
MICROSERVICE_METHODS = {
    "Model/Predict": "message",
    "Model/SendFeedback": "feedback",
    "Model/Metadata": "empty",
    "Router/Route": "message",
    "Router/SendFeedback": "feedback",
    "Transformer/TransformInput": "message",
    "OutputTransformer/TransformOutput": "message",
    "Combiner/Aggregate": "list",
    "Generic/TransformInput": "message",
    "Generic/TransformOutput": "message",
    "Generic/Route": "message",
    "Generic/Aggregate": "list",
    "Generic/SendFeedback": "feedback",
    "Seldon/Predict": "message",
    "Seldon/SendFeedback": "feedback",
    "Seldon/ModelMetadata": "model-metadata",
}
GATEWAY_METHODS = {
    "Seldon/Predict": "message",
    "Seldon/SendFeedback": "feedback",
    "Seldon/ModelMetadata": "model-metadata",
    "Seldon/GraphMetadata": "empty",
}
# methods whose request reaches FuzzModel.predict, which raises on FAIL_ON
RAISING = {"Model/Predict", "Transformer/TransformInput", "Generic/TransformInput", "Seldon/Predict"}

EXTREME = [1.7976931348623157e308, -1e308, 5e-324, -0.0, float("inf"), float("-inf"), float("nan"), 0.0, 1.0]


def fuzz_seed() -> int:
    env_seed = os.environ.get("SELDON_FUZZ_SEED")
    return int(env_seed) if env_seed else random.randrange(2**32)


class Draw:
    """Field values and whole messages from one seeded generator."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def text(self, most: int = 12) -> str:
        rng = self.rng
        alphabet = "abcXYZ019 _-./\"'\\{}é中\U0001f600\x00\n"
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, most)))
        return text if text != FAIL_ON else text + "!"

    def number(self) -> float:
        rng = self.rng
        return rng.choice(EXTREME) if rng.random() < 0.2 else rng.uniform(-1e6, 1e6)

    def value(self, depth: int) -> struct_pb2.Value:
        rng = self.rng
        value = struct_pb2.Value()
        kind = rng.randrange(6 if depth > 0 else 4)
        if kind == 0:
            value.null_value = struct_pb2.NULL_VALUE
        elif kind == 1:
            value.number_value = self.number()
        elif kind == 2:
            value.string_value = self.text()
        elif kind == 3:
            value.bool_value = rng.random() < 0.5
        elif kind == 4:
            value.list_value.values.extend(self.value(depth - 1) for _ in range(rng.randint(0, 4)))
        else:
            for _ in range(rng.randint(0, 4)):
                value.struct_value.fields[self.text()].CopyFrom(self.value(depth - 1))
        return value

    def ndarray(self, into: struct_pb2.ListValue) -> None:
        rng = self.rng
        if rng.random() < 0.6:  # rows of numbers, sometimes ragged
            cols = rng.randint(0, 5)
            for _ in range(rng.randint(0, 4)):
                row = into.values.add().list_value
                width = cols if rng.random() < 0.85 else rng.randint(0, 6)
                for _ in range(width):
                    row.values.add().number_value = self.number()
        else:
            into.values.extend(self.value(rng.randint(0, 5)) for _ in range(rng.randint(0, 4)))

    def tftensor(self, tensor: tensor_pb2.TensorProto) -> None:
        rng = self.rng
        tensor.dtype = rng.choice([*types_pb2.DataType.values(), 999])  # type: ignore[assignment]
        dims = [rng.choice([0, 1, 2, 3, 4, -1, 2**40]) for _ in range(rng.randint(0, 3))]
        for size in dims:
            tensor.tensor_shape.dim.add().size = size
        count = rng.randint(0, 12)
        choice = rng.randrange(7)
        if choice == 0:
            tensor.float_val.extend(
                struct.unpack("f", struct.pack("f", min(max(self.number(), -3e38), 3e38)))[0]
                for _ in range(count)
            )
        elif choice == 1:
            tensor.double_val.extend(self.number() for _ in range(count))
        elif choice == 2:
            tensor.int_val.extend(rng.randint(-(2**31), 2**31 - 1) for _ in range(count))
        elif choice == 3:
            tensor.int64_val.extend(rng.randint(-(2**63), 2**63 - 1) for _ in range(count))
        elif choice == 4:
            tensor.string_val.extend(rng.randbytes(rng.randint(0, 8)) for _ in range(count))
        elif choice == 5:
            tensor.bool_val.extend(rng.random() < 0.5 for _ in range(count))
        else:
            tensor.tensor_content = rng.randbytes(rng.choice([0, 3, 8, 16, 48, 100]))

    def message(self, into: pb.SeldonMessage | None = None, *, fail: bool = False) -> pb.SeldonMessage:
        rng = self.rng
        message = into if into is not None else pb.SeldonMessage()
        form = rng.randrange(8)
        if fail:
            message.strData = FAIL_ON
        elif form <= 2:
            data = message.data
            data.names.extend(self.text(6) for _ in range(rng.randint(0, 5)))
            if form == 0:
                shape = [rng.randint(0, 4) for _ in range(rng.randint(0, 3))]
                if rng.random() < 0.1:
                    shape.append(rng.choice([-1, 2**31 - 1]))
                data.tensor.shape.extend(shape)
                size = 1
                for dim in shape:
                    size *= max(dim, 0)
                if size > 64 or rng.random() < 0.15:  # values that do not match the shape
                    size = rng.randint(0, 10)
                data.tensor.values.extend(self.number() for _ in range(size))
            elif form == 1:
                self.ndarray(data.ndarray)
            else:
                self.tftensor(data.tftensor)
        elif form == 3:
            message.strData = self.text(40)
        elif form == 4:
            message.binData = rng.randbytes(rng.randint(0, 64))
        elif form == 5:
            message.jsonData.CopyFrom(self.value(rng.randint(0, 6)))
        elif form == 6:
            message.customData.type_url = "type.googleapis.com/" + self.text(10)
            message.customData.value = rng.randbytes(rng.randint(0, 20))
        # form 7: no data at all
        if rng.random() < 0.6:
            self.meta(message.meta)
        if rng.random() < 0.1:
            message.status.code = rng.randint(-(2**31), 2**31 - 1)
            message.status.info = self.text()
            message.status.reason = self.text()
            message.status.status = rng.choice([0, 1, 7])  # type: ignore[assignment]
        return message

    def meta(self, meta: pb.Meta) -> None:
        rng = self.rng
        meta.puid = self.text(20)
        for _ in range(rng.randint(0, 3)):
            meta.tags[self.text(8)].CopyFrom(self.value(rng.randint(0, 4)))
        for _ in range(rng.randint(0, 3)):
            meta.routing[rng.choice(["fuzz", "FuzzModel", self.text(6)])] = rng.randint(-(2**31), 2**31 - 1)
        for _ in range(rng.randint(0, 2)):
            meta.requestPath[self.text(8)] = self.text(20)
        for _ in range(rng.randint(0, 3)):
            metric = meta.metrics.add()
            metric.key = self.text(10)
            metric.type = rng.choice([0, 1, 2, 3, 42])  # type: ignore[assignment]
            metric.value = rng.choice([0.0, 1.5, -3.0, float("inf"), float("nan"), 3e38])
            for _ in range(rng.randint(0, 2)):
                metric.tags[self.text(6)] = self.text(6)
            metric.bins.extend(rng.uniform(-10, 10) for _ in range(rng.randint(0, 3)))

    def feedback(self, *, fail: bool = False) -> pb.Feedback:
        rng = self.rng
        feedback = pb.Feedback()
        if rng.random() < 0.9:
            self.message(feedback.request, fail=fail)
        if rng.random() < 0.8:
            self.message(feedback.response)
        if rng.random() < 0.7:
            feedback.reward = rng.choice([0.0, 1.0, 0.5, -1.0, float("nan"), float("inf"), 3e38])
        if rng.random() < 0.3:
            self.message(feedback.truth)
        return feedback

    def message_list(self) -> pb.SeldonMessageList:
        listing = pb.SeldonMessageList()
        for _ in range(self.rng.choice([0, 1, 1, 2, 3, 5])):
            self.message(listing.seldonMessages.add())
        return listing

    def request(self, kind: str) -> Message:
        if kind == "message":
            return self.message()
        if kind == "feedback":
            return self.feedback()
        if kind == "list":
            return self.message_list()
        if kind == "model-metadata":
            return pb.SeldonModelMetadataRequest(name=self.rng.choice(["", "fuzz", self.text()]))
        return empty_pb2.Empty()

    def large(self, kind: str, size: int) -> bytes:
        """A well-formed request of about `size` bytes: a big tensor (or big strings)."""
        message = pb.SeldonMessage()
        if self.rng.random() < 0.5:
            count = size // 8
            message.data.tensor.shape.extend([count // 4, 4])
            message.data.tensor.values.extend([self.number()] * (count // 4 * 4))
        else:
            message.binData = self.rng.randbytes(size)
        return wrap(kind, message).SerializeToString()


def wrap(kind: str, message: pb.SeldonMessage) -> Message:
    """`message` as the request of a method of `kind` (where a message fits in it)."""
    if kind == "feedback":
        return pb.Feedback(request=message, response=message, reward=1.0)
    if kind == "list":
        return pb.SeldonMessageList(seldonMessages=[message])
    return message


def varint(number: int) -> bytes:
    out = bytearray()
    while True:
        byte = number & 0x7F
        number >>= 7
        if number:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def deeply_nested(kind: str, depth: int) -> bytes:
    """jsonData nested `depth` ListValues deep, built on the wire: deeper than protobuf's
    recursion limit it cannot be built as objects."""
    value = b"\x08\x00"  # Value{null_value}
    for _ in range(depth):
        values = b"\x0a" + varint(len(value)) + value  # ListValue.values
        value = b"\x32" + varint(len(values)) + values  # Value.list_value
    message = b"\x32" + varint(len(value)) + value  # SeldonMessage.jsonData
    if kind in ("feedback", "list"):  # Feedback.request, SeldonMessageList.seldonMessages: field 1
        return b"\x0a" + varint(len(message)) + message
    return message


@dataclass
class Probe:
    """What one method answered."""

    sent: int = 0
    codes: Counter[str] = field(default_factory=Counter)
    forms: Counter[str] = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)


def requests_for(draw: Draw, method: str, kind: str) -> Iterator[tuple[str, bytes]]:
    """(form, bytes) for one method: PER_METHOD in all, a mix of every form."""
    rng = draw.rng
    fixed: list[tuple[str, bytes]] = []
    if kind in ("message", "feedback", "list"):
        fixed += [
            ("near-max", draw.large(kind, MAX_MESSAGE - 4096)),
            ("oversized", draw.large(kind, MAX_MESSAGE + 1024)),
        ]
        fixed += [("nested", deeply_nested(kind, depth)) for depth in (50, 90, 101, 200, 5000)]
        # no values but 2**40 columns: naming each column t:i hung the server (seed 1125); and
        # numpy refuses [2**40, 0, 2**40] though it has no elements (INTERNAL, seed 2474585224)
        for dims in ([0, 2**40], [2**40, 0, 2**40]):
            wide = pb.SeldonMessage()
            wide.data.tftensor.dtype = types_pb2.DT_INT32
            for size in dims:
                wide.data.tftensor.tensor_shape.dim.add().size = size
            fixed.append(("wide-empty", wrap(kind, wide).SerializeToString()))
        if method in RAISING:
            fixed += [("raising", wrap(kind, draw.message(fail=True)).SerializeToString()) for _ in range(5)]
    yield from fixed
    for _ in range(PER_METHOD - len(fixed)):
        roll = rng.random()
        valid = draw.request(kind).SerializeToString()
        if roll < 0.55:
            yield "generated", valid
        elif roll < 0.65:
            other = rng.choice(["message", "feedback", "list", "model-metadata"])
            yield "other-type", draw.request(other).SerializeToString()
        elif roll < 0.75:
            yield "random", rng.randbytes(rng.choice([1, 2, 5, 17, 100, 1000]))
        elif roll < 0.87:
            yield "truncated", valid[: rng.randint(0, max(len(valid) - 1, 0))]
        else:
            flipped = bytearray(valid or b"\x00")
            for _ in range(rng.randint(1, 4)):
                flipped[rng.randrange(len(flipped))] ^= 1 << rng.randrange(8)
            yield "bit-flipped", bytes(flipped)


def fuzz_method(
    channel: grpc.Channel,
    server: Server,
    method: str,
    kind: str,
    draw: Draw,
    metadata: Callable[[], Metadata],
) -> Probe:
    probe = Probe()
    call: Any = channel.unary_unary(f"/seldon.protos.{method}")  # no serializers: raw bytes both ways
    pending: list[tuple[str, Any]] = []
    answer_type: type[Message] = (
        pb.SeldonModelMetadata if kind in ("empty", "model-metadata") else pb.SeldonMessage
    )
    if method == "Seldon/GraphMetadata":
        answer_type = pb.SeldonGraphMetadata

    def settle(form: str, future: Any) -> None:
        code = future.code()
        details = future.details() or ""
        probe.codes[code.name] += 1
        described = f"{method} [{form}] -> {code.name}: {details[:200]}"
        if code not in ALLOWED and code != grpc.StatusCode.INTERNAL:
            probe.problems.append(f"status {described}")
        if code == grpc.StatusCode.INTERNAL and (form != "raising" or FAILURE_INFO not in details):
            probe.problems.append(f"INTERNAL though no user code raised: {described}")
        if form == "raising" and code != grpc.StatusCode.INTERNAL:
            probe.problems.append(f"the model's error did not answer INTERNAL: {described}")
        if code == grpc.StatusCode.DEADLINE_EXCEEDED and details == "Deadline Exceeded":
            probe.problems.append(f"no answer within {TIMEOUT} s: {described}")  # our deadline, not a node's
        if any(mark in details for mark in TRACEBACK_MARKS):
            probe.problems.append(f"traceback in the details: {described}")
        if code == grpc.StatusCode.OK:
            try:
                answer_type.FromString(future.result())
            except DecodeError:
                probe.problems.append(f"an answer that is not a {answer_type.__name__}: {described}")

    for form, raw in requests_for(draw, method, kind):
        probe.sent += 1
        probe.forms[form] += 1
        pending.append((form, call.future(raw, timeout=TIMEOUT, metadata=metadata())))
        if len(pending) >= IN_FLIGHT:
            settle(*pending.pop(0))
    for form, future in pending:
        settle(form, future)
    assert server.process.poll() is None, f"the server died while fuzzing {method}: {server.log()[-2000:]}"
    return probe


def summary(name: str, seed: int, probes: dict[str, Probe], seconds: float) -> str:
    lines = [
        f"{name}: {sum(p.sent for p in probes.values())} messages in {seconds:.1f} s "
        f"(replay with SELDON_FUZZ_SEED={seed})"
    ]
    for method, probe in probes.items():
        lines.append(f"  {method}: {probe.sent} sent {dict(probe.forms)}, answers {dict(probe.codes)}")
        lines.extend(f"    {problem}" for problem in probe.problems[:5])
    return "\n".join(lines)


def check(name: str, seed: int, probes: dict[str, Probe], seconds: float) -> None:
    report = summary(name, seed, probes, seconds)
    print(report)
    assert not any(probe.problems for probe in probes.values()), report
    assert all(probe.sent >= PER_METHOD for probe in probes.values()), report
    # the generated messages must reach the model, not only the parser
    assert all(probe.codes["OK"] >= PER_METHOD // 4 for probe in probes.values()), report


def normal_predict(channel: grpc.Channel, metadata: Metadata = ()) -> pb.SeldonMessage:
    request = pb.SeldonMessage()
    request.data.ndarray.values.add().list_value.values.extend(
        struct_pb2.Value(number_value=v) for v in (1.0, 2.0, 3.0, 4.0)
    )
    call = channel.unary_unary(
        "/seldon.protos.Seldon/Predict",
        request_serializer=pb.SeldonMessage.SerializeToString,
        response_deserializer=pb.SeldonMessage.FromString,
    )
    answer: pb.SeldonMessage = call(request, timeout=10, metadata=metadata)
    return answer


def open_channel(server: Server) -> grpc.Channel:
    # the client may send more than the server accepts: oversized messages must reach it
    options = [("grpc.max_send_message_length", -1), ("grpc.max_receive_message_length", -1)]
    return grpc.insecure_channel(server.grpc, options=options)


def test_grpc_fuzz_microservice(start_microservice: Callable[..., Server]) -> None:
    seed = fuzz_seed()
    draw = Draw(random.Random(seed))
    server = start_microservice("FuzzModel", cwd=MODELS, log_level="CRITICAL")
    started = time.monotonic()
    with open_channel(server) as channel:
        probes = {
            method: fuzz_method(channel, server, method, kind, draw, lambda: ())
            for method, kind in MICROSERVICE_METHODS.items()
        }
        check("microservice", seed, probes, time.monotonic() - started)
        assert len(normal_predict(channel).data.ndarray.values[0].list_value.values) == 3


def test_grpc_fuzz_gateway(start_gateway: Callable[..., Server], tmp_path: Path) -> None:
    seed = fuzz_seed()
    draw = Draw(random.Random(seed))
    doc = deployment("fuzz", unit("fuzz", "MODEL"), classes={"fuzz": "FuzzModel"})
    (tmp_path / "fuzz.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    shutil.copy(MODELS / "FuzzModel.py", tmp_path / "FuzzModel.py")
    gateway = start_gateway(tmp_path / "fuzz.yaml", log_level="CRITICAL")

    def metadata() -> Metadata:
        roll = draw.rng.random()
        if roll < 0.9:
            return (("seldon", "fuzz"),)  # the running deployment
        if roll < 0.95:
            # header values must be printable ASCII, or the client refuses to send them
            name = "".join(draw.rng.choice("abz09-_.") for _ in range(draw.rng.randint(1, 8)))
            return (("seldon", name), ("namespace", name[::-1]))
        return ()

    started = time.monotonic()
    with open_channel(gateway) as channel:
        probes = {
            method: fuzz_method(channel, gateway, method, kind, draw, metadata)
            for method, kind in GATEWAY_METHODS.items()
        }
        check("gateway", seed, probes, time.monotonic() - started)
        answer = normal_predict(channel, (("seldon", "fuzz"),))
        assert len(answer.data.ndarray.values[0].list_value.values) == 3
