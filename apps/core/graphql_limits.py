"""Depth and cost limits for GraphQL documents, checked at validation time (before any resolver runs).

One walk over each operation (fragments followed once per path, cycles cut) computes
- its depth: nested selection sets below the operation, introspection (`__schema`, `__type`) not counted;
- its cost: every field costs 1, times the number of items its parent lists may return — a list field's
  `first`/`limit` argument when given, else the field's default page size (`LIST_DEFAULT`).

A document over `GRAPHQL_MAX_DEPTH` or `GRAPHQL_MAX_COST` gets one error (`QUERY_TOO_DEEP` /
`QUERY_TOO_COMPLEX`) and is not executed: a hostile query costs the server a walk of its text, not a worker.
"""

from __future__ import annotations

import functools

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    ValidationRule,
    VariableNode,
    get_named_type,
    get_nullable_type,
    is_list_type,
    specified_rules,
)

from .errors import InvalidRequest

LIST_DEFAULT = 20  # what a list field without `first` is counted as (and what paginated fields return)
MAX_PAGE = 100  # the largest `first` a list field accepts
_PAGE_ARGUMENTS = ("first", "limit", "last")


@functools.cache
def limit_rules(*, max_depth: int, max_cost: int) -> tuple[type[ValidationRule], ...]:
    """graphql-core's own rules plus ours, for `validate(schema, document, rules)`."""

    class QueryLimitsRule(ValidationRule):
        def enter_document(self, node, *_args):
            fragments = {d.name.value: d for d in node.definitions if isinstance(d, FragmentDefinitionNode)}
            for definition in node.definitions:
                if not isinstance(definition, OperationDefinitionNode):
                    continue
                walk = _Walk(self.context, fragments, max_depth)
                root = self.context.schema.get_root_type(definition.operation)
                if root is None:
                    continue
                cost = walk.selections(definition.selection_set, root, 1, 1)
                name = definition.name.value if definition.name else "anonymous"
                if walk.too_deep:
                    self.report_error(GraphQLError(
                        f"Operation '{name}' is nested deeper than the limit of {max_depth} levels.", definition,
                        extensions={"code": "QUERY_TOO_DEEP", "status": 400, "maxDepth": max_depth}))
                elif cost > max_cost:
                    self.report_error(GraphQLError(
                        f"Operation '{name}' may touch {cost} fields, more than the limit of {max_cost}; ask for "
                        "fewer fields or smaller pages (first:).", definition,
                        extensions={"code": "QUERY_TOO_COMPLEX", "status": 400, "cost": cost,
                                    "maxCost": max_cost}))
            return self.SKIP

    return (*specified_rules, QueryLimitsRule)


class _Walk:
    def __init__(self, context, fragments, max_depth):
        self.context = context
        self.fragments = fragments
        self.max_depth = max_depth
        self.too_deep = False
        self.variables = {}

    def selections(self, selection_set, parent_type, depth: int, multiplier: int, seen=frozenset()) -> int:
        if selection_set is None or self.too_deep:
            return 0
        if depth > self.max_depth:
            self.too_deep = True
            return 0
        cost = 0
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                cost += self.field(selection, parent_type, depth, multiplier, seen)
            elif isinstance(selection, InlineFragmentNode):
                inner = self._type(selection.type_condition.name.value) if selection.type_condition else parent_type
                cost += self.selections(selection.selection_set, inner or parent_type, depth, multiplier, seen)
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                fragment = self.fragments.get(name)
                if fragment is None or name in seen:
                    continue  # unknown fragments and cycles are graphql-core's own errors
                inner = self._type(fragment.type_condition.name.value) or parent_type
                cost += self.selections(fragment.selection_set, inner, depth, multiplier, seen | {name})
            if self.too_deep:
                break
        return cost

    def field(self, node: FieldNode, parent_type, depth, multiplier, seen) -> int:
        name = node.name.value
        if name.startswith("__"):
            return 0  # introspection: bounded by the schema's size, and GraphiQL's own query is deep
        definition = getattr(parent_type, "fields", {}).get(name) if parent_type is not None else None
        cost = multiplier
        if node.selection_set is None:
            return cost
        field_type = definition.type if definition is not None else None
        items = multiplier
        if field_type is not None and is_list_type(get_nullable_type(field_type)):
            items = multiplier * self._page_size(node)
        child_type = get_named_type(field_type) if field_type is not None else None
        return cost + self.selections(node.selection_set, child_type, depth + 1, items, seen)

    def _page_size(self, node: FieldNode) -> int:
        for argument in node.arguments or ():
            if argument.name.value in _PAGE_ARGUMENTS:
                if isinstance(argument.value, IntValueNode):
                    return max(1, int(argument.value.value))
                if isinstance(argument.value, VariableNode):
                    return MAX_PAGE  # a page size chosen at run time: count the largest page
        return LIST_DEFAULT

    def _type(self, name: str):
        return self.context.schema.get_type(name)


def page_bounds(first: int | None, offset: int | None, *, default: int = LIST_DEFAULT) -> tuple[int, int]:
    """(offset, limit) of a list field's `first`/`offset` arguments, refused outside 1…MAX_PAGE / 0…."""
    first = default if first is None else first
    offset = 0 if offset is None else offset
    if not 1 <= first <= MAX_PAGE:
        raise InvalidRequest(f"first must be from 1 to {MAX_PAGE}.", param="first", code="invalid_page")
    if offset < 0:
        raise InvalidRequest("offset must be 0 or more.", param="offset", code="invalid_page")
    return offset, first
