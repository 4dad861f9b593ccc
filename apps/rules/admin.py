import json

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError

from apps.core.errors import Conflict

from .models import Rule
from .services import rule_check


class RuleForm(forms.ModelForm):
    class Meta:
        model = Rule
        fields = ["tenant", "name", "description", "condition", "enabled"]

    def clean(self):
        cleaned = super().clean()
        if self.errors or cleaned.get("tenant") is None:
            return cleaned
        candidate = Rule(pk=self.instance.pk, tenant=cleaned["tenant"], name=cleaned["name"],
                         condition=cleaned.get("condition"), enabled=cleaned.get("enabled", False))
        try:
            rule_check(tenant=candidate.tenant, rule=candidate,
                       old_name=self.instance.name if self.instance.pk else None, old_enabled=self.instance.enabled)
        except ValidationError as exc:
            self.add_error("condition", exc.message_dict["condition"])
        except Conflict as exc:
            self.add_error(None, exc.message)
        return cleaned


@admin.register(Rule)
class RuleAdmin(admin.ModelAdmin):
    """Operators' view of tenants' named rules; the condition is compiled (with the tenant's other rules) before
    it is saved, as the API does."""

    form = RuleForm
    list_display = ["name", "tenant", "enabled", "short_condition", "updated_at"]
    list_filter = ["enabled", "tenant"]
    search_fields = ["name", "description", "tenant__slug"]
    autocomplete_fields = ["tenant"]
    readonly_fields = ["created_at", "updated_at"]

    @admin.display(description="condition")
    def short_condition(self, obj):
        text = json.dumps(obj.condition)
        return text if len(text) <= 80 else text[:79] + "…"
