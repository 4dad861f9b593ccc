"""`manage.py runexample content_pipeline --tenant demo --topic "…"`: load an agents example for a tenant, start
its workflow with the topic, wait for the agents to finish, and print each agent's run, the article and the cost.

On the embedded default the runs happen in this process (threads, the simulated provider unless real providers
are configured); with a broker, a Celery worker must be running."""

from __future__ import annotations

import time
from decimal import Decimal

from django.core.management.base import BaseCommand, CommandError

from apps.agents import services
from apps.agents.models import AgentExecution
from apps.core.errors import ApiError
from apps.tenants.models import Tenant
from apps.workflows import services as workflow_services
from apps.workflows.models import Token


class Command(BaseCommand):
    help = "Run an agents example (examples/agents/<name>.yaml) end to end and print what each agent did."

    def add_arguments(self, parser):
        parser.add_argument("example", help="e.g. content_pipeline")
        parser.add_argument("--tenant", default="demo", help="tenant slug (default demo)")
        parser.add_argument("--topic", default="AI agents in production")
        parser.add_argument("--audience", default="software engineers")
        parser.add_argument("--content-type", default="blog post")
        parser.add_argument("--model", help="override every agent's model (e.g. gpt-4o-mini, cb:writing)")
        parser.add_argument("--timeout", type=float, default=300.0, help="seconds to wait (default 300)")

    def handle(self, *args, **options):
        tenant = Tenant.objects.filter(slug=options["tenant"]).first()
        if tenant is None:
            raise CommandError(f"No tenant {options['tenant']!r} (the embedded default creates `demo` on `make run`).")
        try:
            bindings = services.example_load(tenant, name=options["example"], model=options["model"])
            workflow = bindings[0].workflow
            instance = workflow_services.instance_create(tenant, workflow_id=workflow, actor="runexample", data={
                "topic": options["topic"], "target_audience": options["audience"],
                "content_type": options["content_type"]})
        except ApiError as error:
            raise CommandError(error.message) from None
        started = time.monotonic()
        self.stdout.write(f"{workflow} instance {instance.id}: {len(bindings)} agents, topic {options['topic']!r}")
        deadline = started + options["timeout"]
        while time.monotonic() < deadline:
            instance.refresh_from_db()
            if instance.status != "running":
                break
            time.sleep(0.05)
        elapsed = time.monotonic() - started
        runs = list(AgentExecution.objects.filter(instance_id=instance.id).select_related("agent")
                    .order_by("created_at"))
        total = Decimal(0)
        for run in runs:
            total += run.cost
            self.stdout.write(f"  {run.agent.name:<11} {run.status:<9} {run.model or run.model_requested} "
                              f"via {run.provider or '-'}: {run.total_tokens} tokens, ${run.cost.normalize():f}, "
                              f"{(run.duration_ms or 0):.0f} ms" + (f" — {run.error}" if run.error else ""))
        token = Token.objects.filter(instance_id=instance.id).order_by("-updated_at").first()
        data = token.data if token else {}
        article = str(data.get("article", ""))
        stats = data.get("stats") or {}
        self.stdout.write(f"instance {instance.status} in {elapsed:.2f} s; token in {token.place if token else '-'}")
        if stats:
            self.stdout.write(f"article: {stats.get('words')} words, {stats.get('reading_time_minutes')} min read")
        if article:
            self.stdout.write(f"article: {article[:300]}{'…' if len(article) > 300 else ''}")
        self.stdout.write(f"total cost: ${total.normalize():f}")
        if instance.status != "completed":
            raise CommandError(f"The pipeline did not complete (instance {instance.status}).")
