"""Operators' view: agents (validated through the same checks as the API), place-agent bindings, and executions
read-only with their conversation, output, usage and cost; a cancel action."""

from __future__ import annotations

from django.contrib import admin, messages
from django.core.exceptions import ValidationError

from apps.core.errors import ApiError

from . import services
from .models import FINISHED, Agent, AgentExecution, PlaceAgent


class PlaceAgentInline(admin.TabularInline):
    model = PlaceAgent
    extra = 0
    fields = ["workflow", "place", "auto_transition", "enabled"]
    readonly_fields = fields
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Agent)
class AgentAdmin(admin.ModelAdmin):
    list_display = ["name", "tenant", "model", "json_mode", "enabled", "updated_at"]
    list_filter = ["tenant", "enabled"]
    search_fields = ["name", "tenant__slug", "model"]
    readonly_fields = ["provider", "created_at", "updated_at"]
    inlines = [PlaceAgentInline]

    def save_model(self, request, obj, form, change):
        try:
            services.agent_clean(obj)
        except ValidationError as exc:
            raise ValidationError(exc.message_dict) from None
        super().save_model(request, obj, form, change)
        services.bindings_changed()


@admin.register(PlaceAgent)
class PlaceAgentAdmin(admin.ModelAdmin):
    list_display = ["workflow", "place", "agent", "tenant", "auto_transition", "enabled"]
    list_filter = ["tenant", "enabled", "workflow"]
    search_fields = ["workflow", "place", "agent__name"]

    def save_model(self, request, obj, form, change):
        services.place_agent_clean(obj)
        super().save_model(request, obj, form, change)
        services.bindings_changed()

    def delete_model(self, request, obj):
        super().delete_model(request, obj)
        services.bindings_changed()


@admin.register(AgentExecution)
class AgentExecutionAdmin(admin.ModelAdmin):
    list_display = ["id", "agent", "tenant", "status", "workflow", "model", "total_tokens", "cost", "attempts",
                    "created_at"]
    list_filter = ["status", "tenant", "workflow"]
    search_fields = ["id", "agent__name", "token_id", "instance_id"]
    actions = ["cancel"]

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in AgentExecution._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return request.method in ("GET", "HEAD") and super().has_view_permission(request, obj)

    @admin.action(description="Cancel the selected pending or running executions")
    def cancel(self, request, queryset):
        done = 0
        for execution in queryset.exclude(status__in=FINISHED):
            try:
                services.execution_cancel(execution.tenant, execution=execution)
                done += 1
            except ApiError as error:
                self.message_user(request, error.message, messages.WARNING)
        self.message_user(request, f"{done} cancelled.")
