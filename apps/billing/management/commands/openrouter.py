"""`manage.py openrouter analyze-usage FILE.csv [--tenant SLUG] [--json]` and
`manage.py openrouter plan-migration FILE.csv --tenant SLUG [--output plan.json] [--apply]`: moving from
OpenRouter with its activity export (the accepted columns are listed in apps/billing/openrouter_import.py)."""

from __future__ import annotations

import json
from pathlib import Path

from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db.models import Q

from apps.billing import openrouter_import as oi
from apps.providers import selectors as provider_selectors
from apps.providers import services as provider_services
from apps.providers.facade import model_infos
from apps.providers.models import VirtualModel
from apps.tenants.models import Tenant


def _tenant(slug: str | None) -> Tenant | None:
    if slug is None:
        return None
    tenant = Tenant.objects.filter(slug=slug).first()
    if tenant is None:
        raise CommandError(f"no tenant {slug!r}")
    return tenant


def _catalogue(tenant: Tenant | None) -> list:
    """The global catalogue plus the tenant's own entries (their providers' models)."""
    own = set(provider_selectors.provider_list(tenant=tenant).filter(tenant__isnull=False).values_list(
        "id", flat=True)) if tenant else set()
    return [m for m in model_infos() if m.provider_id is None or m.provider_id in own]


def _configured_types(tenant: Tenant) -> set[str]:
    """Provider types the tenant can already route to with a key: its own, or global ones with credentials."""
    providers = provider_selectors.provider_list(tenant=tenant).filter(enabled=True)
    keyed = providers.filter(Q(credentials__isnull=False) | Q(type__in=("ollama",))).distinct()
    return set(keyed.values_list("type", flat=True))


def _usd(value) -> str:
    return "unpriced" if value is None else f"${value:,.6f}"


class Command(BaseCommand):
    help = "Analyse an OpenRouter activity export and plan the move of its traffic to this gateway."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        analyze = sub.add_parser("analyze-usage", help="usage by model, provider and app, and our cost of it")
        analyze.add_argument("file")
        analyze.add_argument("--tenant", help="price with this tenant's own catalogue entries too")
        analyze.add_argument("--json", action="store_true", help="print the analysis as JSON")
        planner = sub.add_parser("plan-migration", help="providers, keys, virtual models and routes to set up")
        planner.add_argument("file")
        planner.add_argument("--tenant", required=True)
        planner.add_argument("--output", help="write the plan there (JSON); default: print it")
        planner.add_argument("--apply", action="store_true", help="create the plan's virtual models")

    def handle(self, *args, **o):
        tenant = _tenant(o.get("tenant"))
        if not Path(o["file"]).is_file():
            raise CommandError(f"no such file: {o['file']}")
        try:
            rows, used = oi.read_export(o["file"])
        except oi.ExportError as exc:
            raise CommandError(str(exc)) from None
        analysis = oi.analyse(rows, _catalogue(tenant))
        analysis["columns"] = used
        if o["action"] == "analyze-usage":
            if o["json"]:
                self.stdout.write(json.dumps(oi.jsonable(analysis), indent=2))
            else:
                self._report(analysis)
            return
        result = oi.plan(analysis, tenant_slug=tenant.slug, configured_types=_configured_types(tenant))
        if o["apply"]:
            result["applied"] = self._apply(tenant, result["virtual_models"])
        text = json.dumps(oi.jsonable(result), indent=2)
        if o["output"]:
            Path(o["output"]).write_text(text + "\n")
            self.stderr.write(f"plan written to {o['output']}")
        else:
            self.stdout.write(text)

    def _apply(self, tenant: Tenant, virtual_models: list[dict]) -> dict:
        created, skipped = [], []
        for spec in virtual_models:
            if VirtualModel.objects.filter(tenant=tenant, name=spec["name"]).exists():
                skipped.append(spec["name"])
                continue
            instance = VirtualModel(name=spec["name"], strategy=spec["strategy"], candidates=spec["candidates"],
                                    description=spec["description"][:300])
            try:
                provider_services.tenant_config_save(tenant=tenant, instance=instance)
            except (ValidationError, PermissionDenied) as exc:
                raise CommandError(f"virtual model {spec['name']}: {exc}") from None
            created.append(spec["name"])
        return {"virtual_models_created": created, "virtual_models_existing": skipped}

    def _report(self, analysis: dict) -> None:
        totals, out = analysis["totals"], self.stdout.write
        out(f"{analysis['rows']} rows, {totals['requests']} requests, {analysis['period']['from'] or '?'} to "
            f"{analysis['period']['to'] or '?'}; columns used: "
            + ", ".join(f"{k}={v}" for k, v in analysis["columns"].items()))
        out(f"OpenRouter cost {_usd(totals['openrouter_cost'])}; here, with your own keys: "
            f"{_usd(totals['our_cost'])} for the priced models (they cost {_usd(totals['openrouter_cost_of_priced'])}"
            f" on OpenRouter); {totals['unpriced_requests']} requests on models missing from the catalogue")
        out("\nby model:")
        for m in analysis["by_model"]:
            out(f"  {m['model']:<45} {m['requests']:>7} req  {m['prompt_tokens']:>10} in  "
                f"{m['completion_tokens']:>9} out  OpenRouter {_usd(m['openrouter_cost'])}  here "
                f"{_usd(m['our_cost'])}  ({m['catalogue_model'] or 'not in the catalogue'})")
        out("\nby provider:")
        for p in analysis["by_provider"]:
            out(f"  {p['provider']:<25} {p['requests']:>7} req  {_usd(p['openrouter_cost'])}  -> type "
                f"{p['provider_type'] or '?'}")
        out("\nby app:")
        for a in analysis["by_app"]:
            out(f"  {a['app']:<25} {a['requests']:>7} req  {_usd(a['openrouter_cost'])}")
        if analysis["unpriced"]:
            out("\nunpriced (add catalogue entries to price them): " + ", ".join(analysis["unpriced"]))
