class Failing:
    def predict(self, X, features_names=None):
        raise ValueError("model exploded on purpose")
