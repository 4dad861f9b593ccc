"""What every app's GraphQL module shares: the JSON scalar, bounded pages and the mutation guard."""

from __future__ import annotations

import functools
import json

import graphene
from django.db import transaction
from graphene.types.generic import GenericScalar

from .errors import InvalidRequest
from .graphql_limits import LIST_DEFAULT, MAX_PAGE, page_bounds

__all__ = ["JSON", "LIST_DEFAULT", "MAX_PAGE", "batched", "json_object", "mutation", "page_arguments", "paged",
           "reader", "refuse_nul_characters", "remember", "request_cache"]


class JSON(GenericScalar):
    """Any JSON value: an object literal, a list, a string, a number, a boolean or null."""


def page_arguments(**extra) -> dict:
    """`first` (1…MAX_PAGE, default LIST_DEFAULT) and `offset` (0…) for a list field."""
    return {"first": graphene.Int(description=f"Items to return, 1…{MAX_PAGE} (default {LIST_DEFAULT})."),
            "offset": graphene.Int(description="Items to skip (default 0)."), **extra}


def paged(rows, first: int | None = None, offset: int | None = None):
    """One page of a queryset or list (never the whole table)."""
    start, limit = page_bounds(first, offset)
    return list(rows[start:start + limit])


def json_object(value, name: str) -> dict:
    """An object argument, also given as a string holding a JSON object (the documents' `data: "{…}"`)."""
    if value is None:
        return {}
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise InvalidRequest(f"`{name}` must be an object (or a string holding a JSON object).",
                                 param=name) from None
    if not isinstance(value, dict):
        raise InvalidRequest(f"`{name}` must be an object.", param=name)
    return value


def mutation(action: str = "write", *, atomic: bool = True):
    """A mutation's `mutate`: checks the principal may `action` (read/write/inference), then runs in one
    transaction, so a failing mutation changes nothing."""

    def decorate(mutate):
        @functools.wraps(mutate)
        def wrapper(root, info, **kwargs):
            info.context.require(action)
            if not atomic:
                return mutate(root, info, **kwargs)
            with transaction.atomic():
                return mutate(root, info, **kwargs)

        return wrapper

    return decorate


def reader(resolve):
    """A query resolver that needs the `read` permission."""

    @functools.wraps(resolve)
    def wrapper(root, info, **kwargs):
        info.context.require("read")
        return resolve(root, info, **kwargs)

    return wrapper


def request_cache(info) -> dict:
    """A dict living as long as the operation's context: loaders put what they fetched for a whole list here,
    so each field of each item reads it instead of querying again."""
    context = info.context
    cache = getattr(context, "cache", None)
    if cache is None:
        cache = {}
        context.cache = cache
    return cache


def remember(info, kind: str, rows) -> list:
    """Note the rows a field returns, so `batched` loads what their fields need for all of them at once."""
    rows = list(rows)
    request_cache(info).setdefault(f"{kind}:rows", {}).update({row.pk: row for row in rows})
    return rows


def batched(info, kind: str, what: str, row, load):
    """`load(rows) -> {pk: value}` over every remembered row of `kind` still without `what`, on the first field
    that asks; the value for `row`. One query per list instead of one per item (no N+1)."""
    cache = request_cache(info)
    rows = cache.setdefault(f"{kind}:rows", {})
    rows.setdefault(row.pk, row)
    values = cache.setdefault(f"{kind}:{what}", {})
    if row.pk not in values:
        values.update(load([r for pk, r in rows.items() if pk not in values]))
    return values[row.pk]


def refuse_nul_characters(next_, root, info, **args):
    """graphene middleware: a NUL character in any argument (PostgreSQL stores none, in text or JSON) is the
    client's error, named, not a database error."""
    if args:
        path = _nul_path(args)
        if path is not None:
            raise InvalidRequest(f"`{path}` contains a NUL character (\\u0000), which cannot be stored.",
                                 param=path, code="invalid_character")
    return next_(root, info, **args)


def _nul_path(value, path: str = "") -> str | None:
    if isinstance(value, str):
        return path if "\x00" in value else None
    if isinstance(value, dict):
        for key, item in value.items():
            if "\x00" in str(key):
                return f"{path}.{key!s}".strip(".").replace("\x00", "\\u0000")
            found = _nul_path(item, f"{path}.{key}" if path else str(key))
            if found is not None:
                return found
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            found = _nul_path(item, f"{path}.{index}")
            if found is not None:
                return found
    return None
