"""Validation of stored routing constraints (virtual models), shared by the model, the admin and the API.

A virtual model's `constraints` are applied to every request as its `circuit_breaker` object, so they are
held to exactly the rules a request is: `route_options.parse_route_options`, its error turned into a field
error.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError

from apps.core.errors import ApiError

from .route_options import parse_route_options


def validate_constraints(constraints: dict, *, strategy: str) -> None:
    """Raise a Django ValidationError when `constraints` would be rejected as a request's circuit_breaker."""
    try:
        parse_route_options({"model": "x", "circuit_breaker": {**constraints, "routing_strategy": strategy}},
                            default_strategy=strategy)
    except ApiError as error:
        raise ValidationError({"constraints": error.message}) from None
