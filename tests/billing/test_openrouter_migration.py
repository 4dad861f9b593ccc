"""`manage.py openrouter analyze-usage / plan-migration` on the sample export (examples/openrouter/activity.csv),
figures worked out by hand from the sample and the seeded catalogue's list prices (USD per million tokens)."""

from __future__ import annotations

import io
import json
from decimal import Decimal as D
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from apps.billing import openrouter_import as oi

pytestmark = pytest.mark.django_db
SAMPLE = str(Path(__file__).resolve().parents[2] / "examples" / "openrouter" / "activity.csv")
M = D(1_000_000)


def run(*args) -> str:
    out = io.StringIO()
    call_command("openrouter", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def analysis(*extra) -> dict:
    return json.loads(run("analyze-usage", SAMPLE, "--json", *extra))


def test_usage_by_model_with_our_prices(catalogue):
    result = analysis()
    models = {m["model"]: m for m in result["by_model"]}
    gpt4o = models["openai/gpt-4o-2024-08-06"]  # a dated name priced as its family
    assert gpt4o["catalogue_model"] == "gpt-4o" and gpt4o["requests"] == 3
    assert (gpt4o["prompt_tokens"], gpt4o["completion_tokens"]) == (5400, 1800)
    # two requests of 2000/750, one of 1400 prompt (1000 of them cached, at $1.25) and 300 completion
    assert D(gpt4o["our_cost"]) == (2 * (2000 * D("2.50") + 750 * 10) + 400 * D("2.50") + 1000 * D("1.25")
                                    + 300 * 10) / M == D("0.03025")
    assert D(gpt4o["openrouter_cost"]) == D("0.0125") * 2 + D("0.00525")
    assert gpt4o["providers"] == {"OpenAI": 2, "Azure": 1}
    claude = models["anthropic/claude-3.5-sonnet"]  # OpenRouter's dotted spelling
    assert claude["catalogue_model"] == "claude-3-5-sonnet-20241022"
    assert D(claude["our_cost"]) == (7000 * 3 + 2900 * 15) / M
    assert D(models["google/gemini-1.5-flash"]["our_cost"]) == (5000 * D("0.075") + 25 * D("0.30")) / M
    assert D(models["openai/o3-mini"]["our_cost"]) == (1200 * D("1.10") + 8000 * D("4.40")) / M
    assert models["openai/o3-mini"]["reasoning_tokens"] == 6500
    llama = models["meta-llama/llama-3.1-70b-instruct"]
    assert llama["catalogue_model"] is None and llama["our_cost"] is None
    assert result["unpriced"] == ["meta-llama/llama-3.1-70b-instruct"]
    totals = result["totals"]
    assert totals["requests"] == 10 and totals["unpriced_requests"] == 1
    assert D(totals["openrouter_cost"]) == D("0.1331925")
    assert D(totals["our_cost"]) == D("0.1323125") == D(totals["openrouter_cost_of_priced"])
    assert result["columns"]["model"] == "model_permaslug" and result["columns"]["cost"] == "cost_total"


def test_usage_by_provider_and_app(catalogue):
    result = analysis()
    providers = {p["provider"]: p for p in result["by_provider"]}
    assert providers["OpenAI"]["requests"] == 5 and providers["Together"]["provider_type"] == "openai_compatible"
    assert providers["Google AI Studio"]["provider_type"] == "gemini"
    apps = {a["app"]: a for a in result["by_app"]}
    assert apps["support-bot"]["requests"] == 5
    assert D(apps["support-bot"]["openrouter_cost"]) == D("0.0125") * 2 + D("0.00525") + D("0.0315") + D("0.033")
    assert apps["docs-search"]["models"] == {"openai/gpt-4o-mini": 2, "google/gemini-1.5-flash": 1}
    assert apps["(no app)"]["requests"] == 2


def test_human_report(catalogue):
    text = run("analyze-usage", SAMPLE)
    assert "10 rows, 10 requests" in text and "$0.133192" in text  # OpenRouter's total (half-even)
    assert "meta-llama/llama-3.1-70b-instruct" in text.split("unpriced")[-1]


def test_plan_and_apply(catalogue, tmp_path):
    from apps.providers.models import VirtualModel
    from tests import factories

    tenant = factories.tenant("or-migrating")
    output = tmp_path / "plan.json"
    call_command("openrouter", "plan-migration", SAMPLE, "--tenant", tenant.slug, "--output", str(output), "--apply",
                 stdout=io.StringIO(), stderr=io.StringIO())
    plan = json.loads(output.read_text())
    providers = {p["type"]: p for p in plan["providers"]}
    assert set(providers) == {"openai", "azure", "anthropic", "gemini", "openai_compatible"}
    assert providers["openai"]["requests"] == 5 and providers["azure"]["models"] == ["gpt-4o"]
    assert not any(p["configured"] for p in plan["providers"])
    assert "sk-" not in output.read_text()  # no secrets, only what to add
    virtual = {v["name"]: v for v in plan["virtual_models"]}
    assert virtual["or-support-bot"]["candidates"] == ["gpt-4o", "claude-3-5-sonnet-20241022"]
    assert virtual["or-default"]["candidates"] == ["o3-mini", "meta-llama/llama-3.1-70b-instruct"]
    assert plan["routes"] == [{"model": "gpt-4o", "primary": "openai", "fallbacks": ["azure"]}]
    assert plan["applied"]["virtual_models_created"] == ["or-support-bot", "or-docs-search", "or-default"]
    stored = VirtualModel.objects.get(tenant=tenant, name="or-docs-search")
    assert stored.candidates == ["gpt-4o-mini", "gemini-1.5-flash"] and stored.strategy == "failover_chain"
    again = json.loads(run("plan-migration", SAMPLE, "--tenant", tenant.slug, "--apply"))
    assert again["applied"]["virtual_models_existing"] == ["or-support-bot", "or-docs-search", "or-default"]


def test_plan_knows_configured_provider_types(catalogue):
    from tests import factories

    tenant = factories.tenant("or-configured")
    upstream = factories.provider(tenant, slug="or-openai", base_url="http://127.0.0.1:9/v1")
    factories.credential(upstream, api_key_value="sk-test-key")
    plan = json.loads(run("plan-migration", SAMPLE, "--tenant", tenant.slug))
    assert {p["type"]: p["configured"] for p in plan["providers"]}["openai"] is True


def test_column_variants_and_refusals(tmp_path):
    variant = tmp_path / "variant.csv"
    variant.write_text("Date,Model,Provider,Prompt Tokens,Completion Tokens,Cost,Requests\n"
                       "2026-12-01,openai/gpt-4o-mini,OpenAI,1000000,0,0.15,40\n")
    rows, used = oi.read_export(variant)
    assert used["prompt"] == "Prompt Tokens" and rows[0].requests == 40 and rows[0].cost == D("0.15")
    bad = tmp_path / "bad.csv"
    bad.write_text("when,what\n1,2\n")
    with pytest.raises(CommandError, match="model_permaslug"):
        call_command("openrouter", "analyze-usage", str(bad), stdout=io.StringIO())
    with pytest.raises(CommandError, match="no tenant"):
        call_command("openrouter", "plan-migration", SAMPLE, "--tenant", "nobody", stdout=io.StringIO())
