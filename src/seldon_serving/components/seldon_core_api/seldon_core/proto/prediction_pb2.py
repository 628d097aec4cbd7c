"""The `seldon.protos` messages (SeldonMessage, Feedback, DefaultData, ...)."""

from seldon_serving.protocol._pb.prediction_pb2 import *  # noqa: F403
