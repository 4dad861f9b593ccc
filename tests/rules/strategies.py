"""Random conditions and facts for the rules engine's property tests."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import strategies as st

scalars = st.one_of(st.none(), st.booleans(), st.integers(-10, 10), st.sampled_from(["", " ", "a", "ab", "7", "5.5"]),
                    st.floats(-10, 10, allow_nan=False), st.decimals(-10, 10, places=2, allow_nan=False,
                                                                      allow_infinity=False))
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
    st.sampled_from(["a", "b", "c"]), inner, max_size=3), max_leaves=6)
field_paths = st.sampled_from(["a", "b", "data.a", "metadata.a", "data.b.c", "b.c", "items.0", "items.1",
                               "data.items.0", "missing", "token.id"])


def _facts_part():
    return st.fixed_dictionaries({}, optional={"a": values, "b": values, "items": st.lists(values, max_size=3)})


facts = st.fixed_dictionaries({"data": _facts_part(), "metadata": _facts_part()},
                              optional={"token": st.fixed_dictionaries({"id": st.integers(0, 3)})})

comparable = st.one_of(st.integers(-10, 10), st.sampled_from(["a", "7", "5.5", "zz"]),
                       st.decimals(-10, 10, places=1, allow_nan=False, allow_infinity=False).map(Decimal))


@st.composite
def leaves(draw):
    field = draw(field_paths)
    kind = draw(st.sampled_from(["FieldExists", "FieldIsEmpty", "FieldEquals", "FieldNotEquals", "FieldGreaterThan",
                                 "FieldGreaterThanOrEqual", "FieldLessThan", "FieldLessThanOrEqual", "FieldIn",
                                 "FieldNotIn", "FieldContains", "FieldStartsWith", "FieldEndsWith", "FieldMatches",
                                 "Expression"]))
    if kind == "Expression":
        return {"type": kind, "expression": draw(st.sampled_from([
            "has(data.a)", "data.a == 1", "size(metadata) > 1", "true", "false", "data.items.exists(x, x == 1)"]))}
    if kind in ("FieldExists", "FieldIsEmpty"):
        return {"type": kind, "field": field}
    if kind in ("FieldIn", "FieldNotIn"):
        return {"type": kind, "field": field, "values": draw(st.lists(scalars.filter(_json), max_size=3))}
    if kind in ("FieldStartsWith", "FieldEndsWith"):
        return {"type": kind, "field": field, "value": draw(st.sampled_from(["", "a", "b", "7"]))}
    if kind == "FieldMatches":
        return {"type": kind, "field": field, "pattern": draw(st.sampled_from(["^a", "b$", "[0-9]", ".*"]))}
    if kind.startswith(("FieldGreater", "FieldLess")):
        return {"type": kind, "field": field, "value": draw(comparable)}
    return {"type": kind, "field": field, "value": draw(scalars.filter(_json))}


def _json(value) -> bool:
    return not isinstance(value, Decimal)


conditions = st.recursive(leaves(), lambda inner: st.one_of(
    st.lists(inner, max_size=3).map(lambda cs: {"type": "And", "conditions": cs}),
    st.lists(inner, max_size=3).map(lambda cs: {"type": "Or", "conditions": cs}),
    inner.map(lambda c: {"type": "Not", "condition": c}),
), max_leaves=5)


def external(condition):
    """The same condition in the externally tagged shape."""
    if isinstance(condition, list):
        return [external(c) for c in condition]
    if isinstance(condition, str):
        return condition
    kind = condition["type"]
    if kind in ("And", "Or"):
        return {kind: [external(c) for c in condition["conditions"]]}
    if kind == "Not":
        return {"Not": external(condition["condition"])}
    if kind == "Expression":
        return {"Expression": condition["expression"]}
    if kind == "Rule":
        return {"Rule": condition["name"]}
    body = {k: v for k, v in condition.items() if k != "type"}
    return {kind: body["field"] if list(body) == ["field"] else body}
