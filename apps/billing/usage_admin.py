"""Read-only admin for the usage ledger: it is append-only, so nothing may be added, changed or deleted here.
A request's stored bodies (request logs) show inline under its usage record."""

from django.contrib import admin

from .models import RequestLog, UsageRecord


class ReadOnlyAdminMixin:
    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class RequestLogInline(ReadOnlyAdminMixin, admin.StackedInline):
    model = RequestLog
    fields = readonly_fields = ["created_at", "expires_at", "truncated", "request_body", "response_body"]
    extra = 0
    can_delete = False


@admin.register(RequestLog)
class RequestLogAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["usage", "tenant", "created_at", "expires_at", "truncated"]
    list_filter = ["tenant", "truncated"]
    date_hierarchy = "created_at"
    search_fields = ["usage__request_id"]
    list_select_related = ["tenant", "usage"]
    show_full_result_count = False
    readonly_fields = [field.name for field in RequestLog._meta.fields]


@admin.register(UsageRecord)
class UsageRecordAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["request_id", "created_at", "tenant", "api_key", "model_served", "provider", "status", "cost",
                    "prompt_tokens", "completion_tokens", "latency_ms", "streamed"]
    list_filter = ["tenant", "api_key", "model_served", "provider", "status"]
    date_hierarchy = "created_at"
    search_fields = ["request_id", "model_requested", "model_served", "user_label", "project_label"]
    list_select_related = ["tenant", "api_key"]
    show_full_result_count = False  # an exact COUNT(*) of a large ledger on every page is slow
    readonly_fields = [field.name for field in UsageRecord._meta.fields]
    inlines = [RequestLogInline]
