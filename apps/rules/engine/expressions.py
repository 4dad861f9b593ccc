"""`Expression` conditions in CEL (the `common-expression-language` package, module `cel`).

The library compiles (`cel.compile` → `Program`) and executes (`Program.execute(variables)`) but offers no cost
limit and holds the GIL while it runs, so nothing can interrupt an evaluation. What can be expensive is bounded
before it starts instead:

- at compile time: the expression's length (`MAX_EXPRESSION_LENGTH`), the functions it calls (an allow-list of
  the CEL core: no Python callbacks), and how deeply comprehension macros (`all`, `exists`, `exists_one`,
  `map`, `filter`) nest (`MAX_COMPREHENSION_NESTING`);
- at evaluation time: the facts' size (`MAX_FACT_NODES` values in all) and an estimated cost. A collection an
  expression can iterate holds at most `n` elements, where `n` is the largest list or mapping in the facts (or
  the expression's literal elements), times one more than the number of `+` in the expression (concatenation
  is the only way a collection grows). A macro at nesting depth `d` costs `n**d`, times `n` again for `map` and
  `filter` (the library builds their result by repeated concatenation, quadratic in `n`). Over `COST_LIMIT` the
  expression is not run; the condition fails and says so.
"""

from __future__ import annotations

import re

import cel

MAX_EXPRESSION_LENGTH = 1000
MAX_COMPREHENSION_NESTING = 2
MAX_FACT_NODES = 50_000
COST_LIMIT = 200_000

ALLOWED_FUNCTIONS = frozenset({
    "size", "contains", "startsWith", "endsWith", "matches", "int", "uint", "double", "string", "bytes",
    "timestamp", "duration", "type", "dyn", "getFullYear", "getMonth", "getDayOfYear", "getDayOfMonth", "getDate",
    "getDayOfWeek", "getHours", "getMinutes", "getSeconds", "getMilliseconds",
})
_LINEAR_MACROS = {"all", "exists", "exists_one"}
_QUADRATIC_MACROS = {"map", "filter"}
_MACRO_CALL = re.compile(r"\.\s*(all|exists_one|exists|map|filter)\s*\(")
_STRING = re.compile(r"""(?:[rR][bB]?|[bB][rR]?)?('''.*?'''|\"\"\".*?\"\"\"|'(?:\\.|[^'\\\n])*'|"(?:\\.|[^"\\\n])*")""",
                     re.S)
_COMMENT = re.compile(r"//[^\n]*")


class CelExpression:
    """A compiled expression and what its cost estimate needs."""

    def __init__(self, source: str, program, macros: list[tuple[str, int]], pluses: int, literal_items: int):
        self.source = source
        self.program = program
        self.macros = macros  # (macro name, nesting depth from 1)
        self.pluses = pluses
        self.literal_items = literal_items
        # The top-level names it reads: only these are handed to the library, which converts every variable
        # it is given (~3 µs each) whether the expression reads it or not. None: hand over everything.
        self.variables = _referenced(program)

    def estimated_cost(self, largest_collection: int) -> int:
        if not self.macros:
            return 0
        n = max(largest_collection, self.literal_items, 1) * (self.pluses + 1)
        return sum(n ** depth * (n if name in _QUADRATIC_MACROS else 1) for name, depth in self.macros)


def compile_expression(source) -> tuple[CelExpression | None, list[str]]:
    """The compiled expression, or None and the problems (each quoting the expression)."""
    if not isinstance(source, str):
        return None, [f"an Expression must be a CEL string, not {type(source).__name__}"]
    if not source.strip():
        return None, ["an Expression must not be empty"]
    if len(source) > MAX_EXPRESSION_LENGTH:
        return None, [f"expression is {len(source)} characters, more than the {MAX_EXPRESSION_LENGTH} allowed"]
    try:
        program = cel.compile(source)
    except (ValueError, RuntimeError, TypeError) as exc:
        return None, [f"CEL expression {source!r} does not compile: {_first_lines(str(exc))}"]
    problems = []
    unknown = sorted(name for name in program.functions() if not _is_operator(name) and name not in ALLOWED_FUNCTIONS)
    if unknown:
        problems.append(f"CEL expression {source!r} calls {', '.join(unknown)}, not among the available functions "
                        f"({', '.join(sorted(ALLOWED_FUNCTIONS))})")
    code = _COMMENT.sub(" ", _STRING.sub("''", source))
    macros = _macro_depths(code)
    deepest = max((depth for _, depth in macros), default=0)
    if deepest > MAX_COMPREHENSION_NESTING:
        problems.append(f"CEL expression {source!r} nests comprehensions (all/exists/map/filter) {deepest} deep, "
                        f"more than the {MAX_COMPREHENSION_NESTING} allowed")
    if problems:
        return None, problems
    return CelExpression(source, program, macros, code.count("+"), code.count(",") + 1), []


def run(expression: CelExpression, variables: dict, largest_collection: int):
    """The expression's value; raises `CostExceeded` before running when the estimate is over the limit, and
    whatever the library raises for a runtime error (the caller turns it into an explanation)."""
    cost = expression.estimated_cost(largest_collection)
    if cost > COST_LIMIT:
        raise CostExceeded(f"estimated cost {cost} is over the limit of {COST_LIMIT} (comprehensions over "
                           f"collections of up to {largest_collection} elements); the expression was not run")
    if expression.variables is not None:
        variables = {name: variables[name] for name in expression.variables if name in variables}
    return expression.program.execute(variables)


def _referenced(program) -> frozenset[str] | None:
    try:
        return frozenset(program.variables())
    except Exception:  # noqa: BLE001 — a library without the introspection: pass every fact, as before
        return None


class CostExceeded(Exception):
    pass


class FactsTooLarge(Exception):
    pass


def measure_facts(facts: dict) -> int:
    """The largest list or mapping in `facts`; raises `FactsTooLarge` past `MAX_FACT_NODES` values."""
    largest, seen, stack = 0, 0, [facts]
    while stack:
        value = stack.pop()
        seen += 1
        if seen > MAX_FACT_NODES:
            raise FactsTooLarge(f"the facts hold more than {MAX_FACT_NODES} values, too many for an expression")
        if isinstance(value, dict):
            largest = max(largest, len(value))
            stack.extend(value.values())
        elif isinstance(value, (list, tuple)):
            largest = max(largest, len(value))
            stack.extend(value)
    return largest


def _macro_depths(code: str) -> list[tuple[str, int]]:
    """Each comprehension macro with its nesting depth, from a scan of parentheses (strings already blanked)."""
    macros, stack = [], []
    starts = {match.end() - 1: match.group(1) for match in _MACRO_CALL.finditer(code)}
    for position, char in enumerate(code):
        if char == "(":
            name = starts.get(position)
            if name:
                macros.append((name, sum(1 for entry in stack if entry) + 1))
            stack.append(name)
        elif char == ")" and stack:
            stack.pop()
    return macros


def _is_operator(name: str) -> bool:
    return name.startswith(("_", "!_", "-_", "@"))


def _first_lines(message: str) -> str:
    return " ".join(line.strip() for line in message.splitlines()[:3] if line.strip())
