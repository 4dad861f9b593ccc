"""What makes a function, trigger or chain valid, checked by the services (so the API and the admin agree)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter
from django.conf import settings
from django.core.exceptions import ValidationError

from apps.rules.engine import RuleError, compile_condition
from apps.rules.selectors import named_rules_for

from .mapping import mapping_problems
from .models import ERROR_CODES, ChainOn, TriggerKind
from .runtimes import RUNTIMES
from .schemas import schema_problems

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _.\-]{0,119}$")
_TRIGGER_CONFIG = {
    TriggerKind.TOKEN_CREATED: {"place"},
    TriggerKind.TOKEN_TRANSITIONED: {"from_place", "to_place", "transition"},
    TriggerKind.TOKEN_UPDATED: set(),
    TriggerKind.INSTANCE_COMPLETED: set(),
    TriggerKind.WORKFLOW_SAVED: set(),
    TriggerKind.FUNCTION_COMPLETED: {"function_id", "success"},
    TriggerKind.CUSTOM: {"name"},
    TriggerKind.SCHEDULE: {"cron", "timezone"},
}


def raise_problems(problems: dict[str, list[str]]) -> None:
    problems = {k: v for k, v in problems.items() if v}
    if problems:
        raise ValidationError(problems)


def function_problems(function) -> dict[str, list[str]]:
    problems: dict[str, list[str]] = {}
    if not NAME.match(function.name or ""):
        problems["name"] = ["Use 1–120 letters, digits, spaces, `_`, `-` or `.`, starting with a letter or digit."]
    runtime = RUNTIMES.get(function.runtime)
    if runtime is None:
        problems["runtime"] = [f"Must be one of {', '.join(RUNTIMES)}."]
    elif not isinstance(function.config, dict):
        problems["config"] = ["Must be an object."]
    else:
        problems["config"] = runtime.config_problems(function.config)
    problems["input_schema"] = schema_problems(function.input_schema)
    problems["output_schema"] = schema_problems(function.output_schema)
    if not 0 < function.timeout_seconds <= settings.FUNCTIONS_MAX_TIMEOUT_SECONDS:
        problems["timeout_seconds"] = [f"Must be more than 0 and at most {settings.FUNCTIONS_MAX_TIMEOUT_SECONDS:g}."]
    if not 1 <= function.max_attempts <= settings.FUNCTIONS_MAX_ATTEMPTS:
        problems["max_attempts"] = [f"Must be from 1 to {settings.FUNCTIONS_MAX_ATTEMPTS}."]
    if function.retry_delay_seconds < 0 or function.retry_max_delay_seconds < 0:
        problems["retry_delay_seconds"] = ["Delays must not be negative."]
    retry_on = function.retry_on
    if not isinstance(retry_on, list) or not all(isinstance(c, str) for c in retry_on):
        problems["retry_on"] = ["Must be a list of error codes."]
    elif unknown := sorted(set(retry_on) - set(ERROR_CODES)):
        problems["retry_on"] = [f"Unknown error code {unknown[0]!r}; known: {', '.join(ERROR_CODES)}."]
    tags = function.tags
    if not isinstance(tags, list) or not all(isinstance(t, str) and 0 < len(t) <= 64 for t in tags):
        problems["tags"] = ["Must be a list of strings (1–64 characters)."]
    return problems


def condition_problems(tenant, condition) -> list[str]:
    if condition in (None, [], {}):
        return []
    try:
        compile_condition(condition, named=named_rules_for(tenant=tenant))
    except RuleError as exc:
        return list(exc.problems) if hasattr(exc, "problems") else [str(exc)]
    return []


def trigger_problems(trigger) -> dict[str, list[str]]:
    problems: dict[str, list[str]] = {}
    allowed = _TRIGGER_CONFIG.get(trigger.kind)
    if allowed is None:
        return {"kind": [f"Must be one of {', '.join(TriggerKind.values)}."]}
    config = trigger.config
    if not isinstance(config, dict):
        return {"config": ["Must be an object."]}
    config_problems = [f"Unknown key {k!r} for {trigger.kind} (known: {', '.join(sorted(allowed)) or 'none'})."
                       for k in sorted(set(config) - allowed)]
    config_problems += [f"{k} must be a string." for k in ("place", "from_place", "to_place", "transition", "name",
                                                             "cron", "timezone", "function_id")
                        if k in config and not (isinstance(config[k], str) and config[k])]
    if "success" in config and config["success"] is not None and not isinstance(config["success"], bool):
        config_problems.append("success must be true, false or null.")
    if trigger.kind == TriggerKind.CUSTOM and not config.get("name"):
        config_problems.append("name (the custom event's name) is required.")
    if trigger.kind == TriggerKind.SCHEDULE:
        config_problems += _schedule_problems(config)
    problems["config"] = config_problems
    problems["condition"] = condition_problems(trigger.tenant, trigger.condition)
    problems["input_mapping"] = mapping_problems(trigger.input_mapping)
    return problems


def _schedule_problems(config: dict) -> list[str]:
    cron = config.get("cron")
    if not isinstance(cron, str) or not croniter.is_valid(cron):
        return ["cron must be a cron expression (5 fields, or 6 with seconds last)."]
    try:
        zone(config)
    except (ZoneInfoNotFoundError, ValueError):
        return [f"Unknown timezone {config.get('timezone')!r}."]
    return []


def zone(config: dict):
    name = config.get("timezone") or "UTC"
    return UTC if name == "UTC" else ZoneInfo(name)


def next_slot(config: dict, after: datetime) -> datetime:
    """The first cron slot strictly after `after`, in the schedule's time zone, as an aware UTC time."""
    local = after.astimezone(zone(config))
    return croniter(config["cron"], local).get_next(datetime).astimezone(UTC)


def chain_problems(chain) -> dict[str, list[str]]:
    problems: dict[str, list[str]] = {}
    if chain.on not in ChainOn.values:
        problems["on"] = [f"Must be one of {', '.join(ChainOn.values)}."]
    if chain.on == ChainOn.CONDITION and chain.condition in (None, [], {}):
        problems["condition"] = ["A condition chain needs a condition."]
    else:
        problems["condition"] = condition_problems(chain.tenant, chain.condition)
    problems["input_mapping"] = mapping_problems(chain.input_mapping)
    if chain.delay_seconds < 0 or chain.delay_seconds > 86400:
        problems["delay_seconds"] = ["Must be from 0 to 86400."]
    if chain.next_function_id == chain.function_id:
        problems["next_function"] = ["A function cannot chain to itself."]
    elif chain.next_function.tenant_id != chain.function.tenant_id or chain.function.tenant_id != chain.tenant_id:
        problems["next_function"] = ["Both functions must belong to the chain's tenant."]
    return problems
