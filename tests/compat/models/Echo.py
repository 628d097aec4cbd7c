class Echo:
    """Answers what it is given; takes feedback and says nothing."""

    def predict(self, X, features_names=None):
        return X

    def send_feedback(self, features, feature_names, reward, truth, routing=None):
        return None

    def tags(self):
        return {"zeta": 1, "alpha": {"b": 2, "a": [1, "x"]}}
