"""predict_raw gets the request as it came: a dict over REST, a protobuf message over gRPC."""

from seldon_core.utils import json_to_seldon_message


class RawBoth:
    def predict_raw(self, msg):
        if isinstance(msg, dict):
            return {"strData": "a dict"}
        return json_to_seldon_message({"strData": type(msg).__name__})
