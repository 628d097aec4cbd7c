"""The conversion helpers of seldon-core that user code calls (gRPC hooks, raw methods):
JSON <-> protobuf messages, payloads <-> numpy arrays, and environment variables."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from typing import Any

import numpy as np
from google.protobuf import json_format
from google.protobuf.struct_pb2 import ListValue

from seldon_serving.protocol import json_codec, proto_codec
from seldon_serving.protocol.message import SeldonMessage

from .flask_utils import SeldonMicroserviceException
from .proto import prediction_pb2

__all__ = [
    "array_to_grpc_datadef",
    "array_to_list_value",
    "array_to_rest_datadef",
    "feedback_to_json",
    "get_data_from_proto",
    "get_meta_from_proto",
    "getenv",
    "getenv_as_bool",
    "grpc_datadef_to_array",
    "json_to_feedback",
    "json_to_seldon_message",
    "json_to_seldon_messages",
    "seldon_message_to_json",
    "seldon_messages_to_json",
]


def _parse(message_json: Any, message: Any) -> Any:
    try:
        json_format.ParseDict({} if message_json is None else message_json, message)
    except json_format.ParseError as exc:
        raise SeldonMicroserviceException(f"Invalid JSON: {exc}") from None
    return message


def json_to_seldon_message(message_json: Any) -> Any:
    return _parse(message_json, prediction_pb2.SeldonMessage())


def json_to_feedback(message_json: Any) -> Any:
    return _parse(message_json, prediction_pb2.Feedback())


def json_to_seldon_messages(message_json: Any) -> Any:
    return _parse(message_json, prediction_pb2.SeldonMessageList())


def _to_json(message: Any) -> dict[str, Any]:
    return dict(json.loads(json_format.MessageToJson(message)))


def seldon_message_to_json(message_proto: Any) -> dict[str, Any]:
    return _to_json(message_proto)


def seldon_messages_to_json(message_protos: Any) -> dict[str, Any]:
    return _to_json(message_protos)


def feedback_to_json(message_proto: Any) -> dict[str, Any]:
    return _to_json(message_proto)


def get_data_from_proto(request: Any) -> Any:
    """The payload of a SeldonMessage: a numpy array for `data`, else the raw value."""
    which = request.WhichOneof("data_oneof")
    if which is None:
        raise SeldonMicroserviceException("Unknown data in SeldonMessage")
    if which == "customData":
        return request.customData
    return proto_codec.message_from_proto(request).user_payload()


def grpc_datadef_to_array(datadef: Any) -> np.ndarray:
    if datadef.WhichOneof("data_oneof") is None:
        return np.array([])
    return proto_codec.message_from_proto(prediction_pb2.SeldonMessage(data=datadef)).array()


def get_meta_from_proto(request: Any) -> dict[str, Any]:
    return dict(json_format.MessageToDict(request.meta))


def _form(data_type: str) -> str:
    return data_type if data_type in ("tensor", "tftensor") else "ndarray"


def array_to_rest_datadef(
    data_type: str, array: np.ndarray, names: Iterable[str] | None = None
) -> dict[str, Any]:
    message = SeldonMessage(form=_form(data_type), payload=np.asarray(array), names=list(names or []))
    data: dict[str, Any] = json.loads(json_codec.dumps(json_codec.encode_message(message)))["data"]
    data.setdefault("names", list(names or []))
    return data


def array_to_grpc_datadef(data_type: str, array: np.ndarray, names: Iterable[str] | None = None) -> Any:
    message = SeldonMessage(form=_form(data_type), payload=np.asarray(array), names=list(names or []))
    return proto_codec.message_to_proto(message).data


def array_to_list_value(array: np.ndarray, lv: ListValue | None = None) -> ListValue:
    out = ListValue() if lv is None else lv
    out.extend(np.asarray(array).tolist())
    return out


def getenv(*env_vars: str, default: str | None = None) -> str | None:
    """The first of `env_vars` that is set, else `default`."""
    for env_var in env_vars:
        if env_var in os.environ:
            return os.environ[env_var]
    return default


def getenv_as_bool(*env_vars: str, default: bool = False) -> bool:
    value = getenv(*env_vars)
    return default if value is None else value.lower() in ("1", "true", "t")
