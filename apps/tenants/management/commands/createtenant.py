from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from apps.tenants.services import tenant_create


class Command(BaseCommand):
    help = "Create a tenant."

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument("--name", default="")
        parser.add_argument("--routing-strategy", default="")

    def handle(self, *args, slug, name, routing_strategy, **options):
        try:
            tenant = tenant_create(slug=slug, name=name, default_routing_strategy=routing_strategy)
        except ValidationError as exc:
            raise CommandError("; ".join(f"{k}: {' '.join(v)}" for k, v in exc.message_dict.items())) from None
        self.stdout.write(f"created tenant {tenant.slug} (id {tenant.pk})")
