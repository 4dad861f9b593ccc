"""Prompt templates with the original's single-brace placeholders, rendered in jinja2's sandbox.

`{topic}`, `{content}`, `{token_id}`, `{data.outline}`, `{items.0}` name values; `{{` and `}}` are literal braces;
any other brace is literal text. A template is translated once into a sandboxed jinja2 template in which literal
text is data (never template syntax) and every placeholder is a lookup through dicts and lists only: the
environment has no attribute access to Python objects, names starting with `_` are refused when the template
is checked, and a missing variable is an error naming the placeholder, never an empty string. Dicts and lists
render as JSON. Only plain JSON data (dict, list, str, numbers, bool, None) is rendered.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache

from jinja2 import StrictUndefined, TemplateError
from jinja2.sandbox import SandboxedEnvironment

from apps.core.errors import InvalidRequest

_TOKEN = re.compile(r"\{\{|\}\}|\{([^{}]*)\}")
_PATH = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_]+)*")
MAX_TEMPLATE = 100_000
_MISSING = object()


class TemplateInvalid(InvalidRequest):
    code = "template_invalid"


class TemplateVariableMissing(InvalidRequest):
    code = "template_variable_missing"


def _json_text(value) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, default=str)


class _DataOnlyEnvironment(SandboxedEnvironment):
    """`a.b` and `a[b]` look into dicts and lists, nothing else (no methods, no attributes)."""

    def getitem(self, obj, argument):
        if isinstance(obj, dict) and isinstance(argument, str) and argument in obj:
            return obj[argument]
        if isinstance(obj, list) and isinstance(argument, int) and not isinstance(argument, bool) \
                and 0 <= argument < len(obj):
            return obj[argument]
        return self.undefined(obj=obj, name=argument)

    def getattr(self, obj, attribute):
        return self.getitem(obj, attribute)

    def call(__self, __context, __obj, *args, **kwargs):  # noqa: N805 - jinja2's signature
        raise TemplateInvalid("Templates cannot call anything.")


_ENV = _DataOnlyEnvironment(undefined=StrictUndefined, autoescape=False, finalize=_json_text)


class Template:
    """A checked template: its placeholders (dotted paths) and the sandboxed jinja2 template rendering it."""

    def __init__(self, source: str):
        self.source = source
        self.literals: list[str] = []
        self.placeholders: list[str] = []
        parts, text = [], []
        pos = 0
        for match in _TOKEN.finditer(source):
            text.append(source[pos:match.start()])
            pos = match.end()
            token = match.group(0)
            if token in ("{{", "}}"):
                text.append(token[0])
                continue
            name = match.group(1).strip()
            if not _PATH.fullmatch(name):
                text.append(token)  # JSON examples and other braces stay literal
                continue
            if any(segment.startswith("_") for segment in name.split(".")):
                raise TemplateInvalid(f"Template placeholder {{{name}}} is not allowed: names starting with '_' "
                                      "are reserved.")
            parts.append(self._literal("".join(text)))
            text = []
            self.placeholders.append(name)
            lookup = "v" + "".join(f"[{int(s)}]" if s.isdigit() else f"[{s!r}]" for s in name.split("."))
            parts.append("{{ " + lookup + " }}")
        text.append(source[pos:])
        parts.append(self._literal("".join(text)))
        try:
            self._template = _ENV.from_string("".join(parts))
        except TemplateError as exc:  # cannot happen for the source we generate; said plainly if it does
            raise TemplateInvalid(f"Template could not be compiled: {exc}") from None

    def _literal(self, text: str) -> str:
        if not text:
            return ""
        self.literals.append(text)
        return f"{{{{ l[{len(self.literals) - 1}] }}}}"

    def render(self, variables: dict) -> str:
        for name in self.placeholders:
            if lookup(variables, name) is _MISSING:
                raise TemplateVariableMissing(
                    f"Template variable {{{name}}} is missing: the input has no {name!r}.", param=name)
        try:
            return self._template.render(v=variables, l=self.literals)
        except TemplateError as exc:
            raise TemplateVariableMissing(f"Template could not be rendered: {exc}") from None


def lookup(variables, path: str):
    """The value at a dotted path through dicts and lists, or _MISSING."""
    value = variables
    for segment in path.split("."):
        if isinstance(value, dict) and segment in value:
            value = value[segment]
        elif isinstance(value, list) and segment.isdigit() and int(segment) < len(value):
            value = value[int(segment)]
        else:
            return _MISSING
    return value


def missing(value) -> bool:
    return value is _MISSING


@lru_cache(maxsize=1024)
def compile_template(source: str) -> Template:
    if not isinstance(source, str):
        raise TemplateInvalid("A template must be a string.")
    if len(source) > MAX_TEMPLATE:
        raise TemplateInvalid(f"A template is at most {MAX_TEMPLATE} characters.")
    return Template(source)


def render(source: str, variables: dict) -> str:
    """Render `source` over plain JSON `variables`; raises TemplateInvalid / TemplateVariableMissing."""
    return compile_template(source).render(variables)
