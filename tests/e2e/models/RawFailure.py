class RawFailure:
    """Answers every prediction with a FAILURE status of its own choosing (Seldon lets a raw
    method pick its status code)."""

    def predict_raw(self, msg):
        return {
            "status": {"code": 422, "info": "need 4 features", "reason": "WRONG_SHAPE", "status": "FAILURE"}
        }
