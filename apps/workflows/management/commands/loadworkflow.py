"""`manage.py loadworkflow FILE [FILE…] --tenant SLUG [--strict]`: save workflow definitions from JSON or YAML."""

from __future__ import annotations

from pathlib import Path

import yaml
from django.core.management.base import BaseCommand, CommandError

from apps.core.errors import ApiError
from apps.tenants.models import Tenant
from apps.workflows.engine import DefinitionInvalid
from apps.workflows.services import workflow_save


class Command(BaseCommand):
    help = "Save workflow definitions (JSON or YAML, our shape or the original's) for a tenant."

    def add_arguments(self, parser):
        parser.add_argument("files", nargs="+", help="definition files (.json, .yaml, .yml)")
        parser.add_argument("--tenant", required=True, help="the tenant's slug")
        parser.add_argument("--strict", action="store_true", help="refuse a net that is not sound")

    def handle(self, *args, files, tenant, strict, **options):
        owner = Tenant.objects.filter(slug=tenant).first()
        if owner is None:
            raise CommandError(f"No tenant {tenant!r}.")
        failed = False
        for name in files:
            path = Path(name)
            try:
                raw = yaml.safe_load(path.read_text())  # YAML is a superset of JSON
                workflow, version, created = workflow_save(
                    owner, definition=raw, strict=strict, actor="loadworkflow",
                    source_format="json" if path.suffix == ".json" else "yaml")
            except (OSError, yaml.YAMLError) as exc:
                failed = True
                self.stderr.write(f"{name}: cannot read: {exc}")
                continue
            except DefinitionInvalid as exc:
                failed = True
                self.stderr.write(f"{name}: {len(exc.problems)} problem(s):")
                for problem in exc.problems:
                    self.stderr.write(f"  - {problem}")
                continue
            except ApiError as exc:
                failed = True
                self.stderr.write(f"{name}: {exc.message}")
                continue
            what = f"version {version.number}" if created else f"unchanged (version {version.number})"
            verdict = "sound" if version.sound else version.analysis.get("summary", "not sound")
            self.stdout.write(f"{workflow.slug}: {what}; {verdict}")
        if failed:
            raise CommandError("Some definitions were not saved.")
