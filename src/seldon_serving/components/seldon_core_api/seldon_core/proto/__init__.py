"""`seldon_core.proto.prediction_pb2` and `prediction_pb2_grpc`: Seldon Serving's own
generated code for the same `seldon.protos` messages (same names, same wire format)."""
