from django import forms
from django.contrib import admin, messages
from django.template.response import TemplateResponse
from django.utils import timezone

from .models import ApiKey, Membership, Tenant
from .services import api_key_issue_secret, validate_scopes


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ["user"]


@admin.register(Tenant)
class TenantAdmin(admin.ModelAdmin):
    list_display = ["slug", "name", "is_active", "default_routing_strategy", "created_at"]
    list_filter = ["is_active", "default_routing_strategy"]
    search_fields = ["slug", "name"]
    inlines = [MembershipInline]


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ["user", "tenant", "role", "created_at"]
    list_filter = ["role", "tenant"]
    search_fields = ["user__username", "user__email", "tenant__slug"]
    autocomplete_fields = ["user", "tenant"]


class ApiKeyForm(forms.ModelForm):
    scopes = forms.MultipleChoiceField(choices=ApiKey.Scope.choices, widget=forms.CheckboxSelectMultiple,
                                       initial=[ApiKey.Scope.INFERENCE])

    class Meta:
        model = ApiKey
        fields = ["tenant", "name", "user", "user_label", "project_label", "scopes", "expires_at", "rate_limit_rpm",
                  "rate_limit_tpm", "max_concurrent", "request_logging"]

    def clean_scopes(self):
        return validate_scopes(list(self.cleaned_data["scopes"]))


class KeyStatusFilter(admin.SimpleListFilter):
    title = "status"
    parameter_name = "status"

    def lookups(self, request, model_admin):
        return [("active", "active"), ("revoked", "revoked"), ("expired", "expired")]

    def queryset(self, request, queryset):
        now = timezone.now()
        if self.value() == "active":
            return queryset.filter(revoked_at__isnull=True).exclude(expires_at__lte=now)
        if self.value() == "revoked":
            return queryset.filter(revoked_at__isnull=False)
        if self.value() == "expired":
            return queryset.filter(revoked_at__isnull=True, expires_at__lte=now)
        return queryset


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    form = ApiKeyForm
    list_display = ["name", "tenant", "hint", "scope_list", "status", "user_label", "project_label",
                    "last_used_at", "expires_at", "created_at"]
    list_filter = [KeyStatusFilter, "tenant", "created_at"]
    search_fields = ["name", "hint", "tenant__slug", "user_label", "project_label"]
    readonly_fields = ["hint", "revoked_at", "last_used_at", "created_at"]
    autocomplete_fields = ["tenant", "user"]
    actions = ["revoke_keys"]

    @admin.display(description="scopes")
    def scope_list(self, obj):
        return ", ".join(obj.scopes or [])

    @admin.display(description="status")
    def status(self, obj):
        return "revoked" if obj.is_revoked else "expired" if obj.is_expired else "active"

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return []
        return [*self.readonly_fields, "tenant"]

    def get_fields(self, request, obj=None):
        fields = ["tenant", "name", "user", "user_label", "project_label", "scopes", "expires_at", "rate_limit_rpm",
                  "rate_limit_tpm", "max_concurrent", "request_logging"]
        return fields if obj is None else [*fields, "hint", "revoked_at", "last_used_at", "created_at"]

    def save_model(self, request, obj, form, change):
        if not change:
            request._cb_new_api_key_secret = api_key_issue_secret(api_key=obj)
        super().save_model(request, obj, form, change)

    def response_add(self, request, obj, post_url_continue=None):
        secret = getattr(request, "_cb_new_api_key_secret", None)
        if secret is None:
            return super().response_add(request, obj, post_url_continue)
        context = {**self.admin_site.each_context(request), "title": "API key created", "key": obj,
                   "secret": secret, "opts": self.model._meta}
        response = TemplateResponse(request, "admin/tenants/apikey/created.html", context)
        response["Cache-Control"] = "no-store"
        return response

    @admin.action(description="Revoke selected API keys")
    def revoke_keys(self, request, queryset):
        count = 0
        for key in queryset.filter(revoked_at__isnull=True):
            key.revoked_at = timezone.now()
            key.save(update_fields=["revoked_at"])
            count += 1
        self.message_user(request, f"Revoked {count} key(s).", messages.SUCCESS)
