"""The gateway benchmark's trivial transformer: hands its input on unchanged.

Used for the 3-node chains (BenchTransformer -> BenchTransformer -> BenchModel), in-process
in the gateway and as `seldon microservice BenchTransformer --service-type TRANSFORMER`, so
a chain answers exactly what BenchModel alone answers and the difference in latency is the
cost of the two extra graph hops.
"""


class BenchTransformer:
    def transform_input(self, X, features_names=None):
        return X
