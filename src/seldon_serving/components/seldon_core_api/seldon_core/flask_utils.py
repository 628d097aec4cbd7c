"""`SeldonMicroserviceException`, as seldon-core defines it (the servers answer its status
code, and its `to_dict()` as the body)."""

from __future__ import annotations

from typing import Any


class SeldonMicroserviceException(Exception):
    status_code = 400

    def __init__(
        self,
        message: str,
        status_code: int | None = None,
        payload: Any = None,
        reason: str = "MICROSERVICE_BAD_DATA",
    ) -> None:
        Exception.__init__(self)
        self.message = message
        if status_code is not None:
            self.status_code = status_code
        self.payload = payload
        self.reason = reason

    def to_dict(self) -> dict[str, Any]:
        return {"status": {"status": 1, "info": self.message, "code": -1, "reason": self.reason}}
