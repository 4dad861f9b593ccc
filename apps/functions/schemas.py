"""JSON Schema checks of functions' input and output (jsonschema, the draft a schema names or 2020-12)."""

from __future__ import annotations

from functools import lru_cache

import jsonschema
import orjson
from jsonschema.exceptions import SchemaError
from jsonschema.validators import validator_for


def schema_problems(schema) -> list[str]:
    """Why `schema` is not a usable JSON Schema (empty when it is)."""
    if not isinstance(schema, dict):
        return ["must be a JSON Schema object"]
    try:
        validator_for(schema, default=jsonschema.Draft202012Validator).check_schema(schema)
    except SchemaError as exc:
        return [f"{'/'.join(map(str, exc.path)) or '$'}: {exc.message}"]
    return []


@lru_cache(maxsize=512)
def _validator(frozen: bytes):
    schema = orjson.loads(frozen)
    return validator_for(schema, default=jsonschema.Draft202012Validator)(schema)


def instance_problems(schema: dict, value) -> list[str]:
    """Every place `value` breaks `schema`, as `path: message` (at most 10), best match first."""
    if not schema:
        return []
    validator = _validator(orjson.dumps(schema, option=orjson.OPT_SORT_KEYS))
    errors = sorted(validator.iter_errors(value), key=jsonschema.exceptions.relevance)
    return [f"{'/'.join(map(str, e.absolute_path)) or '$'}: {e.message}" for e in errors[:10]]
