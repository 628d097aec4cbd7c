class Picky:
    """Fails the way real user code does: a KeyError deep inside the class."""

    def __init__(self):
        self.settings = {}

    def predict(self, X, features_names=None):
        return X * self.settings["threshold"]
