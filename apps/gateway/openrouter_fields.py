"""OpenRouter's chat request fields beyond OpenAI's: `usage`, `reasoning`, `transforms`, `plugins`.

Validated here (the routing ones — `models`, `route`, `provider` — are `apps/providers/route_options.py`'s);
none of them is sent upstream as written (`pipeline.GATEWAY_FIELDS`, the adapters translate `reasoning`):
- `usage: {include: true}` — usage (with `cost` in USD) is in every answer anyway; in a stream it also asks for
  the final usage chunk, as `stream_options.include_usage` does;
- `reasoning: {effort, max_tokens, exclude, enabled}` — per protocol in `apps/providers/adapters/reasoning.py`;
- `transforms: ["middle-out"]` — `middle_out.py` trims the middle of the conversation to fit the context window;
- `plugins` (web search, file parsing, response healing…) — accepted and ignored: none of them is implemented.
"""

from __future__ import annotations

from apps.core.errors import InvalidRequest

TRANSFORMS = ("middle-out",)
EFFORTS = ("minimal", "low", "medium", "high", "none")
REASONING_KEYS = ("effort", "max_tokens", "exclude", "enabled")


def _invalid(message: str, param: str, code: str = "invalid_value") -> InvalidRequest:
    return InvalidRequest(message, param=param, code=code)


def _object(body: dict, name: str, keys: tuple[str, ...]) -> dict | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, dict):
        raise _invalid(f"Invalid type for '{name}': expected an object.", name, "invalid_type")
    for key in value:
        if key not in keys:
            raise _invalid(f"Unknown parameter: '{name}.{key}'. Valid keys: {', '.join(keys)}.", f"{name}.{key}",
                           "unknown_parameter")
    return value


def _bool(value: dict, name: str, key: str) -> None:
    if value.get(key) is not None and not isinstance(value[key], bool):
        raise _invalid(f"Invalid type for '{name}.{key}': expected a boolean.", f"{name}.{key}", "invalid_type")


def check_openrouter_fields(body: dict) -> None:
    usage = _object(body, "usage", ("include",))
    if usage is not None:
        _bool(usage, "usage", "include")
    reasoning = _object(body, "reasoning", REASONING_KEYS)
    if reasoning is not None:
        effort = reasoning.get("effort")
        if effort is not None and effort not in EFFORTS:
            raise _invalid(f"Invalid value for 'reasoning.effort': {effort!r}. Supported values: "
                           f"{', '.join(EFFORTS)}.", "reasoning.effort")
        limit = reasoning.get("max_tokens")
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
            raise _invalid("Invalid 'reasoning.max_tokens': expected a positive integer.", "reasoning.max_tokens",
                           "invalid_type")
        if effort is not None and limit is not None:
            raise _invalid("Give 'reasoning.effort' or 'reasoning.max_tokens', not both.", "reasoning")
        _bool(reasoning, "reasoning", "exclude")
        _bool(reasoning, "reasoning", "enabled")
    transforms = body.get("transforms")
    if transforms is not None:
        if not isinstance(transforms, list) or not all(isinstance(t, str) for t in transforms):
            raise _invalid("Invalid type for 'transforms': expected an array of strings.", "transforms",
                           "invalid_type")
        for index, name in enumerate(transforms):
            if name not in TRANSFORMS:
                raise _invalid(f"Invalid value for 'transforms[{index}]': {name!r}. Supported: "
                               f"{', '.join(TRANSFORMS)}.", f"transforms[{index}]")
    plugins = body.get("plugins")
    if plugins is not None and not (isinstance(plugins, list) and all(
            isinstance(p, dict) and isinstance(p.get("id"), str) for p in plugins)):
        raise _invalid("Invalid 'plugins': expected an array of objects with an 'id'.", "plugins", "invalid_type")
