"""The one error type rendered as GraphQL errors: `extensions.code` (+ `status`, `param`, `fields`).

Used by the HTTP view (`format_graphql_error` on every error of a result) and the WebSocket consumer (same
function on the errors of each subscription event). An `ApiError` keeps its message and says its code in upper
case (`not_found` → `NOT_FOUND`); DRF and Django validation errors become `VALIDATION_ERROR` with the field
messages; errors of the document itself (syntax, unknown field, limits) `GRAPHQL_VALIDATION_FAILED` unless a
rule named its own code; anything else is logged and answered as `INTERNAL_SERVER_ERROR` without its text.
"""

from __future__ import annotations

import logging

from django.core.exceptions import ObjectDoesNotExist
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from graphql import GraphQLError
from rest_framework.exceptions import APIException
from rest_framework.exceptions import ValidationError as DrfValidationError

from .errors import ApiError

logger = logging.getLogger("apps.graphql")

_STATUS_CODES = {400: "BAD_USER_INPUT", 401: "UNAUTHENTICATED", 403: "FORBIDDEN", 404: "NOT_FOUND",
                 405: "METHOD_NOT_ALLOWED", 409: "CONFLICT", 413: "REQUEST_TOO_LARGE", 429: "RATE_LIMITED"}


def error_extensions(exc: BaseException) -> dict:
    """`{"code", "status", …}` for an exception a resolver raised."""
    if isinstance(exc, ApiError):
        code = exc.code or _STATUS_CODES.get(exc.status, "INTERNAL_SERVER_ERROR")
        extensions = {"code": code.upper(), "status": exc.status}
        if exc.param:
            extensions["param"] = exc.param
        if exc.retry_after is not None:
            extensions["retryAfter"] = exc.retry_after
        for name in ("problems", "explanation"):  # what a workflow definition or firing refusal carries
            if getattr(exc, name, None):
                extensions[name] = getattr(exc, name)
        return extensions
    if isinstance(exc, DjangoValidationError | DrfValidationError):
        fields = _validation_fields(exc)
        extensions = {"code": "VALIDATION_ERROR", "status": 400, "fields": fields}
        named = [name for name in fields if name != "non_field_errors"]
        if named:
            extensions["param"] = named[0]
        return extensions
    if isinstance(exc, APIException):
        return {"code": str(exc.default_code).upper(), "status": exc.status_code}
    if isinstance(exc, ObjectDoesNotExist):
        return {"code": "NOT_FOUND", "status": 404}
    if isinstance(exc, DjangoPermissionDenied):
        return {"code": "FORBIDDEN", "status": 403}
    return {"code": "INTERNAL_SERVER_ERROR", "status": 500}


def error_message(exc: BaseException) -> str:
    if isinstance(exc, ApiError):
        return exc.message
    if isinstance(exc, DjangoValidationError | DrfValidationError):
        fields = _validation_fields(exc)
        return "; ".join(f"{name}: {' '.join(messages)}" if name != "non_field_errors" else " ".join(messages)
                         for name, messages in fields.items()) or "Invalid input."
    if isinstance(exc, APIException):
        return str(exc.detail)
    if isinstance(exc, ObjectDoesNotExist):
        return "Not found."
    if isinstance(exc, DjangoPermissionDenied):
        return str(exc) or "Permission denied."
    return "Internal server error."


def graphql_error(exc: BaseException, *, nodes=None, path=None) -> GraphQLError:
    """A GraphQL error for `exc` (for code that reports errors outside graphql-core's execution)."""
    return GraphQLError(error_message(exc), nodes=nodes, path=path, original_error=exc,
                        extensions=error_extensions(exc))


def format_graphql_error(error: BaseException) -> dict:
    """The JSON of one error of an execution result, as clients receive it."""
    if not isinstance(error, GraphQLError):
        error = GraphQLError(str(error), original_error=error if isinstance(error, Exception) else None)
    original = error.original_error
    while isinstance(original, GraphQLError) and original.original_error is not None:
        original = original.original_error  # graphql-core wraps resolver errors once more in list fields
    formatted = {"message": error.message}
    if original is not None and not isinstance(original, GraphQLError):
        extensions = error_extensions(original)
        formatted["message"] = error_message(original)
        if extensions["code"] == "INTERNAL_SERVER_ERROR":
            logger.error("GraphQL resolver failed at %s", error.path, exc_info=original)
    else:
        extensions = {"code": "GRAPHQL_VALIDATION_FAILED", "status": 400, **(error.extensions or {})}
    if error.locations:
        formatted["locations"] = [{"line": loc.line, "column": loc.column} for loc in error.locations]
    if error.path is not None:
        formatted["path"] = error.path
    formatted["extensions"] = extensions
    return formatted


def _validation_fields(exc) -> dict[str, list[str]]:
    if isinstance(exc, DjangoValidationError):
        if hasattr(exc, "error_dict"):
            return {name: [str(m) for m in messages] for name, messages in exc.message_dict.items()}
        return {"non_field_errors": [str(m) for m in exc.messages]}
    return _flatten(exc.detail)


def _flatten(detail, prefix: str = "") -> dict[str, list[str]]:
    """DRF's nested detail (`{"transitions": [{"id": ["…"]}]}`) as dotted names to messages."""
    if isinstance(detail, dict):
        out: dict[str, list[str]] = {}
        for name, value in detail.items():
            out.update(_flatten(value, f"{prefix}.{name}" if prefix else str(name)))
        return out
    if isinstance(detail, list):
        if all(not isinstance(item, dict | list) for item in detail):
            return {prefix or "non_field_errors": [str(item) for item in detail]}
        out = {}
        for index, item in enumerate(detail):
            if item:
                out.update(_flatten(item, f"{prefix}.{index}" if prefix else str(index)))
        return out
    return {prefix or "non_field_errors": [str(detail)]}
