"""Admin for cost-optimisation rules; `CostRule.clean()` validates conditions, action and params."""

from django.contrib import admin

from .models import CostRule


@admin.register(CostRule)
class CostRuleAdmin(admin.ModelAdmin):
    list_display = ["name", "tenant", "priority", "action", "enabled", "stop_processing", "updated_at"]
    list_filter = ["action", "enabled", ("tenant", admin.EmptyFieldListFilter), "tenant"]
    search_fields = ["name", "tenant__slug"]
    list_select_related = ["tenant"]
    autocomplete_fields = ["tenant"]
    ordering = ["priority", "id"]
    fields = ["tenant", "name", "priority", "enabled", "conditions", "action", "params", "stop_processing",
              "created_at", "updated_at"]
    readonly_fields = ["created_at", "updated_at"]
