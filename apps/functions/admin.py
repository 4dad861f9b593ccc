"""Operators' view: functions (validated like the API; secrets write-only), their triggers and chains, and every
execution (read-only, with a cancel action)."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.utils import timezone

from apps.core.errors import ApiError

from . import services, triggers
from .models import Function, FunctionChain, FunctionExecution, FunctionTrigger
from .validation import chain_problems, function_problems, next_slot, trigger_problems


class _ValidatedForm(forms.ModelForm):
    """Runs the services' checks on the instance the form built, so the admin accepts what the API accepts."""

    problems = staticmethod(lambda instance: {})

    def _post_clean(self):
        super()._post_clean()
        found = {name: msgs for name, msgs in self.problems(self.instance).items() if msgs}
        if found:
            self._update_errors(ValidationError({
                (name if name in self.fields else None): msgs for name, msgs in found.items()}))


class FunctionForm(_ValidatedForm):
    problems = staticmethod(function_problems)
    new_secret = forms.CharField(required=False, widget=forms.PasswordInput, strip=False,
                                 help_text="http: a new HMAC key (stored encrypted; blank keeps the current one).")

    class Meta:
        model = Function
        fields = ["tenant", "name", "description", "runtime", "config", "input_schema", "output_schema",
                  "timeout_seconds", "max_attempts", "backoff", "retry_delay_seconds", "retry_max_delay_seconds",
                  "retry_on", "enabled", "tags"]


class TriggerForm(_ValidatedForm):
    problems = staticmethod(trigger_problems)

    class Meta:
        model = FunctionTrigger
        fields = ["tenant", "function", "kind", "workflow", "config", "condition", "input_mapping", "enabled"]


class ChainForm(_ValidatedForm):
    problems = staticmethod(chain_problems)

    class Meta:
        model = FunctionChain
        fields = ["tenant", "function", "next_function", "on", "condition", "input_mapping", "delay_seconds",
                  "enabled"]


@admin.register(Function)
class FunctionAdmin(admin.ModelAdmin):
    form = FunctionForm
    list_display = ["name", "tenant", "runtime", "enabled", "version", "updated_at"]
    list_filter = ["runtime", "enabled", "tenant"]
    search_fields = ["name", "description", "tenant__slug"]
    readonly_fields = ["version", "has_secret", "created_by", "created_at", "updated_at"]

    def save_model(self, request, obj, form, change):
        if form.cleaned_data.get("new_secret"):
            obj.set_secret(form.cleaned_data["new_secret"])
        if change and form.changed_data:
            obj.version += 1
        super().save_model(request, obj, form, change)
        triggers.index_bump(obj.tenant_id)


@admin.register(FunctionTrigger)
class FunctionTriggerAdmin(admin.ModelAdmin):
    form = TriggerForm
    list_display = ["kind", "function", "workflow", "enabled", "next_run_at", "last_run_at", "tenant"]
    list_filter = ["kind", "enabled", "tenant"]
    search_fields = ["function__name", "workflow"]
    readonly_fields = ["next_run_at", "last_run_at", "created_at", "updated_at"]

    def save_model(self, request, obj, form, change):
        obj.tenant_id = obj.function.tenant_id
        obj.next_run_at = next_slot(obj.config, timezone.now()) if obj.kind == "schedule" and obj.enabled else None
        super().save_model(request, obj, form, change)
        triggers.index_bump(obj.tenant_id)


@admin.register(FunctionChain)
class FunctionChainAdmin(admin.ModelAdmin):
    form = ChainForm
    list_display = ["function", "on", "next_function", "delay_seconds", "enabled", "tenant"]
    list_filter = ["on", "enabled", "tenant"]


@admin.register(FunctionExecution)
class FunctionExecutionAdmin(admin.ModelAdmin):
    list_display = ["id", "function", "status", "trigger", "attempts", "error_code", "created_at", "duration_ms"]
    list_filter = ["status", "trigger", "tenant"]
    search_fields = ["id", "function__name", "instance_id", "token_id", "agent_execution_id"]
    actions = ["cancel"]

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in FunctionExecution._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    @admin.action(description="Cancel the selected pending or running executions")
    def cancel(self, request, queryset):
        done = 0
        for execution in queryset.select_related("tenant"):
            try:
                services.execution_cancel(execution.tenant, execution_id=execution.id)
                done += 1
            except ApiError as exc:
                self.message_user(request, f"{execution.id}: {exc.message}", messages.WARNING)
        self.message_user(request, f"Cancelled {done} execution(s).")
