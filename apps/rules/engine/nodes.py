"""Compiled conditions: one node class per kind, each evaluating itself against the facts and explaining how.

Every node answers `evaluate(ctx) -> (passed, explanation)` and never raises: a problem met while evaluating
(an incomparable value, a CEL runtime error) fails that node and is written into its explanation.
`canonical()` gives the internally tagged JSON form the engine exports. `holds(ctx) -> bool` gives the same
verdict without building the explanation, for hot paths (the gateway's cost rules) that only need the answer.
"""

from __future__ import annotations

from . import expressions, fields, values


class EvalContext:
    """The facts of one evaluation, and what the CEL bound needs, measured once and only if an expression runs."""

    __slots__ = ("facts", "_cel", "_cel_error")

    def __init__(self, facts: dict):
        self.facts = facts
        self._cel: tuple[dict, int] | None = None
        self._cel_error: str | None = None

    def cel_variables(self) -> tuple[dict, int]:
        if self._cel is None and self._cel_error is None:
            variables = dict(self.facts)
            variables.setdefault("data", {})
            variables.setdefault("metadata", {})
            try:
                self._cel = variables, expressions.measure_facts(variables)
            except expressions.FactsTooLarge as exc:
                self._cel_error = str(exc)
        if self._cel_error is not None:
            raise expressions.FactsTooLarge(self._cel_error)
        return self._cel


class Node:
    kind = ""

    def evaluate(self, ctx: EvalContext) -> tuple[bool, dict]:
        raise NotImplementedError

    def holds(self, ctx: EvalContext) -> bool:
        """`evaluate(ctx)[0]`, without the explanation."""
        return self.evaluate(ctx)[0]

    def canonical(self) -> dict:
        raise NotImplementedError

    def skipped(self) -> dict:
        """The explanation of a node short-circuiting left unevaluated."""
        return {"kind": self.kind, **self.describe(), "passed": None, "skipped": True}

    def describe(self) -> dict:
        return {}


class FieldNode(Node):
    """A test of the value at a field path against an expected value (`operand`)."""

    operand_key = "value"  # the name of the expected value in the JSON form

    def __init__(self, kind: str, field: str, operand=None, test=None, *, pattern=None):
        self.kind = kind
        self.field = field
        self.operand = operand
        self.test = test  # (seen, operand) -> bool, may raise values.Incomparable
        self.pattern = pattern  # a compiled RE2 for FieldMatches
        self.segments = tuple(field.split("."))

    def evaluate(self, ctx):
        seen, where = fields.resolve(ctx.facts, self.field)
        explanation = {"kind": self.kind, "field": self.field, "resolved": where}
        if self.operand_key is not None:
            explanation["expected"] = values.render(self.operand)
        explanation["found"] = seen is not fields.MISSING
        explanation["seen"] = values.render(seen)
        try:
            passed = bool(self.test(seen, self.operand))
        except values.Incomparable as exc:
            passed, explanation["reason"] = False, str(exc)
        except (ArithmeticError, TypeError, ValueError) as exc:  # an odd Python value in the facts (sNaN, …)
            passed, explanation["reason"] = False, f"cannot test this value: {type(exc).__name__}"
        else:
            if not passed and seen is fields.MISSING and self.kind not in ("FieldExists", "FieldIsEmpty"):
                explanation["reason"] = f"field {self.field!r} is missing"
        explanation["passed"] = passed
        return passed, explanation

    def holds(self, ctx):
        try:
            return bool(self.test(fields.value_at(ctx.facts, self.segments), self.operand))
        except (values.Incomparable, ArithmeticError, TypeError, ValueError):
            return False

    def describe(self):
        if self.operand_key is None:
            return {"field": self.field}
        return {"field": self.field, "expected": values.render(self.operand)}

    def canonical(self):
        body = {"type": self.kind, "field": self.field}
        if self.operand_key is not None:
            body[self.operand_key] = self.operand
        return body


class InNode(FieldNode):
    operand_key = "values"

    def __init__(self, kind: str, field: str, operand=None, test=None, *, pattern=None):
        super().__init__(kind, field, operand, test, pattern=pattern)
        # Membership of a string among strings is set membership: the hot path's shortcut.
        only_strings = isinstance(operand, list) and all(type(option) is str for option in operand)
        self.strings = frozenset(operand) if only_strings else None
        self.negated = kind == "FieldNotIn"

    def holds(self, ctx):
        if self.strings is not None:
            seen = fields.value_at(ctx.facts, self.segments)
            if type(seen) is str:
                return (seen in self.strings) is not self.negated
        return super().holds(ctx)


class MatchNode(FieldNode):
    operand_key = "pattern"


class PresenceNode(FieldNode):
    operand_key = None


class AllOf(Node):
    kind = "And"

    def __init__(self, children: list[Node]):
        self.children = children

    def evaluate(self, ctx):
        return _junction(self, ctx, stop_on=False)

    def holds(self, ctx):
        for child in self.children:  # noqa: SIM110 — a plain loop: no generator per call on hot paths
            if not child.holds(ctx):
                return False
        return True

    def canonical(self):
        return {"type": self.kind, "conditions": [child.canonical() for child in self.children]}


class AnyOf(AllOf):
    kind = "Or"

    def evaluate(self, ctx):
        return _junction(self, ctx, stop_on=True)

    def holds(self, ctx):
        for child in self.children:  # noqa: SIM110 — as AllOf.holds
            if child.holds(ctx):
                return True
        return False


def _junction(node: AllOf, ctx, *, stop_on: bool) -> tuple[bool, dict]:
    """And stops at the first failure, Or at the first success; the rest are listed as skipped."""
    explained, result = [], not stop_on
    for index, child in enumerate(node.children):
        passed, explanation = child.evaluate(ctx)
        explained.append(explanation)
        if passed is stop_on:
            result = stop_on
            explained.extend(rest.skipped() for rest in node.children[index + 1:])
            break
    return result, {"kind": node.kind, "passed": result, "children": explained}


class Negation(Node):
    kind = "Not"

    def __init__(self, child: Node):
        self.child = child

    def evaluate(self, ctx):
        passed, explanation = self.child.evaluate(ctx)
        return not passed, {"kind": self.kind, "passed": not passed, "children": [explanation]}

    def holds(self, ctx):
        return not self.child.holds(ctx)

    def canonical(self):
        return {"type": self.kind, "condition": self.child.canonical()}


class Reference(Node):
    """A named rule; its compiled body is shared by every reference to it."""

    kind = "Rule"

    def __init__(self, name: str, body: Node):
        self.name = name
        self.body = body

    def evaluate(self, ctx):
        passed, explanation = self.body.evaluate(ctx)
        return passed, {"kind": self.kind, "name": self.name, "passed": passed, "children": [explanation]}

    def holds(self, ctx):
        return self.body.holds(ctx)

    def describe(self):
        return {"name": self.name}

    def canonical(self):
        return {"type": self.kind, "name": self.name}


class Expression(Node):
    kind = "Expression"

    def __init__(self, compiled: expressions.CelExpression):
        self.compiled = compiled

    def evaluate(self, ctx):
        explanation = {"kind": self.kind, "expression": self.compiled.source}
        try:
            variables, largest = ctx.cel_variables()
            value = expressions.run(self.compiled, variables, largest)
        except (expressions.CostExceeded, expressions.FactsTooLarge) as exc:
            return _failed(explanation, str(exc))
        except KeyError as exc:
            return _failed(explanation, f"no such key: {exc}")
        except Exception as exc:  # noqa: BLE001 — any runtime error of the library fails this condition only
            return _failed(explanation, f"{type(exc).__name__}: {exc}")
        explanation["value"] = values.render(value)
        passed = value is True
        if not isinstance(value, bool):
            explanation["reason"] = f"the expression gave a {values.type_name(value)}, not a boolean"
        explanation["passed"] = passed
        return passed, explanation

    def holds(self, ctx):
        try:
            variables, largest = ctx.cel_variables()
            return expressions.run(self.compiled, variables, largest) is True
        except Exception:  # noqa: BLE001 — as in evaluate: any error fails this condition only
            return False

    def describe(self):
        return {"expression": self.compiled.source}

    def canonical(self):
        return {"type": self.kind, "expression": self.compiled.source}


def _failed(explanation: dict, error: str) -> tuple[bool, dict]:
    explanation.update(error=error, passed=False)
    return False, explanation
