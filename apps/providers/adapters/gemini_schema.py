"""JSON Schema → Gemini's Schema (an OpenAPI 3.0 subset) for `response_format: json_schema`.

Tool parameters are trimmed quietly (`gemini.sanitize_schema`: a tool schema is a hint), but a response schema
is a contract the caller relies on, so a keyword Gemini cannot enforce is refused with a 400 naming every one
of them and where it is, instead of an answer that silently ignores it. Translated: local `$ref`s (inlined from
`$defs`/`definitions`), `type: [x, "null"]` (→ `nullable`), `const` (→ a one-value `enum`), `oneOf` (→ `anyOf`).
Dropped as meaningless for generation: `$schema`, `$id`, `$comment`, `examples`, `additionalProperties: false`
(Gemini never adds properties the schema does not list) and `strict`/`name` of the json_schema wrapper.
"""

from __future__ import annotations

from .base import UpstreamError

KEPT = {"type", "format", "title", "description", "nullable", "enum", "items", "minItems", "maxItems",
        "properties", "required", "minProperties", "maxProperties", "minLength", "maxLength", "pattern",
        "minimum", "maximum", "anyOf", "propertyOrdering", "default", "example"}
IGNORED = {"$schema", "$id", "$comment", "examples", "$defs", "definitions"}
MAX_DEPTH = 32


def response_schema(schema: dict) -> dict:
    problems: list[str] = []
    out = _convert(schema, {}, "$", problems, 0)
    if problems:
        raise UpstreamError(
            "Gemini cannot enforce these JSON Schema keywords of response_format.json_schema.schema: "
            + "; ".join(problems) + ". Remove them or route to a provider with full JSON Schema support.",
            status=400, type="invalid_request_error", code="unsupported_schema_keyword",
            param="response_format.json_schema.schema")
    return out


def _convert(schema, defs: dict, where: str, problems: list[str], depth: int):
    if not isinstance(schema, dict):
        problems.append(f"{where} (not a schema object)")
        return {}
    if depth > MAX_DEPTH:
        problems.append(f"{where} (nested deeper than {MAX_DEPTH})")
        return {}
    defs = {**defs, **(schema.get("$defs") or {}), **(schema.get("definitions") or {})}
    ref = schema.get("$ref")
    if ref is not None:
        name = ref.rsplit("/", 1)[-1] if isinstance(ref, str) and ref.startswith("#/") else None
        if name not in defs:
            problems.append(f"{where}.$ref ({ref!r}: only local references to $defs are supported)")
            return {}
        schema = {**defs[name], **{k: v for k, v in schema.items() if k != "$ref"}}
    out: dict = {}
    for key, value in schema.items():
        if key == "type" and isinstance(value, list):
            kinds = [t for t in value if t != "null"]
            if len(kinds) != 1:
                problems.append(f"{where}.type ({value!r}: one type, optionally with null)")
                continue
            out["type"] = kinds[0]
            if "null" in value:
                out["nullable"] = True
        elif key == "const":
            out["enum"] = [value]
        elif key in ("oneOf", "anyOf"):
            if not isinstance(value, list):
                problems.append(f"{where}.{key} (not an array)")
                continue
            out["anyOf"] = [_convert(s, defs, f"{where}.{key}[{i}]", problems, depth + 1)
                            for i, s in enumerate(value)]
        elif key == "properties" and isinstance(value, dict):
            out["properties"] = {name: _convert(s, defs, f"{where}.properties.{name}", problems, depth + 1)
                                 for name, s in value.items()}
        elif key == "items":
            out["items"] = _convert(value, defs, f"{where}.items", problems, depth + 1)
        elif key == "additionalProperties":
            if value is not False:
                problems.append(f"{where}.additionalProperties (only false is supported)")
        elif key in KEPT:
            out[key] = value
        elif key not in IGNORED:
            problems.append(f"{where}.{key}")
    return out
