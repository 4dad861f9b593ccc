"""Input types the agent mutations share, and the documents' snake_case spellings of input fields."""

from __future__ import annotations

import graphene
from django.core.exceptions import ValidationError

from apps.agents.models import RETRY_KINDS

SNAKE = "The documents' snake_case name; use the camelCase field."


def given(input, name: str):
    """The value of field `name` of an input, also given in the documents' snake_case (the `<name>_snake`
    field); both given and different is a validation error."""
    values = [input.get(key) for key in (name, f"{name}_snake") if input.get(key) is not None]
    if len(values) > 1 and values[0] != values[1]:
        raise ValidationError({name: ["Given twice, with different values (camelCase and snake_case)."]})
    return values[0] if values else None


def present(**values) -> dict:
    """The arguments that were given (None: left out)."""
    return {name: value for name, value in values.items() if value is not None}


class AgentRetryInput(graphene.InputObjectType):
    max_attempts = graphene.Int(description="1…10 (default 3).")
    backoff_seconds = graphene.Float(description="0…3600 (default 10).")
    retry_on_errors = graphene.List(graphene.NonNull(graphene.String), description=", ".join(RETRY_KINDS))


def retry_of(retry) -> dict | None:
    if retry is None:
        return None
    return present(max_attempts=retry.max_attempts, backoff_seconds=retry.backoff_seconds,
                   retry_on_errors=retry.retry_on_errors)
