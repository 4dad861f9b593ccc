"""The rules engine: conditions over a token's facts, compiled at save time, evaluated with an explanation.

Pure: the standard library, `cel` (CEL expressions) and `re2` (linear-time regexes) only — no Django, so the
workflow engine, triggers and the gateway's cost rules can all use it. See docs/architecture.md, "Rules engine".

    compiled = compile_condition(raw, named=named_rules)   # raises RuleError(problems) listing every problem
    result = evaluate(compiled, {"data": {...}, "metadata": {...}, "token": {...}})
    result.passed, result.explanation                      # bool, JSON-serialisable tree
    passes(compiled, facts)                                # the same verdict, no explanation (hot paths)
    mentions(compiled, "spend_today")                      # may it read that fact (to fetch it only if so)?
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from . import nodes
from .builtin_rules import BUILTIN_DESCRIPTIONS, BUILTIN_RULES
from .compiler import KINDS, Compiler
from .errors import RuleError

__all__ = ["BUILTIN_DESCRIPTIONS", "BUILTIN_RULES", "KINDS", "Compiled", "Evaluation", "RuleError",
           "compile_condition", "evaluate", "mentions", "passes"]


@dataclass(frozen=True)
class Compiled:
    """A condition ready to evaluate. `canonical` is its internally tagged JSON form (named rules stay
    references); `references` the named rules it reaches, directly or through other named rules."""

    root: nodes.Node = field(repr=False)
    references: frozenset[str] = frozenset()

    @property
    def canonical(self) -> dict:
        return self.root.canonical()


@dataclass(frozen=True)
class Evaluation:
    passed: bool
    explanation: dict


def compile_condition(raw, *, named: Mapping | None = None, as_rule: str | None = None) -> Compiled:
    """Compile `raw` (dict, list, rule name, or None / [] for "always true").

    `named` maps rule names to their raw conditions (`BUILTIN_RULES` when None; Django callers pass
    `apps.rules.selectors.named_rules_for(tenant=…)`). `as_rule` names the rule `raw` is the body of, so a
    reference back to it is reported as a cycle. Raises `RuleError` with every problem found.
    """
    compiler = Compiler(dict(BUILTIN_RULES if named is None else named), within=as_rule)
    root = compiler.compile(raw)
    if compiler.problems or root is None:
        raise RuleError(compiler.problems or ["$: the condition did not compile"])
    return Compiled(root=root, references=frozenset(compiler.references))


def evaluate(compiled: Compiled, facts: Mapping | None) -> Evaluation:
    """Evaluate against `facts` (`{"data": …, "metadata": …, **extra}`); never raises."""
    if facts is None:
        facts = {}
    if not isinstance(facts, Mapping):
        return Evaluation(False, {"kind": "Facts", "passed": False, "error": "facts must be an object"})
    try:
        passed, explanation = compiled.root.evaluate(nodes.EvalContext(dict(facts)))
    except RecursionError:
        return Evaluation(False, {"kind": "Facts", "passed": False, "error": "the facts nest too deeply"})
    return Evaluation(bool(passed), explanation)


def passes(compiled: Compiled, facts: Mapping | None) -> bool:
    """`evaluate(compiled, facts).passed` without building the explanation; never raises. For per-request
    paths such as the gateway's cost rules, which ask for the explanation only when someone wants it."""
    if facts is None:
        facts = {}
    if not isinstance(facts, Mapping):
        return False
    try:
        return bool(compiled.root.holds(nodes.EvalContext(facts if type(facts) is dict else dict(facts))))
    except RecursionError:
        return False


def mentions(compiled: Compiled, name: str) -> bool:
    """Whether the condition may read the top-level fact `name`: a field path starting with it, or an
    expression whose text contains it (conservative), including inside the named rules it references."""
    stack, seen = [compiled.root], set()
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, nodes.FieldNode) and node.segments[0] == name:
            return True
        if isinstance(node, nodes.Expression) and name in node.compiled.source:
            return True
        if isinstance(node, nodes.AllOf):
            stack.extend(node.children)
        elif isinstance(node, nodes.Negation):
            stack.append(node.child)
        elif isinstance(node, nodes.Reference):
            stack.append(node.body)
    return False
