from datetime import timedelta

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from apps.tenants.models import Tenant
from apps.tenants.services import api_key_create


class Command(BaseCommand):
    help = "Create an API key for a tenant and print its secret (shown only this once)."

    def add_arguments(self, parser):
        parser.add_argument("--tenant", required=True, help="tenant slug")
        parser.add_argument("--name", default="cli")
        parser.add_argument("--scopes", nargs="+", default=["inference"],
                            help="inference, read, admin (space or comma separated)")
        parser.add_argument("--user-label", default="")
        parser.add_argument("--project-label", default="")
        parser.add_argument("--expires-in-days", type=int, default=None)

    def handle(self, *args, **o):
        tenant = Tenant.objects.filter(slug=o["tenant"]).first()
        if tenant is None:
            raise CommandError(f"no tenant {o['tenant']!r}; create it with: manage.py createtenant {o['tenant']}")
        scopes = [s.strip() for part in o["scopes"] for s in part.split(",") if s.strip()]
        expires = timezone.now() + timedelta(days=o["expires_in_days"]) if o["expires_in_days"] else None
        try:
            key, secret = api_key_create(tenant=tenant, name=o["name"], scopes=scopes, user_label=o["user_label"],
                                         project_label=o["project_label"], expires_at=expires)
        except ValidationError as exc:
            raise CommandError("; ".join(f"{k}: {' '.join(v)}" for k, v in exc.message_dict.items())) from None
        self.stderr.write(f"created API key {key.name!r} for {tenant.slug} (scopes: {', '.join(key.scopes)}); "
                          "it is shown only now:")
        self.stdout.write(secret)
