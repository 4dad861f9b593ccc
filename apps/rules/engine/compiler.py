"""Raw JSON conditions → compiled nodes, collecting every problem with its path into the condition.

Accepted shapes (see docs/architecture.md, "Rules engine"):
- internally tagged, the canonical form the engine exports: `{"type": "FieldEquals", "field": "status",
  "value": "approved"}`, `{"type": "And", "conditions": [...]}`, `{"type": "Not", "condition": c}`,
  `{"type": "Expression", "expression": "data.priority > 5"}`, `{"type": "Rule", "name": "has_content"}`;
- externally tagged, the original engine's form: `{"FieldEquals": {"field": ..., "value": ...}}`,
  `{"And": [c1, c2]}`, `{"Not": c}`, `{"Expression": "..."}`, `{"FieldExists": "status"}`, `{"Rule": "name"}`;
- a list: all must hold; a string: a reference to a named rule; None or []: always true.
"""

from __future__ import annotations

import re2

from . import expressions, fields, nodes, values

MAX_DEPTH = 32
MAX_NODES = 1000
MAX_PATTERN_LENGTH = 500
MAX_LIST_VALUES = 1000
_RE2_MAX_MEM = 8 << 20


def _present(seen, _):
    return seen is not fields.MISSING


def _empty(seen, _):
    return values.is_empty(seen)


def _eq(seen, expected):
    return seen is not fields.MISSING and values.equal(seen, expected)


def _ne(seen, expected):
    return seen is not fields.MISSING and not values.equal(seen, expected)


def _ordered(accept):
    def test(seen, expected):
        return seen is not fields.MISSING and accept(values.compare(seen, expected))
    return test


def _in(seen, options):
    return seen is not fields.MISSING and any(values.equal(seen, option) for option in options)


def _not_in(seen, options):
    return seen is not fields.MISSING and not any(values.equal(seen, option) for option in options)


def _contains(seen, expected):
    return seen is not fields.MISSING and values.contains(seen, expected)


def _affix(method: str):
    def test(seen, expected):
        if seen is fields.MISSING:
            return False
        if not isinstance(seen, str):
            raise values.Incomparable(f"{method} needs a string; the field holds a {values.type_name(seen)}")
        return getattr(seen, method)(expected)
    return test


# kind → (node class, test, what the operand must be: None, "any", "ordered", "string", "list", "pattern")
FIELD_OPERATORS = {
    "FieldExists": (nodes.PresenceNode, _present, None),
    "FieldIsEmpty": (nodes.PresenceNode, _empty, None),
    "FieldEquals": (nodes.FieldNode, _eq, "any"),
    "FieldNotEquals": (nodes.FieldNode, _ne, "any"),
    "FieldGreaterThan": (nodes.FieldNode, _ordered(lambda c: c > 0), "ordered"),
    "FieldGreaterThanOrEqual": (nodes.FieldNode, _ordered(lambda c: c >= 0), "ordered"),
    "FieldLessThan": (nodes.FieldNode, _ordered(lambda c: c < 0), "ordered"),
    "FieldLessThanOrEqual": (nodes.FieldNode, _ordered(lambda c: c <= 0), "ordered"),
    "FieldIn": (nodes.InNode, _in, "list"),
    "FieldNotIn": (nodes.InNode, _not_in, "list"),
    "FieldContains": (nodes.FieldNode, _contains, "any"),
    "FieldStartsWith": (nodes.FieldNode, _affix("startswith"), "string"),
    "FieldEndsWith": (nodes.FieldNode, _affix("endswith"), "string"),
    "FieldMatches": (nodes.MatchNode, None, "pattern"),
}
JUNCTIONS = {"And": nodes.AllOf, "Or": nodes.AnyOf}
KINDS = (*FIELD_OPERATORS, "And", "Or", "Not", "Expression", "Rule")


class Compiler:
    """One compilation: the named rules it may reference, the problems found, the names it reached."""

    def __init__(self, named: dict, *, within: str | None = None):
        """`within` names the rule being compiled, so a reference back to it is a cycle."""
        self.named = named
        self.problems: list[str] = []
        self.references: set[str] = set()
        self._compiled: dict[str, nodes.Node | None] = {}
        self._stack: list[str] = [within] if within else []
        self._count = 0

    def problem(self, path: str, message: str) -> None:
        self.problems.append(f"{path}: {message}")

    def compile(self, raw, path: str = "$", depth: int = 0) -> nodes.Node | None:
        if depth > MAX_DEPTH:
            self.problem(path, f"conditions nest more than {MAX_DEPTH} deep")
            return None
        self._count += 1
        if self._count == MAX_NODES + 1:
            self.problem(path, f"the condition has more than {MAX_NODES} parts")
        if self._count > MAX_NODES:
            return None
        if raw is None:
            return nodes.AllOf([])
        if isinstance(raw, str):
            return self.reference(raw, path, depth)
        if isinstance(raw, list):
            return self.junction("And", raw, path, depth)
        if not isinstance(raw, dict):
            self.problem(path, f"a condition is an object, a list or a rule name, not {values.type_name(raw)}")
            return None
        if "type" in raw:
            return self.internal(raw, path, depth)
        if len(raw) != 1:
            self.problem(path, "a condition object has one key naming its kind (externally tagged) or a 'type' "
                               f"key (internally tagged); got keys {sorted(map(str, raw))}")
            return None
        ((kind, body),) = raw.items()
        if kind not in KINDS:
            self.problem(path, _unknown_kind(kind))
            return None
        return self.external(kind, body, f"{path}.{kind}", depth)

    def internal(self, raw: dict, path: str, depth: int):
        kind = raw["type"]
        if not isinstance(kind, str) or kind not in KINDS:
            self.problem(f"{path}.type", _unknown_kind(kind))
            return None
        allowed = {"type", *_params(kind)}
        extra = sorted(str(key) for key in raw if key not in allowed)
        if extra:
            self.problem(path, f"{kind} takes {sorted(allowed - {'type'})}; unknown keys {extra}")
        return self.build(kind, {k: v for k, v in raw.items() if k != "type"}, path, depth, prefix=path)

    def external(self, kind: str, body, path: str, depth: int):
        params = _params(kind)
        if kind in JUNCTIONS and isinstance(body, list):
            return self.junction(kind, body, path, depth)
        if kind == "Not" and not (isinstance(body, dict) and set(body) == {"condition"}):
            return self.negation(body, path, depth)
        if len(params) == 1 and not isinstance(body, dict):
            return self.build(kind, {params[0]: body}, path, depth, prefix=None)
        if not isinstance(body, dict):
            self.problem(path, f"{kind} takes an object with {list(params)}, not {values.type_name(body)}")
            return None
        extra = sorted(str(key) for key in body if key not in params)
        if extra:
            self.problem(path, f"{kind} takes {list(params)}; unknown keys {extra}")
        return self.build(kind, body, path, depth, prefix=path)

    def build(self, kind: str, params: dict, path: str, depth: int, *, prefix: str | None):
        """`prefix` is the path of the object holding the parameters (None when the body was the parameter)."""
        def at(name):
            return f"{prefix}.{name}" if prefix is not None else path

        missing = [name for name in _params(kind) if name not in params]
        if missing:
            self.problem(path, f"{kind} needs {missing}")
            return None
        if kind in JUNCTIONS:
            return self.junction(kind, params["conditions"], at("conditions"), depth)
        if kind == "Not":
            return self.negation(params["condition"], at("condition"), depth)
        if kind == "Rule":
            return self.reference(params["name"], at("name"), depth)
        if kind == "Expression":
            compiled, problems = expressions.compile_expression(params["expression"])
            for problem in problems:
                self.problem(at("expression"), problem)
            return nodes.Expression(compiled) if compiled else None
        return self.field_operator(kind, params, at)

    def field_operator(self, kind: str, params: dict, at):
        node_class, test, operand_rule = FIELD_OPERATORS[kind]
        field = params["field"]
        ok = True
        for problem in fields.path_problems(field):
            self.problem(at("field"), problem)
            ok = False
        if operand_rule is None:
            return node_class(kind, field, None, test) if ok else None
        key = node_class.operand_key
        operand = params[key]
        problem = _operand_problem(kind, operand_rule, operand)
        if problem:
            self.problem(at(key), problem)
            return None
        if operand_rule == "pattern":
            try:
                pattern = re2.compile(operand, _re2_options())
            except re2.error as exc:
                self.problem(at(key), f"regex {operand!r} is not valid RE2 syntax: {_re2_message(exc)}")
                return None
            return node_class(kind, field, operand, _matcher(pattern), pattern=pattern) if ok else None
        return node_class(kind, field, operand, test) if ok else None

    def junction(self, kind: str, raw, path: str, depth: int):
        if not isinstance(raw, list):
            self.problem(path, f"{kind} takes a list of conditions, not {values.type_name(raw)}")
            return None
        children = [self.compile(child, f"{path}[{index}]", depth + 1) for index, child in enumerate(raw)]
        return None if any(child is None for child in children) else JUNCTIONS[kind](children)

    def negation(self, raw, path: str, depth: int):
        child = self.compile(raw, path, depth + 1)
        return nodes.Negation(child) if child is not None else None

    def reference(self, name, path: str, depth: int):
        if not isinstance(name, str) or not name:
            self.problem(path, "a rule reference is a non-empty name")
            return None
        if name in self._stack:
            cycle = " → ".join([*self._stack[self._stack.index(name):], name])
            self.problem(path, f"named rules form a cycle: {cycle}")
            return None
        if name not in self.named:
            self.problem(path, f"unknown named rule {name!r}")
            return None
        self.references.add(name)
        if name not in self._compiled:
            self._stack.append(name)
            before = len(self.problems)
            body = self.compile(self.named[name], "$", depth + 1)
            self._stack.pop()
            # A problem inside the rule's own body is reported at the reference, naming the rule.
            self.problems[before:] = [_inside(path, name, problem) for problem in self.problems[before:]]
            self._compiled[name] = body
        body = self._compiled[name]
        return nodes.Reference(name, body) if body is not None else None


def _inside(path: str, name: str, problem: str) -> str:
    return f"{path} → rule {name!r} at {problem}"


def _params(kind: str) -> tuple[str, ...]:
    if kind in JUNCTIONS:
        return ("conditions",)
    if kind == "Not":
        return ("condition",)
    if kind == "Rule":
        return ("name",)
    if kind == "Expression":
        return ("expression",)
    node_class, _, operand_rule = FIELD_OPERATORS[kind]
    return ("field",) if operand_rule is None else ("field", node_class.operand_key)


def _unknown_kind(kind) -> str:
    return f"unknown condition kind {kind!r}; known kinds: {', '.join(KINDS)}"


def _operand_problem(kind: str, rule: str, operand) -> str | None:
    if rule == "any":
        return None if _is_json(operand) else f"{kind} compares with JSON values, not {type(operand).__name__}"
    if rule == "ordered":
        if values.is_number(operand) and values.as_decimal(operand) is not None or isinstance(operand, str):
            return None
        return f"{kind} compares with a finite number or a string, not {values.type_name(operand)}"
    if rule == "string":
        return None if isinstance(operand, str) else f"{kind} takes a string, not {values.type_name(operand)}"
    if rule == "list":
        if not isinstance(operand, list):
            return f"{kind} takes a list of values, not {values.type_name(operand)}"
        if len(operand) > MAX_LIST_VALUES:
            return f"{kind} takes at most {MAX_LIST_VALUES} values, got {len(operand)}"
        return None if _is_json(operand) else f"{kind} takes JSON values"
    if rule == "pattern":
        if not isinstance(operand, str):
            return f"{kind} takes a regex string, not {values.type_name(operand)}"
        if len(operand) > MAX_PATTERN_LENGTH:
            return f"regex is {len(operand)} characters, more than the {MAX_PATTERN_LENGTH} allowed"
    return None


def _is_json(value, depth: int = 0) -> bool:
    if depth > MAX_DEPTH:
        return False
    if value is None or isinstance(value, (bool, str)) or values.is_number(value):
        return True
    if isinstance(value, list):
        return all(_is_json(item, depth + 1) for item in value)
    if isinstance(value, dict):
        return all(isinstance(key, str) and _is_json(item, depth + 1) for key, item in value.items())
    return False


def _re2_options():
    options = re2.Options()
    options.max_mem = _RE2_MAX_MEM
    options.log_errors = False
    return options


def _matcher(pattern):
    def test(seen, _):
        if seen is fields.MISSING:
            return False
        if not isinstance(seen, str):
            raise values.Incomparable(f"a regex matches strings; the field holds a {values.type_name(seen)}")
        return pattern.search(seen) is not None
    return test


def _re2_message(exc) -> str:
    message = exc.args[0] if exc.args else exc
    return message.decode("utf-8", "replace") if isinstance(message, bytes) else str(message)
