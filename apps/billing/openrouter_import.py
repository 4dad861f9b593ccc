"""Reading an OpenRouter activity export (CSV) to plan a move here: usage by model, provider and app, what it
would have cost at our catalogue prices with the tenant's own provider keys (no BYOK fee, no credit markup), and
a plan — provider types and keys to add, virtual models per app and model routes that reproduce the traffic.

Columns (header names are matched case-insensitively, spaces and dashes read as underscores; the first present
of each list is used). Required: a model and at least one token or cost column.
- model: `model_permaslug`, `model`, `model_slug`, `model_id`
- prompt tokens: `tokens_prompt`, `prompt_tokens`, `native_tokens_prompt`, `input_tokens`
- completion tokens (reasoning included, as OpenRouter bills them): `tokens_completion`, `completion_tokens`,
  `native_tokens_completion`, `output_tokens`
- cached prompt tokens: `tokens_cached`, `cached_tokens`, `native_tokens_cached`
- reasoning tokens (reported only): `tokens_reasoning`, `reasoning_tokens`, `native_tokens_reasoning`
- cost (USD): `cost_total`, `cost`, `total_cost`, `usage`
- provider: `provider_name`, `provider`; app: `app_name`, `app`, `origin`, `app_id`; time: `created_at`, `date`,
  `timestamp`; requests per row (aggregated exports): `requests`, `request_count`, `count` (default 1).
"""

from __future__ import annotations

import csv
import re
from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path

from django.utils.text import slugify

COLUMNS = {
    "model": ("model_permaslug", "model", "model_slug", "model_id"),
    "prompt": ("tokens_prompt", "prompt_tokens", "native_tokens_prompt", "input_tokens"),
    "completion": ("tokens_completion", "completion_tokens", "native_tokens_completion", "output_tokens"),
    "cached": ("tokens_cached", "cached_tokens", "native_tokens_cached"),
    "reasoning": ("tokens_reasoning", "reasoning_tokens", "native_tokens_reasoning"),
    "cost": ("cost_total", "cost", "total_cost", "usage"),
    "provider": ("provider_name", "provider"),
    "app": ("app_name", "app", "origin", "app_id"),
    "time": ("created_at", "date", "timestamp"),
    "requests": ("requests", "request_count", "count"),
}
# OpenRouter's provider names → our provider types (anything else speaks OpenAI's API: openai_compatible).
PROVIDER_TYPES = {"openai": "openai", "azure": "azure", "anthropic": "anthropic", "google": "gemini",
                  "google ai studio": "gemini", "google vertex": "gemini", "ollama": "ollama"}
# OpenRouter's model-slug prefixes → the provider type whose catalogue entries price them.
PREFIX_TYPES = {"openai": "openai", "anthropic": "anthropic", "google": "gemini"}
DATE_SUFFIX = re.compile(r"(-\d{4}-\d{2}-\d{2}|-\d{8}|-\d{4}|-latest|-preview|-exp|-\d{3})$")
NONE_APP = "(no app)"


class ExportError(ValueError):
    """The file is not an activity export we can read; the message says what is missing."""


@dataclass
class Row:
    model: str
    provider: str
    app: str
    time: str
    requests: int
    prompt: int
    completion: int
    cached: int
    reasoning: int
    cost: Decimal


def _int(value: str | None) -> int:
    try:
        return max(0, int(float(value))) if value not in (None, "") else 0
    except ValueError:
        return 0


def _money(value: str | None) -> Decimal:
    try:
        return Decimal(value) if value not in (None, "") else Decimal(0)
    except InvalidOperation:
        return Decimal(0)


def read_export(path: str | Path) -> tuple[list[Row], dict[str, str]]:
    """The rows, and which header each column came from."""
    with open(path, newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        headers = {re.sub(r"[\s\-]+", "_", (h or "").strip().lower()): h for h in reader.fieldnames or ()}
        used = {}
        for name, aliases in COLUMNS.items():
            found = next((headers[a] for a in aliases if a in headers), None)
            if found is not None:
                used[name] = found
        if "model" not in used or not {"prompt", "completion", "cost"} & set(used):
            raise ExportError(
                f"{path}: not an OpenRouter activity export: need a model column ({', '.join(COLUMNS['model'])}) "
                f"and token or cost columns ({', '.join(COLUMNS['prompt'] + COLUMNS['completion'] + COLUMNS['cost'])})"
                f"; found: {', '.join(reader.fieldnames or ()) or 'no header'}.")
        rows = []
        for raw in reader:
            def get(name, raw=raw):
                return raw.get(used[name]) if name in used else None
            model = (get("model") or "").strip()
            if not model:
                continue
            rows.append(Row(model=model, provider=(get("provider") or "").strip(),
                            app=(get("app") or "").strip() or NONE_APP, time=(get("time") or "").strip(),
                            requests=_int(get("requests")) if "requests" in used else 1,
                            prompt=_int(get("prompt")), completion=_int(get("completion")),
                            cached=_int(get("cached")), reasoning=_int(get("reasoning")), cost=_money(get("cost"))))
    return rows, used


def provider_type_of(provider_name: str) -> str:
    return PROVIDER_TYPES.get(provider_name.strip().lower(), "openai_compatible") if provider_name else ""


def catalogue_match(slug: str, models: list) -> object | None:
    """OpenRouter's `vendor/model[:variant]` → our catalogue entry: exact id or alias of the vendor's provider
    type (`claude-3.5-sonnet` also as `claude-3-5-sonnet`), then without a date/`-latest` suffix, then the longest
    catalogued id that prefixes it (its family)."""
    vendor, _, name = slug.partition("/")
    if not name:
        vendor, name = "", vendor
    name = name.split(":", 1)[0].lower()
    kind = PREFIX_TYPES.get(vendor.lower())
    pool = [m for m in models if kind is None or m.provider_type == kind]
    if kind is None and vendor:
        return None  # meta-llama/…, mistralai/…: served through OpenAI-compatible hosts we have no prices for
    names = {m.model_id.lower(): m for m in pool}
    for m in pool:
        for alias in m.aliases:
            names.setdefault(alias.lower(), m)
    spellings = [name, re.sub(r"(\d)\.(\d)", r"\1-\2", name)]
    for spelling in spellings + [DATE_SUFFIX.sub("", s) for s in spellings]:
        if spelling in names:
            return names[spelling]
    family = [key for key in names for s in spellings if s.startswith(key + "-")]
    return names[max(family, key=len)] if family else None


def our_cost(model, row: Row) -> Decimal:
    cached = min(row.cached, row.prompt)
    cached_price = model.cached_input_price if model.cached_input_price is not None else model.input_price
    return (row.prompt - cached) * model.input_price + cached * cached_price + row.completion * model.output_price


def _group() -> dict:
    return {"requests": 0, "prompt_tokens": 0, "completion_tokens": 0, "reasoning_tokens": 0,
            "openrouter_cost": Decimal(0)}


def _add(group: dict, row: Row) -> None:
    group["requests"] += row.requests
    group["prompt_tokens"] += row.prompt
    group["completion_tokens"] += row.completion
    group["reasoning_tokens"] += row.reasoning
    group["openrouter_cost"] += row.cost


def analyse(rows: list[Row], models: list) -> dict:
    """Usage by model, provider and app with our cost beside OpenRouter's. Money stays Decimal here."""
    by_model: dict[str, dict] = defaultdict(_group)
    by_provider: dict[str, dict] = defaultdict(_group)
    by_app: dict[str, dict] = defaultdict(_group)
    totals = {**_group(), "our_cost": Decimal(0), "openrouter_cost_of_priced": Decimal(0), "unpriced_requests": 0}
    matches: dict[str, object | None] = {}
    for row in rows:
        if row.model not in matches:
            matches[row.model] = catalogue_match(row.model, models)
        match = matches[row.model]
        group = by_model[row.model]
        _add(group, row)
        group.setdefault("our_cost", Decimal(0) if match else None)
        group.setdefault("providers", defaultdict(int))
        group["providers"][row.provider or "(unknown)"] += row.requests
        _add(by_provider[row.provider or "(unknown)"], row)
        app = by_app[row.app]
        _add(app, row)
        app.setdefault("models", defaultdict(int))
        app["models"][row.model] += row.requests
        _add(totals, row)
        if match is None:
            totals["unpriced_requests"] += row.requests
        else:
            cost = our_cost(match, row)
            group["our_cost"] += cost
            totals["our_cost"] += cost
            totals["openrouter_cost_of_priced"] += row.cost
    times = sorted(r.time for r in rows if r.time)
    return {
        "rows": len(rows), "period": {"from": times[0] if times else None, "to": times[-1] if times else None},
        "totals": totals,
        "by_model": [{"model": slug, "catalogue_model": matches[slug].model_id if matches[slug] else None,
                      "provider_type": matches[slug].provider_type if matches[slug] else None,
                      **{k: v for k, v in group.items() if k != "providers"},
                      "providers": dict(group["providers"])}
                     for slug, group in sorted(by_model.items(), key=lambda item: -item[1]["requests"])],
        "by_provider": [{"provider": name, "provider_type": provider_type_of(name) if name != "(unknown)" else "",
                         **group} for name, group in sorted(by_provider.items(), key=lambda i: -i[1]["requests"])],
        "by_app": [{"app": name, **{k: v for k, v in group.items() if k != "models"},
                    "models": dict(group["models"])}
                   for name, group in sorted(by_app.items(), key=lambda item: -item[1]["requests"])],
        "unpriced": sorted(slug for slug, match in matches.items() if match is None),
    }


def plan(analysis: dict, *, tenant_slug: str, configured_types: set[str]) -> dict:
    """What to configure so the tenant's traffic runs here: provider types (with the tenant's own keys), one
    virtual model per app over the models it used (most used first, failing over in that order), and a model
    route wherever OpenRouter served one model through several provider types."""
    models = {m["model"]: m for m in analysis["by_model"]}
    types: dict[str, dict] = {}
    for entry in analysis["by_model"]:  # the provider types that served the traffic (else the model's own)
        for provider, count in entry["providers"].items():
            kind = (provider_type_of(provider) if provider != "(unknown)" else "") or entry["provider_type"] \
                or "openai_compatible"
            needed = types.setdefault(kind, {"type": kind, "models": [], "requests": 0,
                                             "configured": kind in configured_types})
            name = entry["catalogue_model"] or entry["model"]
            if name not in needed["models"]:
                needed["models"].append(name)
            needed["requests"] += count
    for kind, needed in types.items():
        needed["action"] = ("already configured for the tenant" if needed["configured"] else
                            f"add a provider of type {kind} with the tenant's own API key "
                            f"(POST /api/providers/, then POST /api/credentials/)")
        if kind == "openai_compatible":
            needed["action"] += ("; these models have no catalogue entry: add ModelEntry rows with their prices "
                                 "(POST /api/models/) for the hosts that served them")
    virtual = []
    for app in analysis["by_app"]:
        # most used first; models we cannot price (nor, without a provider, serve) after the others
        ranked = sorted(app["models"].items(), key=lambda item: (models[item[0]]["catalogue_model"] is None,
                                                                 -item[1]))
        candidates = []
        for slug, _ in ranked:
            name = models[slug]["catalogue_model"] or slug
            if name not in candidates:
                candidates.append(name)
        label = "default" if app["app"] == NONE_APP else slugify(app["app"]) or "app"
        virtual.append({"name": f"or-{label}", "strategy": "failover_chain", "candidates": candidates,
                        "description": f"OpenRouter traffic of {app['app']} ({app['requests']} requests)"})
    routes = []
    for entry in analysis["by_model"]:
        served = defaultdict(int)
        for provider, count in entry["providers"].items():
            served[provider_type_of(provider) if provider != "(unknown)" else ""] += count
        ranked = [kind for kind, _ in sorted(served.items(), key=lambda item: -item[1]) if kind]
        if entry["catalogue_model"] and len(ranked) > 1:
            routes.append({"model": entry["catalogue_model"], "primary": ranked[0], "fallbacks": ranked[1:]})
    return {"tenant": tenant_slug, "providers": sorted(types.values(), key=lambda t: -t["requests"]),
            "virtual_models": virtual, "routes": routes, "unpriced_models": analysis["unpriced"],
            "projected": {"openrouter_cost": analysis["totals"]["openrouter_cost"],
                          "our_cost_of_priced": analysis["totals"]["our_cost"],
                          "openrouter_cost_of_priced": analysis["totals"]["openrouter_cost_of_priced"]}}


def jsonable(value):
    """Decimals as strings (exact), recursively."""
    if isinstance(value, Decimal):
        return format(value.normalize(), "f") if value else "0"
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return value
