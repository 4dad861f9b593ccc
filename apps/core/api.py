"""DRF glue shared by every app's management API."""

from __future__ import annotations

import logging

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from apps.core.errors import ApiError

logger = logging.getLogger("apps.api")


def exception_handler(exc, context):
    """DRF's handler, plus: our `ApiError` in DRF's shape, model validation errors as 400s, and nothing else
    leaks a traceback."""
    if isinstance(exc, ApiError):
        body = {"detail": exc.message, "code": exc.code}
        if exc.param:
            body["param"] = exc.param
        return Response(body, status=exc.status, headers=exc.headers or None)
    if isinstance(exc, DjangoValidationError):
        detail = exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
        exc = exceptions.ValidationError(detail=detail)
    response = drf_exception_handler(exc, context)
    if response is not None:
        return response
    view = context.get("view")
    logger.exception("unhandled error in %s", type(view).__name__ if view else "api view")
    return Response({"detail": "Internal server error."}, status=status.HTTP_500_INTERNAL_SERVER_ERROR)
