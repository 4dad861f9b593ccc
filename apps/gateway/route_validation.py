"""Validation of stored routing constraints (virtual models), shared by the admin, the API and the gateway."""

from __future__ import annotations

from django.core.exceptions import ValidationError

from apps.core.errors import ApiError


def validate_constraints(constraints: dict, *, strategy: str) -> None:
    """Raise a Django ValidationError when `constraints` would be rejected as a request's circuit_breaker."""
    from .routing import parse_route_options

    try:
        parse_route_options({"model": "x", "circuit_breaker": {**constraints, "routing_strategy": strategy}},
                            default_strategy=strategy)
    except ApiError as error:
        raise ValidationError({"constraints": error.message}) from None
