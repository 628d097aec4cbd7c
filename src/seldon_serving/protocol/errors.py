"""The one error table: every failure is raised once as a `SeldonError` subclass and
each edge maps it the same way (HTTP status, gRPC status code name, Seldon Status body).

Component-level reasons and `code: -1` follow Seldon's Python wrapper; engine-level
codes 201-207 follow Seldon's engine, but with the right HTTP class (4xx when the
caller is at fault) instead of the engine's blanket 500.
"""

from __future__ import annotations

from typing import ClassVar

from seldon_serving.protocol.message import Status, failure_status


class SeldonError(Exception):
    """Base of every error a client can see.  `str(error)` is the one-sentence info."""

    http_status: ClassVar[int] = 500
    grpc_code: ClassVar[str] = "INTERNAL"  # a grpc.StatusCode member name
    reason: ClassVar[str] = "MICROSERVICE_INTERNAL_ERROR"
    code: ClassVar[int] = -1

    def __init__(self, info: str, *, node: str | None = None) -> None:
        super().__init__(info)
        self.info = info
        self.node = node

    def status(self) -> Status:
        return failure_status(self.code, self.info, self.reason)

    def body(self) -> dict[str, Status]:
        """The JSON body a client gets: a SeldonMessage holding only a FAILURE status."""
        return {"status": self.status()}


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


class InvalidJson(SeldonError):
    http_status = 400
    grpc_code = "INVALID_ARGUMENT"
    reason = "Invalid JSON"
    code = 201


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


class ExecutionFailure(SeldonError):
    http_status = 500
    grpc_code = "INTERNAL"
    reason = "Execution failure"
    code = 206


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


class Paused(SeldonError):
    http_status = 503
    grpc_code = "UNAVAILABLE"
    reason = "Service unavailable"
    code = 503
