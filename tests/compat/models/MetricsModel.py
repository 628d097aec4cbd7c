class MetricsModel:
    """Seldon's custom-metrics example: a counter, a gauge and a tagged timer on every answer."""

    def predict(self, X, features_names=None):
        return X

    def send_feedback(self, features, feature_names, reward, truth, routing=None):
        return None

    def metrics(self):
        return [
            {"type": "COUNTER", "key": "mycounter", "value": 1},
            {"type": "GAUGE", "key": "mygauge", "value": 100},
            {"type": "TIMER", "key": "mytimer", "value": 20.2, "tags": {"mytag": "a"}},
        ]
