"""A transformer for V2 graphs: adds one to its input, and tags the answer."""

from seldon_serving import ComponentResponse


class V2AddOne:
    def transform_input(self, X, features_names=None):
        return ComponentResponse(X + 1, tags={"added": 1})
