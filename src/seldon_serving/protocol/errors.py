"""The one error family and the one error table.

`ServingError` is the root of every error raised on purpose: its text is one sentence
for a person, and the CLI turns it into that sentence and `exit_code`.  Anything else
that escapes is a bug of ours (the CLI says so, and shows the traceback with --debug).

`SeldonError`s are the ones a client can see: every failure of a request is raised once
as a subclass and each edge maps it the same way (HTTP status, gRPC status code name,
Seldon Status body).  Component-level reasons and `code: -1` follow Seldon's Python
wrapper; engine-level codes 203-207 follow Seldon's engine, but with the right HTTP
class (4xx when the caller is at fault) instead of the engine's blanket 500.
"""

from __future__ import annotations

import functools
from typing import Any, ClassVar

from seldon_serving.protocol.message import Status, failure_status


class ServingError(Exception):
    """Root of every error raised on purpose; `str(error)` says what went wrong in one sentence."""

    exit_code: ClassVar[int] = 1


class SeldonError(ServingError):
    """Base of every error a client can see.  `str(error)` is the one-sentence info."""

    http_status: ClassVar[int] = 500
    grpc_code: ClassVar[str] = "INTERNAL"  # a grpc.StatusCode member name
    reason: ClassVar[str] = "MICROSERVICE_INTERNAL_ERROR"
    code: ClassVar[int] = -1

    def __init__(self, info: str, *, node: str | None = None, body: dict[str, Any] | None = None) -> None:
        super().__init__(info)
        self.info = info
        self.node = node
        self._body = body  # a body the user's own exception chose (its to_dict())

    def status(self) -> Status:
        return failure_status(self.code, self.info, self.reason)

    def body(self) -> dict[str, Any]:
        """The JSON body a client gets: a SeldonMessage holding only a FAILURE status (or the
        body a user's exception chose, as Seldon's wrapper answers it)."""
        return self._body if self._body is not None else {"status": self.status()}


# --- component (microservice) errors: Seldon's wrapper reasons, code -1 -----------------


class BadRequest(SeldonError):
    """The caller sent something we cannot read (malformed JSON, wrong types, ragged arrays)."""

    http_status = 400
    grpc_code = "INVALID_ARGUMENT"
    reason = "MICROSERVICE_BAD_DATA"


class RequestTooLarge(BadRequest):
    http_status = 413
    grpc_code = "RESOURCE_EXHAUSTED"


class NotImplementedByComponent(SeldonError):
    """The component has no method for this call (e.g. /route on a model)."""

    http_status = 400
    grpc_code = "UNIMPLEMENTED"
    reason = "MICROSERVICE_BAD_DATA"


class UserCodeError(SeldonError):
    """The user's class raised; `info` carries its message (never a stack trace)."""

    http_status = 500
    grpc_code = "INTERNAL"
    reason = "MICROSERVICE_INTERNAL_ERROR"


class BadMetric(SeldonError):
    http_status = 500
    grpc_code = "INTERNAL"
    reason = "MICROSERVICE_BAD_METRIC"


class BadParameter(SeldonError):
    http_status = 400
    grpc_code = "INVALID_ARGUMENT"
    reason = "MICROSERVICE_BAD_PARAMETER"


class BadMetadata(SeldonError):
    http_status = 500
    grpc_code = "INTERNAL"
    reason = "MICROSERVICE_BAD_METADATA"


# --- engine / gateway errors: Seldon engine codes --------------------------------------


class MicroserviceError(SeldonError):
    """A graph node failed (the component answered an error or could not be reached)."""

    http_status = 500
    grpc_code = "INTERNAL"
    reason = "Microservice error"
    code = 203


class RoutingError(SeldonError):
    """A built-in A/B test or combiner could not do its job."""

    http_status = 500
    grpc_code = "INTERNAL"
    reason = "Error happened in AB Test Routing"
    code = 204


class InvalidRouting(SeldonError):
    http_status = 500
    grpc_code = "INTERNAL"
    reason = "Invalid Routing"
    code = 207


class NodeTimeout(SeldonError):
    http_status = 504
    grpc_code = "DEADLINE_EXCEEDED"
    reason = "Microservice error"
    code = 203


class NodeUnavailable(SeldonError):
    http_status = 503
    grpc_code = "UNAVAILABLE"
    reason = "Microservice error"
    code = 203


class DeploymentNotFound(SeldonError):
    http_status = 404
    grpc_code = "NOT_FOUND"
    reason = "No Running Deployment"
    code = 104


class MethodNotFound(SeldonError):
    http_status = 404
    grpc_code = "UNIMPLEMENTED"
    reason = "Not Found"
    code = 404


class MethodNotAllowed(SeldonError):
    """The path exists but not for this HTTP method; `allow` lists the ones it takes."""

    http_status = 405
    grpc_code = "UNIMPLEMENTED"
    reason = "Method Not Allowed"
    code = 405

    def __init__(self, info: str, *, allow: str = "", node: str | None = None) -> None:
        super().__init__(info, node=node)
        self.allow = allow


class Unauthenticated(SeldonError):
    http_status = 401
    grpc_code = "UNAUTHENTICATED"
    reason = "Unauthorized"
    code = 401


# HTTP status -> gRPC status code name, for statuses chosen at run time (a user exception's
# status_code, a component's FAILURE answer); the classes above declare their own pair.
GRPC_CODE_BY_HTTP: dict[int, str] = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ALREADY_EXISTS",
    413: "RESOURCE_EXHAUSTED",
    429: "RESOURCE_EXHAUSTED",
    501: "UNIMPLEMENTED",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}


def grpc_code_for(http_status: int) -> str:
    """The gRPC status code name that matches an HTTP status."""
    fallback = "INVALID_ARGUMENT" if 400 <= http_status < 500 else "INTERNAL"
    return GRPC_CODE_BY_HTTP.get(http_status, fallback)


@functools.lru_cache(maxsize=64)
def _status_error_class(http_status: int, reason: str) -> type[SeldonError]:
    base: type[SeldonError] = BadRequest if http_status < 500 else UserCodeError
    attributes = {"http_status": http_status, "reason": reason, "grpc_code": grpc_code_for(http_status)}
    return type("StatusError", (base,), attributes)


def status_error(http_status: int, reason: str, info: str, body: dict[str, Any] | None = None) -> SeldonError:
    """An error answering with a status picked at run time (e.g. a user's
    SeldonMicroserviceException(status_code=422, reason=...)), and its own `body` if given."""
    return _status_error_class(http_status, reason)(info, body=body)


def answer_status(status: Status | None) -> int:
    """The HTTP status of an answer by the status it carries (Seldon lets a component pick it):
    a FAILURE answers its code when that is an HTTP error (400-599), else 500; any other
    status its code when that is an HTTP status (200-599), else 200."""
    if not status:
        return 200
    code: Any = status.get("code")
    valid = isinstance(code, int) and not isinstance(code, bool)
    if status.get("status") in ("FAILURE", 1):
        return code if valid and 400 <= code < 600 else 500
    return code if valid and 200 <= code < 600 else 200


def answer_failure(status: Status | None) -> SeldonError | None:
    """The error a transport without status codes in its body (gRPC) answers for an answer
    whose status says it failed (`answer_status` >= 400); None for a successful answer."""
    http_status = answer_status(status)
    if http_status < 400 or not status:
        return None
    reason = str(
        status.get("reason") or ("MICROSERVICE_BAD_DATA" if http_status < 500 else "Microservice error")
    )
    info = str(status.get("info") or f"the answer's status is {status.get('status')} {status.get('code')}")
    return status_error(http_status, reason, info)
