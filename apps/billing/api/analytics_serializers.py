"""What the analytics views answer, for the schema (the views build the dicts; these say their shape)."""

from __future__ import annotations

from rest_framework import serializers

from apps.core.api import StrictSerializer


class FiguresSerializer(StrictSerializer):
    cost = serializers.FloatField(help_text="USD.")
    requests = serializers.IntegerField()
    errors = serializers.IntegerField()
    error_rate = serializers.FloatField()
    prompt_tokens = serializers.IntegerField()
    completion_tokens = serializers.IntegerField()
    cached_tokens = serializers.IntegerField()
    reasoning_tokens = serializers.IntegerField()
    total_tokens = serializers.IntegerField()
    avg_latency_ms = serializers.FloatField(allow_null=True)


class RangeSerializer(StrictSerializer):
    start = serializers.DateField()
    end = serializers.DateField()


class SummarySerializer(RangeSerializer, FiguresSerializer):
    pass


class DayFiguresSerializer(FiguresSerializer):
    day = serializers.DateField()


class DailySerializer(RangeSerializer):
    results = DayFiguresSerializer(many=True)


class MonthFiguresSerializer(FiguresSerializer):
    month = serializers.CharField(help_text="YYYY-MM.")


class MonthlySerializer(RangeSerializer):
    results = MonthFiguresSerializer(many=True)


class GroupFiguresSerializer(FiguresSerializer):
    key = serializers.JSONField(allow_null=True, help_text="The group's value (a key id for api_key); null: none.")
    share = serializers.FloatField(help_text="Of the range's spend, 0…1.")
    name = serializers.CharField(required=False, allow_null=True, help_text="api_key only: the key's name.")
    hint = serializers.CharField(required=False, allow_null=True, help_text="api_key only: the key's hint.")


class BreakdownSerializer(RangeSerializer):
    dimension = serializers.CharField()
    total_cost = serializers.FloatField(help_text="USD.")
    groups = serializers.IntegerField(help_text="How many groups the range has (results holds ?limit= of them).")
    results = GroupFiguresSerializer(many=True)


class TopModelsSerializer(RangeSerializer):
    total_cost = serializers.FloatField(help_text="USD.")
    results = GroupFiguresSerializer(many=True)


class ProjectionSerializer(StrictSerializer):
    month = serializers.CharField(help_text="YYYY-MM.")
    month_to_date = serializers.FloatField(help_text="USD.")
    days_elapsed = serializers.IntegerField()
    days_in_month = serializers.IntegerField()
    projected_month_end = serializers.FloatField(help_text="USD.")


class LatencySerializer(StrictSerializer):
    avg = serializers.FloatField(allow_null=True)
    p50 = serializers.FloatField(allow_null=True)
    p95 = serializers.FloatField(allow_null=True)
    p99 = serializers.FloatField(allow_null=True)


class PerformanceSerializer(RangeSerializer):
    requests = serializers.IntegerField()
    errors = serializers.IntegerField()
    error_rate = serializers.FloatField()
    latency_ms = LatencySerializer(help_text="Of successful requests; null without any.")


def _nullable(field_class, **kwargs):
    return field_class(allow_null=True, **kwargs)


class GenerationDataSerializer(StrictSerializer):
    """OpenRouter's generation object (fields it has that the ledger cannot know are null)."""

    id = serializers.CharField()
    model = serializers.CharField(allow_blank=True)
    model_requested = serializers.CharField(allow_blank=True)
    provider_name = _nullable(serializers.CharField, allow_blank=True)
    created_at = serializers.DateTimeField()
    total_cost = serializers.FloatField(help_text="USD.")
    usage = serializers.FloatField(help_text="USD (OpenRouter's name for the same figure).")
    is_byok = serializers.BooleanField()
    upstream_id = _nullable(serializers.CharField)
    cache_discount = _nullable(serializers.FloatField)
    streamed = serializers.BooleanField()
    cancelled = serializers.BooleanField()
    latency = serializers.FloatField(help_text="Milliseconds.")
    generation_time = serializers.FloatField(help_text="Milliseconds.")
    time_to_first_token = _nullable(serializers.FloatField)
    moderation_latency = _nullable(serializers.FloatField)
    finish_reason = _nullable(serializers.CharField)
    native_finish_reason = _nullable(serializers.CharField)
    status = serializers.IntegerField()
    error_type = _nullable(serializers.CharField)
    tokens_prompt = serializers.IntegerField()
    tokens_completion = serializers.IntegerField()
    native_tokens_prompt = serializers.IntegerField()
    native_tokens_completion = serializers.IntegerField()
    native_tokens_reasoning = _nullable(serializers.IntegerField)
    native_tokens_cached = _nullable(serializers.IntegerField)
    native_tokens_cache_write = _nullable(serializers.IntegerField)
    usage_estimated = serializers.BooleanField()
    num_media_prompt = _nullable(serializers.IntegerField)
    num_media_completion = _nullable(serializers.IntegerField)
    num_search_results = _nullable(serializers.IntegerField)
    origin = serializers.CharField(allow_blank=True)
    app_id = _nullable(serializers.IntegerField)
    external_user = _nullable(serializers.CharField)
    project = _nullable(serializers.CharField)
    router = _nullable(serializers.CharField)
    api_type = serializers.CharField(allow_blank=True)


class GenerationSerializer(StrictSerializer):
    data = GenerationDataSerializer()
