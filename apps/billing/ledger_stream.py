"""The usage ledger's Redis names, shared by the writer (ledger.py, in the web process), the ingester
(ingest.py, in workers) and the in-flight reconciler (ledger_inflight.py)."""

from __future__ import annotations

STREAM = "cb:usage"  # one entry per answered /v1 request: {"e": JSON usage record}
GROUP = "ledger"  # the ingesters' consumer group
FIELDS = (
    "request_id", "created_at", "tenant_id", "api_key_id", "user_label", "project_label", "workflow_id", "agent_id",
    "endpoint", "provider", "deployment", "model_requested", "model_served", "strategy", "attempts",
    "prompt_tokens", "completion_tokens", "cached_tokens", "cache_write_tokens", "reasoning_tokens", "cost",
    "latency_ms", "ttft_ms", "status", "error_type", "streamed", "usage_estimated",
)

# Requests in flight (`LedgerWriter.begin`): request id → JSON marker, and request id → start time (unix
# seconds) for the reconciler's "older than" scan. Finalizing a request removes both in the pipeline that
# appends its record.
INFLIGHT = "cb:usage:inflight"
INFLIGHT_STARTED = "cb:usage:inflight:t"
INFLIGHT_LOST = "in_flight_lost"  # error_type of a record the reconciler wrote for a request that never ended
