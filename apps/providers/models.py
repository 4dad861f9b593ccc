from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils import timezone

from apps.core import crypto
from apps.core.http import validate_upstream_url
from apps.core.models import TimeStampedModel
from apps.core.vocabulary import ROUTING_STRATEGIES

from .adapters import registry
from .env_secrets import env_secret
from .route_validation import validate_constraints

# The adapters declare the provider types (see adapters.base.Adapter); members are named by type, upper-cased
# (ProviderType.OPENAI, ProviderType.OPENAI_COMPATIBLE, …).
ProviderType = models.TextChoices(
    "ProviderType", [(value.upper(), (value, label)) for value, label in registry.provider_type_choices()])
DEFAULT_BASE_URLS = registry.default_base_urls()
# These cannot work without a base URL of the user's own.
BASE_URL_REQUIRED = registry.base_url_required_types()


class Source(models.TextChoices):
    DATABASE = "db", "database"
    ENVIRONMENT = "env", "environment (read-only)"


class Provider(TimeStampedModel):
    """An upstream account: global (tenant empty) or a tenant's own (bring your own key)."""

    tenant = models.ForeignKey("tenants.Tenant", null=True, blank=True, on_delete=models.CASCADE,
                               related_name="providers", help_text="Empty: available to every tenant.")
    slug = models.SlugField(max_length=64)
    name = models.CharField(max_length=200)
    type = models.CharField(max_length=32, choices=ProviderType.choices)
    base_url = models.CharField(max_length=500, blank=True,
                                help_text="Blank: the provider's public endpoint. "
                                          "Required for Azure and OpenAI-compatible.")
    enabled = models.BooleanField(default=True)
    priority = models.IntegerField(default=100, help_text="Lower is tried first when several providers serve a model.")
    collects_data = models.BooleanField(
        default=False, help_text="The upstream may retain or train on prompts (excluded by data_collection=deny)."
    )
    options = models.JSONField(default=dict, blank=True,
                               help_text='Protocol options, e.g. {"api_version": "2024-10-21"} for Azure.')
    source = models.CharField(max_length=8, choices=Source.choices, default=Source.DATABASE, editable=False)

    class Meta:
        ordering = ["priority", "slug"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "slug"], name="provider_tenant_slug_unique"),
            models.UniqueConstraint(fields=["slug"], condition=Q(tenant__isnull=True),
                                    name="provider_global_slug_unique"),
        ]

    def __str__(self):
        owner = self.tenant.slug if self.tenant_id else "global"
        return f"{self.name} [{owner}]"

    @property
    def is_global(self) -> bool:
        return self.tenant_id is None

    @property
    def effective_base_url(self) -> str:
        return self.base_url or DEFAULT_BASE_URLS.get(self.type, "")

    def clean(self):
        if self.type in BASE_URL_REQUIRED and not self.base_url:
            raise ValidationError({"base_url": "This provider type needs a base URL."})
        if self.base_url:
            # Operators configure global providers; only tenant-supplied URLs are held to the private-address rule.
            allow_private = True if self.tenant_id is None else None
            try:
                self.base_url = validate_upstream_url(self.base_url, allow_private=allow_private)
            except ValidationError as exc:
                raise ValidationError({"base_url": exc.messages}) from None
        if not isinstance(self.options, dict):
            raise ValidationError({"options": "Options must be a JSON object."})


class ProviderCredential(models.Model):
    """One upstream API key. Stored encrypted; only a masked hint is ever shown."""

    provider = models.ForeignKey(Provider, on_delete=models.CASCADE, related_name="credentials")
    name = models.CharField(max_length=200, blank=True)
    encrypted_key = models.TextField(blank=True, editable=False)
    hint = models.CharField(max_length=32, blank=True, editable=False)
    enabled = models.BooleanField(default=True)
    source = models.CharField(max_length=8, choices=Source.choices, default=Source.DATABASE, editable=False)
    env_var = models.CharField(max_length=64, blank=True, editable=False,
                               help_text="For environment credentials: the variable that holds the key.")
    created_at = models.DateTimeField(auto_now_add=True, editable=False)
    rotated_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["provider_id", "id"]
        constraints = [
            # Several web replicas mirror the environment at once; one row per variable.
            models.UniqueConstraint(fields=["provider", "env_var"], condition=~Q(env_var=""),
                                    name="credential_env_var_unique"),
        ]

    def __str__(self):
        return f"{self.name or 'key'} {self.hint}".strip()

    def set_secret(self, plaintext: str) -> None:
        replacing = bool(self.encrypted_key)
        self.encrypted_key = crypto.encrypt(plaintext)
        self.hint = crypto.mask(plaintext)
        if replacing:
            self.rotated_at = timezone.now()

    def secret(self) -> str:
        """The plaintext key, for the outbound request only. Never log or return it."""
        if self.source == Source.ENVIRONMENT:
            return env_secret(self.provider.slug, self.env_var)
        return crypto.decrypt(self.encrypted_key)


class ModelEntry(TimeStampedModel):
    """The catalogue: what a model is called, who serves it, what it can do and what a token costs (USD)."""

    class Mode(models.TextChoices):
        CHAT = "chat"
        EMBEDDING = "embedding"
        COMPLETION = "completion"

    model_id = models.CharField(max_length=200, help_text="Public id clients send, e.g. gpt-4o.")
    provider_type = models.CharField(max_length=32, choices=ProviderType.choices)
    provider = models.ForeignKey(Provider, null=True, blank=True, on_delete=models.CASCADE,
                                 related_name="catalogue",
                                 help_text="Empty: any provider of this type serves it. Set: only this provider.")
    upstream_name = models.CharField(max_length=200, blank=True, help_text="Blank: same as the public id.")
    aliases = models.JSONField(default=list, blank=True)
    mode = models.CharField(max_length=16, choices=Mode.choices, default=Mode.CHAT)
    context_window = models.PositiveIntegerField(default=8192)
    max_output_tokens = models.PositiveIntegerField(default=4096)
    input_price = models.DecimalField(max_digits=20, decimal_places=12, default=0, help_text="USD per input token.")
    output_price = models.DecimalField(max_digits=20, decimal_places=12, default=0, help_text="USD per output token.")
    cached_input_price = models.DecimalField(max_digits=20, decimal_places=12, null=True, blank=True,
                                             help_text="USD per cached input token (blank: same as input).")
    cache_write_price = models.DecimalField(max_digits=20, decimal_places=12, null=True, blank=True,
                                            help_text="USD per cache-write input token "
                                                      "(Anthropic; blank: same as input).")
    supports_streaming = models.BooleanField(default=True)
    supports_tools = models.BooleanField(default=False)
    supports_vision = models.BooleanField(default=False)
    supports_json_mode = models.BooleanField(default=False)
    supports_embeddings = models.BooleanField(default=False)
    tags = models.JSONField(default=list, blank=True, help_text='Routing tags: tiers ("fast", "cheap", "quality") '
                            'and tasks ("coding", "analysis", "creative").')
    enabled = models.BooleanField(default=True)

    class Meta:
        ordering = ["provider_type", "model_id"]
        verbose_name = "model"
        verbose_name_plural = "model catalogue"
        constraints = [
            models.UniqueConstraint(fields=["provider_type", "model_id"], condition=Q(provider__isnull=True),
                                    name="model_type_id_unique"),
            models.UniqueConstraint(fields=["provider", "model_id"], name="model_provider_id_unique"),
        ]

    def __str__(self):
        return f"{self.model_id} ({self.provider_type})"

    @property
    def effective_upstream_name(self) -> str:
        return self.upstream_name or self.model_id

    @property
    def capabilities(self) -> list[str]:
        names = ("streaming", "tools", "vision", "json_mode", "embeddings")
        return [name for name in names if getattr(self, f"supports_{name}")]

    def clean(self):
        for field in ("aliases", "tags"):
            value = getattr(self, field)
            if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
                raise ValidationError({field: "Must be a list of non-empty strings."})
        if self.provider_id and self.provider.type != self.provider_type:
            raise ValidationError({"provider": "The provider's type differs from provider_type."})


class VirtualModel(TimeStampedModel):
    """A tenant's own routed model name: candidates + strategy + constraints (like `auto`, but theirs)."""

    tenant = models.ForeignKey("tenants.Tenant", null=True, blank=True, on_delete=models.CASCADE,
                               related_name="virtual_models", help_text="Empty: available to every tenant.")
    name = models.CharField(max_length=120, help_text="The model name clients send, e.g. team-chat or cb:support.")
    description = models.CharField(max_length=300, blank=True)
    strategy = models.CharField(max_length=32, choices=[(s, s) for s in ROUTING_STRATEGIES], default="balanced")
    candidates = models.JSONField(default=list, blank=True,
                                  help_text='Model names to route among, e.g. ["gpt-4o-mini", "claude-3-haiku"]; '
                                            "empty: every chat model the tenant can reach.")
    constraints = models.JSONField(default=dict, blank=True,
                                   help_text='circuit_breaker options applied to every request, e.g. '
                                             '{"max_cost_per_1k_tokens": 0.002, "task_type": "coding"}.')
    enabled = models.BooleanField(default=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "name"], name="virtualmodel_tenant_name_unique"),
            models.UniqueConstraint(fields=["name"], condition=Q(tenant__isnull=True),
                                    name="virtualmodel_global_name_unique"),
        ]

    def __str__(self):
        return self.name

    def clean(self):
        if "/" in self.name or not self.name.strip():
            raise ValidationError({"name": "Names may not be empty or contain '/' (reserved for provider/model)."})
        if not isinstance(self.candidates, list) or not all(isinstance(c, str) and c for c in self.candidates):
            raise ValidationError({"candidates": "Must be a list of model names."})
        if not isinstance(self.constraints, dict):
            raise ValidationError({"constraints": "Must be a JSON object of circuit_breaker options."})
        validate_constraints(self.constraints, strategy=self.strategy)


class ModelRoute(TimeStampedModel):
    """The `model_specific` route table: for a requested model, which provider first and which as fallback."""

    tenant = models.ForeignKey("tenants.Tenant", null=True, blank=True, on_delete=models.CASCADE,
                               related_name="model_routes", help_text="Empty: applies to every tenant.")
    model = models.CharField(max_length=200, help_text="The requested model name, e.g. gpt-4.")
    primary = models.CharField(max_length=64, help_text="Provider type (openai, azure…) or provider slug.")
    fallbacks = models.JSONField(default=list, blank=True, help_text='Provider types or slugs, e.g. ["azure"].')
    cost_limit_per_1k = models.DecimalField(max_digits=12, decimal_places=6, null=True, blank=True,
                                            help_text="USD per 1k tokens; dearer candidates are excluded.")
    performance_target_ms = models.PositiveIntegerField(null=True, blank=True,
                                                        help_text="Candidates measured slower are excluded.")
    enabled = models.BooleanField(default=True)

    class Meta:
        ordering = ["model"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "model"], name="modelroute_tenant_model_unique"),
            models.UniqueConstraint(fields=["model"], condition=Q(tenant__isnull=True),
                                    name="modelroute_global_model_unique"),
        ]

    def __str__(self):
        return f"{self.model} → {self.primary}"

    def clean(self):
        if not isinstance(self.fallbacks, list) or not all(isinstance(f, str) and f for f in self.fallbacks):
            raise ValidationError({"fallbacks": "Must be a list of provider types or slugs."})

    def as_route(self) -> dict:
        route = {"primary": self.primary, "fallback": list(self.fallbacks)}
        if self.cost_limit_per_1k is not None:
            route["cost_limit"] = float(self.cost_limit_per_1k)
        if self.performance_target_ms is not None:
            route["performance_target"] = self.performance_target_ms
        return route
