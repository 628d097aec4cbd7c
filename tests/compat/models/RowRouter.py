import numpy as np


class RowRouter:
    """Routes to branch 1 when the first value is positive, else 0; records feedback."""

    def __init__(self):
        self.feedback = []

    def route(self, X, features_names=None):
        return 1 if float(np.asarray(X).ravel()[0]) > 0 else 0

    def send_feedback(self, features, feature_names, reward, truth, routing=None):
        self.feedback.append((reward, routing))
        return []
