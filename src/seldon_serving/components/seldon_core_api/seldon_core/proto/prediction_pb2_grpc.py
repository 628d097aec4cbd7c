"""The `seldon.protos` gRPC stubs and servicers."""

from seldon_serving.protocol._pb.prediction_pb2_grpc import *  # noqa: F403
