"""A class whose load() takes a while and writes when it ran (for the test that a graph's
process nodes start together)."""

import json
import os
import time
from pathlib import Path


class SlowLoad:
    def __init__(self, record_dir: str = "", seconds: str = "1.5") -> None:
        self.record_dir = record_dir
        self.seconds = float(seconds)

    def load(self) -> None:
        started = time.time()
        time.sleep(self.seconds)
        record = {"pid": os.getpid(), "start": started, "end": time.time()}
        with open(Path(self.record_dir) / f"{os.getpid()}.json", "w") as handle:
            json.dump(record, handle)

    def predict(self, X, features_names=None):
        return X
