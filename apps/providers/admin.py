from django import forms
from django.contrib import admin, messages

from apps.core.crypto import DecryptionError

from .models import ModelEntry, ModelRoute, Provider, ProviderCredential, Source, VirtualModel
from .services import credential_reencrypt

PER_MILLION = 1_000_000


class ReadOnlyFromEnvironment:
    """Rows mirrored from environment variables cannot be edited or deleted here."""

    def has_change_permission(self, request, obj=None):
        if obj is not None and obj.source == Source.ENVIRONMENT:
            return False
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        if obj is not None and obj.source == Source.ENVIRONMENT:
            return False
        return super().has_delete_permission(request, obj)


class CredentialInline(admin.TabularInline):
    model = ProviderCredential
    fields = ["name", "hint", "enabled", "source", "env_var", "created_at", "rotated_at", "last_used_at"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Provider)
class ProviderAdmin(ReadOnlyFromEnvironment, admin.ModelAdmin):
    list_display = ["name", "slug", "owner", "type", "effective_base_url", "enabled", "priority", "source",
                    "key_hints"]
    list_filter = ["type", "enabled", "source", "collects_data", ("tenant", admin.EmptyFieldListFilter), "tenant"]
    search_fields = ["name", "slug", "base_url", "tenant__slug"]
    autocomplete_fields = ["tenant"]
    inlines = [CredentialInline]
    readonly_fields = ["source", "created_at", "updated_at"]

    @admin.display(description="owner")
    def owner(self, obj):
        return obj.tenant.slug if obj.tenant_id else "global"

    @admin.display(description="keys")
    def key_hints(self, obj):
        return ", ".join(c.hint for c in obj.credentials.all() if c.enabled) or "—"

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("tenant").prefetch_related("credentials")


class CredentialForm(forms.ModelForm):
    api_key = forms.CharField(
        label="API key", required=False, strip=True,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="Typed once and stored encrypted; it is never shown again. On an existing credential, "
                  "a new value replaces (rotates) the key and blank keeps it.",
    )

    class Meta:
        model = ProviderCredential
        fields = ["provider", "name", "enabled"]

    def clean_api_key(self):
        value = self.cleaned_data.get("api_key", "")
        if not value and not (self.instance and self.instance.pk):
            raise forms.ValidationError("Enter the provider's API key.")
        if value and any(ch in value for ch in "\r\n\x00"):
            raise forms.ValidationError("The key contains invalid characters.")
        return value

    def save(self, commit=True):
        credential = super().save(commit=False)
        if self.cleaned_data.get("api_key"):
            credential.set_secret(self.cleaned_data["api_key"])
        if commit:
            credential.save()
        return credential


@admin.register(ProviderCredential)
class ProviderCredentialAdmin(ReadOnlyFromEnvironment, admin.ModelAdmin):
    form = CredentialForm
    list_display = ["__str__", "provider", "hint", "enabled", "source", "created_at", "rotated_at", "last_used_at"]
    list_filter = ["enabled", "source", "provider__type", "provider__tenant"]
    search_fields = ["name", "hint", "provider__name", "provider__slug"]
    readonly_fields = ["hint", "source", "env_var", "created_at", "rotated_at", "last_used_at"]
    autocomplete_fields = ["provider"]
    actions = ["reencrypt"]

    def get_readonly_fields(self, request, obj=None):
        return self.readonly_fields if obj is None else ["provider", *self.readonly_fields]

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "provider":
            kwargs["queryset"] = Provider.objects.filter(source=Source.DATABASE)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    @admin.action(description="Re-encrypt with the current primary ENCRYPTION_KEY (after rotating keys)")
    def reencrypt(self, request, queryset):
        done = failed = 0
        for credential in queryset:
            try:
                done += credential_reencrypt(credential=credential)
            except DecryptionError:
                failed += 1
        self.message_user(request, f"Re-encrypted {done} credential(s).", messages.SUCCESS)
        if failed:
            self.message_user(request, f"{failed} credential(s) could not be decrypted with any configured key; "
                                       "re-enter their API keys.", messages.ERROR)


@admin.register(ModelEntry)
class ModelEntryAdmin(admin.ModelAdmin):
    list_display = ["model_id", "provider_type", "provider", "mode", "input_per_million", "output_per_million",
                    "context_window", "capability_list", "enabled"]
    list_filter = ["provider_type", "mode", "enabled", "supports_tools", "supports_vision", "supports_json_mode",
                   "supports_streaming"]
    search_fields = ["model_id", "upstream_name", "aliases", "tags"]
    autocomplete_fields = ["provider"]

    @admin.display(description="input $/1M")
    def input_per_million(self, obj):
        return f"{obj.input_price * PER_MILLION:.4f}".rstrip("0").rstrip(".")

    @admin.display(description="output $/1M")
    def output_per_million(self, obj):
        return f"{obj.output_price * PER_MILLION:.4f}".rstrip("0").rstrip(".")

    @admin.display(description="capabilities")
    def capability_list(self, obj):
        return ", ".join(obj.capabilities)


@admin.register(VirtualModel)
class VirtualModelAdmin(admin.ModelAdmin):
    list_display = ["name", "owner", "strategy", "candidate_list", "enabled", "updated_at"]
    list_filter = ["strategy", "enabled", ("tenant", admin.EmptyFieldListFilter), "tenant"]
    search_fields = ["name", "description", "tenant__slug"]
    autocomplete_fields = ["tenant"]

    @admin.display(description="owner")
    def owner(self, obj):
        return obj.tenant.slug if obj.tenant_id else "global"

    @admin.display(description="candidates")
    def candidate_list(self, obj):
        return ", ".join(obj.candidates) or "every reachable chat model"


@admin.register(ModelRoute)
class ModelRouteAdmin(admin.ModelAdmin):
    list_display = ["model", "owner", "primary", "fallback_list", "cost_limit_per_1k", "performance_target_ms",
                    "enabled"]
    list_filter = ["enabled", ("tenant", admin.EmptyFieldListFilter), "tenant"]
    search_fields = ["model", "primary", "tenant__slug"]
    autocomplete_fields = ["tenant"]

    @admin.display(description="owner")
    def owner(self, obj):
        return obj.tenant.slug if obj.tenant_id else "global"

    @admin.display(description="fallbacks")
    def fallback_list(self, obj):
        return ", ".join(obj.fallbacks) or "—"
