from django import forms
from django.contrib import admin

from . import cost_rules_admin, usage_admin  # noqa: F401 - they register their ModelAdmins
from .models import Budget, BudgetAlert


class BudgetForm(forms.ModelForm):
    webhook_secret = forms.CharField(
        label="Webhook secret", required=False, strip=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="Signs webhooks (X-CB-Signature: sha256=HMAC of the body). Typed once and stored encrypted; "
                  "never shown again. Blank keeps the current one.",
    )
    clear_webhook_secret = forms.BooleanField(label="Remove the webhook secret", required=False)

    class Meta:
        model = Budget
        fields = ["tenant", "name", "api_key", "user_label", "project_label", "model", "limit", "period", "action",
                  "downgrade_threshold", "alert_thresholds", "webhook_url", "enabled"]

    def clean_webhook_secret(self):
        value = self.cleaned_data.get("webhook_secret", "")
        if value and (len(value) > 1024 or any(ch in value for ch in "\r\n\x00")):
            raise forms.ValidationError("The secret has invalid characters or is too long.")
        return value

    def _post_clean(self):
        # Apply the secret before the model's clean(), which requires one when a webhook URL is set.
        if self.cleaned_data.get("clear_webhook_secret"):
            self.instance.set_webhook_secret("")
        if self.cleaned_data.get("webhook_secret"):
            self.instance.set_webhook_secret(self.cleaned_data["webhook_secret"])
        super()._post_clean()


class AlertInline(admin.TabularInline):
    model = BudgetAlert
    fields = ["period_start", "threshold", "spent", "limit", "created_at", "webhook_status", "webhook_attempts"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    max_num = 0
    ordering = ["-created_at"]

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Budget)
class BudgetAdmin(admin.ModelAdmin):
    form = BudgetForm
    list_display = ["__str__", "tenant", "scope", "model", "limit", "period", "action", "enabled",
                    "webhook_secret_hint", "updated_at"]
    list_filter = ["tenant", "scope", "period", "action", "enabled"]
    search_fields = ["name", "user_label", "project_label", "model", "tenant__slug"]
    autocomplete_fields = ["tenant"]
    raw_id_fields = ["api_key"]
    readonly_fields = ["scope", "webhook_secret_hint", "created_at", "updated_at"]
    inlines = [AlertInline]


@admin.register(BudgetAlert)
class BudgetAlertAdmin(admin.ModelAdmin):
    list_display = ["budget", "period_start", "threshold", "spent", "limit", "created_at", "webhook_status",
                    "webhook_attempts"]
    list_filter = ["webhook_status", "budget__tenant", "budget__period"]
    search_fields = ["budget__name", "budget__tenant__slug"]
    list_select_related = ["budget", "budget__tenant"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
