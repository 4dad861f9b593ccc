"""Operators' view: workflows with their net drawn (token counts over running instances), versions and their
analysis; instances with their marking highlighted, tokens, events; token history; a cancel action."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import Count
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

from apps.core.errors import ApiError

from . import services
from .drawing import net_svg
from .models import Token, TokenHistory, WorkflowDefinition, WorkflowEvent, WorkflowInstance, WorkflowVersion
from .netcache import net_for_version


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class VersionInline(ReadOnlyInline):
    model = WorkflowVersion
    fields = ["number", "sound", "summary", "created_by", "created_at"]
    readonly_fields = fields
    show_change_link = False

    @admin.display(description="analysis")
    def summary(self, obj):
        return obj.analysis.get("summary", "")


def _findings(analysis: dict):
    rows = analysis.get("findings") or []
    if not rows:
        return analysis.get("summary", "")
    return format_html("<p>{}</p><ul>{}</ul>", analysis.get("summary", ""), format_html_join(
        "", "<li><b>{}</b>: {} <small>{}</small></li>",
        ((f["kind"], f["message"], " → ".join(f.get("path") or [])) for f in rows)))


@admin.register(WorkflowDefinition)
class WorkflowDefinitionAdmin(admin.ModelAdmin):
    list_display = ["slug", "name", "tenant", "version_number", "sound", "updated_at"]
    list_filter = ["tenant"]
    search_fields = ["slug", "name", "tenant__slug"]
    readonly_fields = ["tenant", "slug", "name", "description", "current_version", "drawing", "analysis",
                       "created_at", "updated_at"]
    fields = readonly_fields
    inlines = [VersionInline]

    def has_add_permission(self, request):
        return False  # definitions are saved through the API or `manage.py loadworkflow`, which validate them

    def has_change_permission(self, request, obj=None):
        return False

    @admin.display(description="version")
    def version_number(self, obj):
        return obj.current_version.number if obj.current_version else None

    @admin.display(boolean=True)
    def sound(self, obj):
        return obj.current_version.sound if obj.current_version else None

    @admin.display(description="net (tokens of running instances on this version)")
    def drawing(self, obj):
        if obj.current_version is None:
            return "-"
        net, _ = net_for_version(obj.current_version_id)
        counts: dict[str, int] = {}
        for row in Token.objects.filter(instance__version=obj.current_version, instance__status="running",
                                        status="active").values("place").annotate(n=Count("id")):
            counts[row["place"]] = row["n"]
        return mark_safe(net_svg(net, marking=counts, title=obj.slug))  # noqa: S308 - escaped by net_svg

    @admin.display(description="analysis")
    def analysis(self, obj):
        return _findings(obj.current_version.analysis) if obj.current_version else "-"


class TokenInline(ReadOnlyInline):
    model = Token
    fields = ["id", "place", "status", "data", "parents", "merged_into", "arrived_at"]
    readonly_fields = fields


@admin.register(WorkflowInstance)
class WorkflowInstanceAdmin(admin.ModelAdmin):
    list_display = ["id", "definition", "version_number", "status", "marking", "fire_count", "created_at"]
    list_filter = ["status", "definition__tenant"]
    search_fields = ["id", "definition__slug"]
    readonly_fields = ["tenant", "definition", "version", "status", "drawing", "marking", "enabled_since",
                       "next_due_at", "fire_count", "created_by", "created_at", "updated_at", "finished_at", "events"]
    fields = readonly_fields
    inlines = [TokenInline]
    actions = ["cancel"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("definition", "version", "tenant")

    @admin.display(description="version")
    def version_number(self, obj):
        return obj.version.number

    @admin.display(description="net (this instance's marking)")
    def drawing(self, obj):
        net, _ = net_for_version(obj.version_id)
        return mark_safe(net_svg(net, marking=obj.marking, title=str(obj.id)))  # noqa: S308 - escaped by net_svg

    @admin.display(description="last events")
    def events(self, obj):
        rows = WorkflowEvent.objects.filter(instance_id=obj.id).order_by("-id")[:50]
        return format_html("<ol reversed>{}</ol>", format_html_join(
            "", "<li>#{} {} <code>{}</code> {}</li>",
            ((e.id, e.type, e.data.get("transition", ""), e.created_at.isoformat(timespec="seconds")) for e in rows)))

    @admin.action(description="Cancel the selected instances")
    def cancel(self, request, queryset):
        done = 0
        for instance in queryset:
            try:
                services.instance_cancel(instance.tenant, instance_id=instance.id, actor=f"admin:{request.user}")
                done += 1
            except ApiError as exc:
                self.message_user(request, f"{instance.id}: {exc.message}", messages.WARNING)
        if done:
            self.message_user(request, f"Cancelled {done} instance(s).", messages.SUCCESS)


class HistoryInline(ReadOnlyInline):
    model = TokenHistory
    fields = ["at", "kind", "transition", "from_place", "to_place", "actor", "data_change"]
    readonly_fields = fields
    show_change_link = False


@admin.register(Token)
class TokenAdmin(admin.ModelAdmin):
    list_display = ["id", "instance", "place", "status", "arrived_at"]
    list_filter = ["status"]
    search_fields = ["id", "place", "instance__id"]
    readonly_fields = ["id", "tenant", "instance", "place", "status", "data", "metadata", "parents", "merged_into",
                       "arrived_at", "created_at", "updated_at"]
    fields = readonly_fields
    inlines = [HistoryInline]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(WorkflowEvent)
class WorkflowEventAdmin(admin.ModelAdmin):
    """The outbox, read-only: it is append-only."""

    list_display = ["id", "type", "workflow", "instance_id", "token_id", "created_at", "published_at"]
    list_filter = ["type"]
    search_fields = ["workflow", "instance_id", "token_id"]
    readonly_fields = ["id", "tenant", "workflow", "instance_id", "token_id", "type", "data", "created_at",
                       "published_at"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
