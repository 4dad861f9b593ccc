"""OpenAI-style errors: `{"error": {"message", "type", "param", "code"}}` with the matching status."""

from __future__ import annotations

from apps.core.errors import ApiError


class GatewayError(ApiError):
    # Pinned here so a status alone never changes the type a client sees (ApiError derives it from the status).
    type = "invalid_request_error"


class NotFound(GatewayError):
    status = 404
    code = "not_found"
