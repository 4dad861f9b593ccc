"""The one error type every surface renders in its own shape.

`ApiError` carries what a client needs (HTTP status, OpenAI `type`, `code`, `param`, a message) and what a
caller needs (whether a retry can help, and after how long). `/v1` renders it as OpenAI's error body, DRF as
`{"detail", "code"}`, GraphQL as an error with `extensions.code`, MCP as a tool error and the WebSocket as an
`error` message. Pure: no Django import, so the adapters and the engines can raise it.
"""

from __future__ import annotations

import orjson

# OpenAI's `type` for a status, used when a subclass or a caller does not name one.
OPENAI_TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
                404: "not_found_error", 405: "invalid_request_error", 408: "timeout", 409: "invalid_request_error",
                413: "invalid_request_error", 422: "invalid_request_error", 429: "rate_limit_error"}


class ApiError(Exception):
    status = 400
    type = "invalid_request_error"
    code: str | None = None
    retryable = False

    def __init__(self, message: str, *, param: str | None = None, code: str | None = None, status: int | None = None,
                 type: str | None = None, headers: dict | None = None, retryable: bool | None = None,
                 retry_after: float | None = None):
        super().__init__(message)
        self.message = message
        self.param = param
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status
            if type is None and "type" not in self.__class__.__dict__:
                self.type = OPENAI_TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")
        if type is not None:
            self.type = type
        if retryable is not None:
            self.retryable = retryable
        self.retry_after = retry_after
        self.headers = dict(headers or {})
        if retry_after is not None and "retry-after" not in self.headers:
            self.headers["retry-after"] = str(int(retry_after + 0.999))  # whole seconds, rounded up

    def as_openai(self) -> dict:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}

    def body(self) -> bytes:
        return orjson.dumps(self.as_openai())

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.status}, {self.code!r}, {self.message!r})"


class InvalidRequest(ApiError):
    status = 400


class AuthenticationFailed(ApiError):
    status = 401
    type = "authentication_error"
    code = "invalid_api_key"


class PermissionDenied(ApiError):
    status = 403
    type = "permission_error"
    code = "permission_denied"


class NotFound(ApiError):
    """Missing and another tenant's look the same: one answer for both."""

    status = 404
    type = "invalid_request_error"  # what OpenAI answers for an unknown model or URL
    code = "not_found"


class ModelNotFound(NotFound):
    code = "model_not_found"


class MethodNotAllowed(ApiError):
    status = 405
    code = "method_not_allowed"


class Conflict(ApiError):
    status = 409
    code = "conflict"


class PayloadTooLarge(ApiError):
    status = 413
    code = "request_too_large"


class RateLimited(ApiError):
    status = 429
    type = "rate_limit_error"
    code = "rate_limit_exceeded"
    retryable = True


class BudgetExceeded(ApiError):
    status = 429
    type = "insufficient_quota"
    code = "budget_exceeded"


class NoCandidate(ApiError):
    """No deployment can serve the request as asked (constraints, capabilities)."""

    status = 400
    code = "no_candidate_meets_constraints"


class ServiceUnavailable(ApiError):
    status = 503
    type = "server_error"
    code = "service_unavailable"
    retryable = True


class InternalError(ApiError):
    status = 500
    type = "server_error"
    code = "internal_error"


class UpstreamError(ApiError):
    """An upstream failure translated for the client: the upstream's own 4xx passes through (with its message),
    5xx becomes 502, timeouts 504, an unreachable upstream 502. `retryable` says whether another attempt
    (another key, another deployment) could succeed."""

    status = 502
    type = "upstream_error"
    code = None  # the upstream's own code passes through; None when it gave none

    def __init__(self, message: str, *, upstream_status: int | None = None, **kwargs):
        super().__init__(message, **kwargs)
        self.upstream_status = upstream_status


class UpstreamTimeout(UpstreamError):
    status = 504
    type = "timeout"
    code = "upstream_timeout"
    retryable = True
