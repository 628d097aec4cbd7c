"""The low-level hooks seldon-core still calls: *_grpc get and return protobuf messages over gRPC."""

import numpy as np
from seldon_core.proto import prediction_pb2
from seldon_core.utils import array_to_grpc_datadef, get_data_from_proto


class GrpcHooks:
    def predict_grpc(self, request):
        X = get_data_from_proto(request)
        return prediction_pb2.SeldonMessage(data=array_to_grpc_datadef("ndarray", X * 3, ["tripled"]))

    def transform_input_grpc(self, request):
        return prediction_pb2.SeldonMessage(strData="transform_input_grpc")

    def route_grpc(self, request):
        return prediction_pb2.SeldonMessage(data=array_to_grpc_datadef("ndarray", np.array([[1]])))

    def send_feedback_grpc(self, request):
        return {"strData": f"feedback {request.reward}"}

    def predict(self, X, features_names=None):
        return X  # over REST (no *_rest hook): the plain method
