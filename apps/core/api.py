"""DRF glue shared by every app's management API."""

from __future__ import annotations

import logging
from collections.abc import Mapping

from django.apps import apps as django_apps
from django.core.exceptions import NON_FIELD_ERRORS
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import DataError, IntegrityError
from django.http import JsonResponse
from rest_framework import exceptions, serializers, status
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.response import Response
from rest_framework.routers import SimpleRouter
from rest_framework.settings import api_settings
from rest_framework.views import exception_handler as drf_exception_handler

from apps.core.errors import ApiError

logger = logging.getLogger("apps.api")


def exception_handler(exc, context):
    """DRF's handler, plus: our `ApiError` in DRF's shape, model validation errors as 400s, a duplicate of a
    submitted field (full_clean's, or the database's unique constraint when a concurrent writer won) as a 400
    naming that field, and nothing else leaks a traceback."""
    if isinstance(exc, ApiError):
        body = {"detail": exc.message, "code": exc.code}
        if exc.param:
            body["param"] = exc.param
        return Response(body, status=exc.status, headers=exc.headers or None)
    if isinstance(exc, IntegrityError) and (duplicate := _unique_violation(exc)) is not None:
        exc = duplicate
    if isinstance(exc, DataError) and "NUL" in str(exc):
        # A body no serializer field read (a workflow document) reached PostgreSQL with U+0000 in its text.
        exc = exceptions.ValidationError({api_settings.NON_FIELD_ERRORS_KEY: [NUL_MESSAGE]})
    if isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(detail=_field_errors(exc, context))
    response = drf_exception_handler(exc, context)
    if response is not None:
        return response
    view = context.get("view")
    logger.exception("unhandled error in %s", type(view).__name__ if view else "api view")
    return Response({"detail": "Internal server error."}, status=status.HTTP_500_INTERNAL_SERVER_ERROR)


# ---- uniqueness: one rule for every API ------------------------------------------------------------------
# A value that must be unique and is taken is the client's input error on that field: 400 `{field: [message]}`,
# never a 409 (kept for state conflicts) nor a non-field error the client cannot attach to its form.

def _field_errors(exc: DjangoValidationError, context) -> dict:
    if not hasattr(exc, "error_dict"):
        return {api_settings.NON_FIELD_ERRORS_KEY: exc.messages}
    api_names = _api_field_names(context.get("view"))
    out: dict[str, list] = {}
    for name, errors in exc.error_dict.items():
        for error in errors:
            fields = _unique_fields(error) if name == NON_FIELD_ERRORS else None
            targets = [api_names[f] for f in fields or () if f in api_names] or \
                [api_settings.NON_FIELD_ERRORS_KEY if name == NON_FIELD_ERRORS else api_names.get(name, name)]
            for target in targets:
                out.setdefault(target, []).extend(error.messages)
    return out


def _unique_fields(error: DjangoValidationError) -> tuple | None:
    """The model fields of a `full_clean` uniqueness error ("… with this Tenant and Name already exists.")."""
    if getattr(error, "code", None) in ("unique", "unique_together") and error.params:
        return tuple(error.params.get("unique_check") or ())
    return None


def _api_field_names(view) -> dict[str, str]:
    """Model field → the writable API field that fills it (`user_label` → `userId`); the tenant is nobody's."""
    serializer_class = getattr(view, "serializer_class", None)
    if serializer_class is None:
        return {}
    try:
        fields = serializer_class().fields
    except Exception:  # noqa: BLE001 - a serializer that needs arguments names fields as the model does
        return {}
    return {field.source: name for name, field in fields.items()
            if not field.read_only and field.source and "." not in field.source}


def _unique_violation(exc: IntegrityError) -> DjangoValidationError | None:
    """The database refused a duplicate full_clean did not see (two writers at once): the same error
    full_clean gives, naming the constraint's fields."""
    cause = exc.__cause__
    if getattr(cause, "sqlstate", None) == "23505":  # PostgreSQL names the constraint
        constraint, columns = getattr(cause.diag, "constraint_name", None), None
    elif str(exc).startswith("UNIQUE constraint failed: "):  # SQLite (the embedded default) names the columns
        constraint, columns = None, [c.strip() for c in str(exc).split(": ", 1)[1].split(",")]
    else:
        return None
    for model in django_apps.get_models():
        for unique in getattr(model._meta, "constraints", ()):
            fields = getattr(unique, "fields", None)
            if not fields:
                continue
            table_columns = [f"{model._meta.db_table}.{model._meta.get_field(f).column}" for f in fields]
            if unique.name == constraint or table_columns == columns:
                return DjangoValidationError({NON_FIELD_ERRORS: [DjangoValidationError(
                    f"A {model._meta.verbose_name} with this {' and '.join(fields)} already exists.",
                    code="unique_together", params={"unique_check": fields})]})
    return DjangoValidationError("An object with these values already exists.", code="unique")


NUL_MESSAGE = "Text may not contain NUL characters."


class RefuseNulInQueryMiddleware:
    """A query parameter of /api/ holding U+0000 is a 400 naming it, whatever the view does with it (the ones that
    filter by it would otherwise reach PostgreSQL, which refuses NUL in text); the schema says so (below)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path.startswith("/api/"):
            bad = sorted({name for name, values in request.GET.lists()
                          if "\x00" in name or any("\x00" in value for value in values)})
            if bad:
                return JsonResponse({name: [NUL_MESSAGE] for name in bad}, status=400)
        return self.get_response(request)


class _OptionalSlashRouter(SimpleRouter):
    def __init__(self):
        super().__init__()
        self.trailing_slash = "/?"  # DRF's constructor turns any truthy value into "/"


def api_router() -> SimpleRouter:
    """Every /api route answers with and without its trailing slash (no empty 301 for `…/summary`)."""
    return _OptionalSlashRouter()


# Unknown body fields and read-only ones are a 400 naming them: a mistyped field must not be silently dropped
# (a virtual model posted with a wrong field name was created empty), nor a read-only one ignored. (A comment,
# not a docstring: drf-spectacular would make it the description of every schema component.)
class StrictFieldsMixin:

    def to_internal_value(self, data):
        if isinstance(data, Mapping):
            errors = {}
            for name in data:
                field = self.fields.get(name)
                if field is None:
                    errors[name] = ["Unknown field."]
                elif field.read_only and not self._echoes(field, data[name]):
                    errors[name] = ["This field is read-only."]
                elif (wrong := _json_type_error(field, data[name])) is not None:
                    errors[name] = [wrong]
            if errors:
                raise exceptions.ValidationError(dict(sorted(errors.items())))
        return super().to_internal_value(data)

    def _echoes(self, field, value) -> bool:
        """GET, edit, PUT back stays possible: a read-only field sent with the value it has is no attempt to
        change it."""
        if getattr(self, "instance", None) is None or isinstance(self.instance, list | tuple):
            return False
        if isinstance(field, serializers.SerializerMethodField):
            return True  # derived figures (usage, period bounds) are recomputed, never stored
        try:
            current = field.to_representation(field.get_attribute(self.instance))
        except Exception:  # noqa: BLE001 - a field that cannot be read back cannot be echoed either
            return False
        return current == value or (current is None and value is None) or _json_equal(current, value)


def _json_type_error(field, value) -> str | None:
    """JSON bodies carry real types: DRF would take "false", 0 or "12" for a boolean or an integer, and 12 for a
    string, which the schema (and a client reading it) says are wrong."""
    if value is None:
        return None  # the field's own allow_null check answers
    if isinstance(field, serializers.BooleanField) and not isinstance(value, bool):
        return "Must be true or false."
    # Decimals too (money, prices, percents): JSON numbers in and out (COERCE_DECIMAL_TO_STRING is off), so "12.5"
    # is as wrong as 12.5 for a string; a JSON number keeps its decimal digits (DRF reads it through str()).
    if isinstance(field, serializers.IntegerField | serializers.FloatField | serializers.DecimalField) and (
            isinstance(value, bool) or not isinstance(value, int | float)):
        return "Must be a number."
    if isinstance(field, serializers.CharField) and not isinstance(value, str):
        return "Must be a string."
    if isinstance(field, serializers.JSONField | serializers.DictField | serializers.ListField) and _holds_nul(value):
        return NUL_MESSAGE  # as CharField says; PostgreSQL's jsonb cannot store them
    return None


def _holds_nul(value) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, Mapping):
        return any(_holds_nul(k) or _holds_nul(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return any(_holds_nul(item) for item in value)
    return False


def _json_equal(a, b) -> bool:
    import json  # noqa: PLC0415 - only for the rare echoed read-only field

    return json.dumps(a, sort_keys=True, default=str) == json.dumps(b, sort_keys=True, default=str)


# The base classes every API serializer derives from.
class StrictSerializer(StrictFieldsMixin, serializers.Serializer):
    pass


class AliasedStrictSerializer(StrictSerializer):
    """Accepts other spellings of its fields (`aliases`: the seeds' camelCase, the original's names), then the
    strict check names unknown and read-only fields. One field given under two spellings is a 400."""

    aliases: dict[str, str] = {}

    def to_internal_value(self, data):
        if not isinstance(data, dict):
            raise serializers.ValidationError({"non_field_errors": ["The body must be a JSON object."]})
        renamed = {}
        for key, value in data.items():
            name = self.aliases.get(key, key)
            if name in renamed:
                raise serializers.ValidationError({key: [f"{name!r} is given twice."]})
            renamed[name] = value
        return super().to_internal_value(renamed)


class StrictModelSerializer(StrictFieldsMixin, serializers.ModelSerializer):
    pass


class StrictLimitOffsetPagination(LimitOffsetPagination):
    """`?limit=` (1…MAX) and `?offset=` (0…) must be integers: `?offset=null` or `?limit=-1` is a 400, not a
    silently ignored parameter."""

    max_limit = 1000

    def _integer(self, request, name: str, minimum: int, maximum: int | None = None) -> int | None:
        raw = request.query_params.get(name)
        if raw is None:
            return None
        try:
            value = int(raw)
        except ValueError:
            value = None
        if value is None or value < minimum or (maximum is not None and value > maximum) \
                or not raw.strip().lstrip("+").isdigit():
            bound = f"from {minimum} to {maximum}" if maximum is not None else f"of at least {minimum}"
            raise exceptions.ValidationError({name: [f"Expected an integer {bound}."]})
        return value

    def get_limit(self, request):
        value = self._integer(request, self.limit_query_param, 1, self.max_limit)
        return self.default_limit if value is None else value

    def get_offset(self, request):
        return self._integer(request, self.offset_query_param, 0) or 0

    def get_schema_operation_parameters(self, view):
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.limit_query_param:
                parameter["schema"].update(minimum=1, maximum=self.max_limit)
            elif parameter["name"] == self.offset_query_param:
                parameter["schema"].update(minimum=0)
        return parameters


_STRINGS = {"type": "array", "items": {"type": "string", "minLength": 1}}  # names: none may be empty
NOT_NULL = [{"type": t} for t in ("object", "array", "string", "number", "boolean")]
# What the API's JSON fields hold (drf-spectacular says "anything, null included" for a JSONField).
JSON_FIELD_TYPES = {
    "options": {"type": "object"}, "constraints": {"type": "object"}, "conditions": {"type": "object"},
    "params": {"type": "object"}, "data": {"type": "object"}, "metadata": {"type": "object"},
    "facts": {"type": "object"}, "candidates": _STRINGS, "fallbacks": _STRINGS, "aliases": _STRINGS,
    "tags": _STRINGS, "request_log_redact": _STRINGS,
    "condition": {"oneOf": [{"type": "object"}, {"type": "array"}, {"type": "string", "minLength": 1}]},
}


def close_request_bodies(result, generator, request, public):
    """drf-spectacular postprocessing hook: request bodies accept no other properties (the API answers 400 on
    unknown fields, so the schema says so), and JSON fields say what they hold."""
    for name, component in result.get("components", {}).get("schemas", {}).items():
        if not name.endswith("Request") or component.get("type") != "object":
            continue
        component.setdefault("additionalProperties", False)
        for prop_name, prop in component.get("properties", {}).items():
            untyped = not ({"type", "$ref", "oneOf", "anyOf", "allOf"} & set(prop))
            typed = JSON_FIELD_TYPES.get(prop_name)
            if typed and untyped:
                prop.update(typed)
            elif untyped and not prop.get("nullable"):
                prop["anyOf"] = NOT_NULL  # a JSON field that does not allow null says so (OpenAPI 3.0 has no null)
    return result


ERROR_BODY = {"type": "object", "properties": {"detail": {}, "code": {"type": "string", "nullable": True},
                                                "param": {"type": "string", "nullable": True}},
              "additionalProperties": True,
              "description": "`{\"detail\", \"code\"}`; a 400 from field validation maps each field to its messages."}
_ERRORS = {"400": "Invalid input: the body, a field or a query parameter (named in the answer), including a value "
                  "that must be unique and is taken (`{\"name\": [\"… already exists.\"]}`).",
           "401": "No or an invalid API key / session.",
           "403": "Authenticated but not allowed (scope, staff-only, a global row).",
           "404": "No such object for this tenant (another tenant's answers the same).",
           "405": "Method not allowed here.",
           "409": "Conflict: the object's state forbids it (finished, still in use, changed by another writer).",
           "429": "Rate limited."}


# Rules no JSON schema can state (one parameter against another, a range's length): an operation declares them
# with `extend_schema(extensions=beyond_schema("…"))`; the hook below lists them in its description, and
# `x-validated-beyond-schema: true` lets schema-driven tools (tests/serving/schemathesis.toml) know that a
# schema-valid request may still be a 400.
BEYOND_SCHEMA = "x-rules-beyond-schema"


def beyond_schema(*rules: str) -> dict:
    """`extensions=` for an operation refusing, with a 400 naming the field, what its schema allows."""
    return {BEYOND_SCHEMA: list(rules)}


def document_rules_beyond_schema(result, generator, request, public):
    """drf-spectacular postprocessing hook: see `beyond_schema`."""
    for operations in result.get("paths", {}).values():
        for operation in operations.values():
            rules = operation.get(BEYOND_SCHEMA) if isinstance(operation, dict) else None
            if rules:
                listed = "\n".join(f"- {rule}" for rule in rules)
                operation["description"] = (f"{operation.get('description', '')}\n\nAlso a 400 naming the "
                                            f"parameter or field:\n{listed}").strip()
                operation["x-validated-beyond-schema"] = True
    return result


def document_errors(result, generator, request, public):
    """drf-spectacular postprocessing hook: every operation documents the error answers any view can give (the
    exception handler above renders all of them in one shape), so clients and schemathesis see the truth."""
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    schemas.setdefault("Error", ERROR_BODY)
    error = {"$ref": "#/components/schemas/Error"}
    for operations in result.get("paths", {}).values():
        for operation in operations.values():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            # Errors are rendered in whatever the operation renders (the YAML export answers its 404 in YAML).
            types = {t for code, answer in operation["responses"].items() if code.startswith("2")
                     for t in (answer.get("content") or {})} or {"application/json"}
            for status_code, description in _ERRORS.items():
                operation["responses"].setdefault(status_code, {
                    "description": description, "content": {t: {"schema": error} for t in sorted(types)}})
            for parameter in operation.get("parameters", ()):
                if parameter.get("in") == "query" and parameter.get("name") == "limit":
                    parameter["schema"].setdefault("minimum", 1)
                    parameter["schema"].setdefault("maximum", 1000)
                if parameter.get("in") == "query" and parameter.get("required"):
                    parameter["schema"].setdefault("minLength", 1)
                if parameter.get("in") == "query" and parameter["schema"].get("type") == "string" \
                        and not ({"enum", "format", "pattern"} & set(parameter["schema"])):
                    parameter["schema"]["pattern"] = "^[^\\x00]*$"  # RefuseNulInQueryMiddleware
    return result
