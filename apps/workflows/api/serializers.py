"""Request bodies (strict: unknown fields are a 400 naming them; the seeds' camelCase names are accepted) and
response shapes."""

from __future__ import annotations

from rest_framework import serializers

from apps.core.api import AliasedStrictSerializer, StrictModelSerializer
from apps.workflows.models import Token, TokenHistory, WorkflowDefinition, WorkflowEvent, WorkflowInstance

StrictSerializer = AliasedStrictSerializer  # the name this package's serializers use


class InstanceCreateSerializer(StrictSerializer):
    aliases = {"workflowId": "workflow_id", "initialData": "data", "initial_data": "data"}
    workflow_id = serializers.CharField(max_length=64)
    data = serializers.JSONField(required=False, help_text="Data of the initial tokens (alias initial_data).")
    metadata = serializers.JSONField(required=False)
    version = serializers.IntegerField(required=False, min_value=1, help_text="Default: the current version.")


class FireSerializer(StrictSerializer):
    aliases = {"transitionId": "transition_id", "tokenId": "token_id"}
    transition_id = serializers.CharField(max_length=120)
    token_id = serializers.UUIDField(required=False, help_text="The token that continues (default: the oldest).")
    data = serializers.JSONField(required=False, help_text="Deep-merged into the produced tokens' data.")


class TokenFireSerializer(StrictSerializer):
    aliases = {"transitionId": "transition_id"}
    transition_id = serializers.CharField(max_length=120)
    data = serializers.JSONField(required=False)


class CancelSerializer(StrictSerializer):
    reason = serializers.CharField(required=False, allow_blank=True, max_length=500)


class TokenCreateSerializer(StrictSerializer):
    aliases = {"workflowId": "workflow_id", "instanceId": "instance_id"}
    workflow_id = serializers.CharField(required=False, max_length=64, help_text="A new instance of this workflow.")
    instance_id = serializers.UUIDField(required=False, help_text="Or an existing instance.")
    place = serializers.CharField(max_length=100)
    data = serializers.JSONField(required=False)
    metadata = serializers.JSONField(required=False)


class TokenUpdateSerializer(StrictSerializer):
    data = serializers.JSONField()
    replace = serializers.BooleanField(required=False, default=False,
                                       help_text="Replace the data instead of deep-merging into it.")


class WorkflowSerializer(StrictModelSerializer):
    id = serializers.CharField(source="slug")
    version = serializers.IntegerField(source="current_version.number", allow_null=True)
    sound = serializers.BooleanField(source="current_version.sound", allow_null=True)
    definition = serializers.JSONField(source="current_version.net", allow_null=True)
    places = serializers.SerializerMethodField()
    transitions = serializers.SerializerMethodField()

    class Meta:
        model = WorkflowDefinition
        fields = ["id", "name", "description", "version", "sound", "places", "transitions", "definition",
                  "created_at", "updated_at"]

    def get_places(self, obj) -> list[str]:
        net = obj.current_version.net if obj.current_version else {}
        return [p["id"] for p in net.get("places", [])]

    def get_transitions(self, obj) -> list[dict]:
        """The seeds' listing shape: id, from_places, to_place (the first output), plus to_places."""
        net = obj.current_version.net if obj.current_version else {}
        out = []
        for t in net.get("transitions", []):
            inputs = [a if isinstance(a, str) else a["place"] for a in t["inputs"]]
            outputs = [a if isinstance(a, str) else a["place"] for a in t["outputs"]]
            out.append({"id": t["id"], "name": t.get("name", ""), "from_places": inputs,
                        "to_place": outputs[0] if outputs else None, "to_places": outputs})
        return out


class VersionSerializer(StrictSerializer):
    number = serializers.IntegerField()
    sound = serializers.BooleanField()
    digest = serializers.CharField()
    source_format = serializers.CharField()
    created_by = serializers.CharField()
    created_at = serializers.DateTimeField()
    definition = serializers.JSONField(source="net")
    source = serializers.JSONField()
    analysis = serializers.JSONField()


class TokenSerializer(StrictModelSerializer):
    workflow_id = serializers.CharField(source="instance.definition.slug")

    class Meta:
        model = Token
        fields = ["id", "instance", "workflow_id", "place", "status", "data", "metadata", "parents", "merged_into",
                  "arrived_at", "created_at", "updated_at"]


class HistorySerializer(StrictModelSerializer):
    class Meta:
        model = TokenHistory
        fields = ["id", "at", "kind", "transition", "from_place", "to_place", "actor", "data_change"]


class TokenDetailSerializer(TokenSerializer):
    history = HistorySerializer(many=True, read_only=True)

    class Meta(TokenSerializer.Meta):
        fields = [*TokenSerializer.Meta.fields, "history"]


class InstanceSerializer(StrictModelSerializer):
    workflow_id = serializers.CharField(source="definition.slug")
    version = serializers.IntegerField(source="version.number")
    current_place = serializers.SerializerMethodField(help_text="The place of the only token, when there is one.")

    class Meta:
        model = WorkflowInstance
        fields = ["id", "workflow_id", "version", "status", "marking", "current_place", "fire_count",
                  "enabled_since", "next_due_at", "created_by", "created_at", "updated_at", "finished_at"]

    def get_current_place(self, obj) -> str | None:
        marked = [p for p, n in (obj.marking or {}).items() if n]
        return marked[0] if len(marked) == 1 and obj.marking[marked[0]] == 1 else None


class InstanceDetailSerializer(InstanceSerializer):
    tokens = serializers.SerializerMethodField()

    class Meta(InstanceSerializer.Meta):
        fields = [*InstanceSerializer.Meta.fields, "tokens"]

    def get_tokens(self, obj) -> list[dict]:
        rows = obj.tokens.filter(status="active").select_related("instance__definition")
        return TokenSerializer(rows, many=True).data


class EventSerializer(StrictModelSerializer):
    class Meta:
        model = WorkflowEvent
        fields = ["id", "type", "workflow", "instance_id", "token_id", "data", "created_at"]


class FireResultSerializer(StrictSerializer):
    token = TokenSerializer()
    instance = InstanceSerializer()
    transition = serializers.CharField()
    consumed = serializers.ListField(child=serializers.CharField())
    created = serializers.ListField(child=serializers.CharField())
    guard = serializers.JSONField()
