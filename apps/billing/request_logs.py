"""Request logs: the bodies the gateway hands over with a usage entry (only for tenants or keys that opted in),
turned into `RequestLog` rows by the ingester — redacted, truncated, given their expiry — and purged once expired.

The gateway does nothing for requests without the opt-in (one flag test per request); with it, it adds the
request and the answer to the usage entry (scrubbed of the provider's credentials, `apps/gateway/redaction.py`),
and that entry travels the ledger's own way (Redis stream or spool, the ingester). So the web process never
writes the database and never redacts or truncates: that work happens here, in the worker.

Redaction, before truncation (so a cut can never expose half of a redacted value):
- key names (settings.REQUEST_LOG_REDACT_KEYS plus the tenant's bare-name rules), case-insensitive, at any
  depth: the value becomes REDACTED;
- paths of the tenant's rules, rooted at `{"request": …, "response": …}`: `request.messages[*].content`,
  `response.choices[0].message.content`, `request.metadata.email` (`[*]` is every element, `[n]` one).
Each body is then cut to REQUEST_LOG_MAX_BYTES of UTF-8 (never inside a character) and marked.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta

import orjson
from django.conf import settings
from django.utils import timezone

from .models import RequestLog, UsageRecord

REDACTED = "[REDACTED]"
TRUNCATED = "…[truncated {n} bytes]"
_SEGMENT = re.compile(r"([^.\[\]]+)|\[(\*|\d+)\]")
PURGE_BATCH = 5000


def parse_rule(rule: str) -> tuple[str, ...] | None:
    """`request.messages[*].content` → ("request", "messages", "*", "content"); a bare key name → None."""
    if "." not in rule and "[" not in rule:
        return None
    return tuple(name or (int(index) if index.isdigit() else index) for name, index in _SEGMENT.findall(rule))


def _redact_keys(node, keys: frozenset[str]):
    if isinstance(node, dict):
        return {k: REDACTED if str(k).lower() in keys else _redact_keys(v, keys) for k, v in node.items()}
    if isinstance(node, list):
        return [_redact_keys(v, keys) for v in node]
    return node


def _redact_path(node, path: tuple, at: int = 0):
    if at == len(path):
        return REDACTED
    step = path[at]
    if step == "*" and isinstance(node, list):
        return [_redact_path(v, path, at + 1) for v in node]
    if isinstance(step, int) and isinstance(node, list) and 0 <= step < len(node):
        return [*node[:step], _redact_path(node[step], path, at + 1), *node[step + 1:]]
    if isinstance(step, str) and step != "*" and isinstance(node, dict) and step in node:
        return {**node, step: _redact_path(node[step], path, at + 1)}
    return node


def redact(doc, rules: list[str]):
    keys = {k.lower() for k in settings.REQUEST_LOG_REDACT_KEYS}
    paths = []
    for rule in rules or ():
        parsed = parse_rule(rule)
        if parsed is None:
            keys.add(rule.lower())
        elif parsed:
            paths.append(parsed)
    doc = _redact_keys(doc, frozenset(keys))
    for path in paths:
        doc = _redact_path(doc, path)
    return doc


def truncate(text: str, limit: int) -> tuple[str, bool]:
    data = text.encode()
    if len(data) <= limit:
        return text, False
    kept = data[:limit].decode(errors="ignore")  # never half a character
    return kept + TRUNCATED.format(n=len(data) - len(kept.encode())), True


def _json(value) -> str:
    return "" if value is None else orjson.dumps(value).decode()


def build(record: UsageRecord, payload: str, tenant) -> RequestLog:
    """One log from an entry's `log` payload (the JSON text of `{"request", "response"}`)."""
    try:
        doc = orjson.loads(payload)
    except orjson.JSONDecodeError:
        doc = {"request": payload}
    doc = redact(doc if isinstance(doc, dict) else {"request": doc}, tenant.request_log_redact)
    limit = settings.REQUEST_LOG_MAX_BYTES
    request_body, cut_request = truncate(_json(doc.get("request")), limit)
    response_body, cut_response = truncate(_json(doc.get("response")), limit)
    created: datetime = record.created_at
    return RequestLog(usage_id=record.request_id, tenant_id=tenant.id, created_at=created,
                      expires_at=created + timedelta(days=tenant.request_log_retention_days),
                      request_body=request_body, response_body=response_body, truncated=cut_request or cut_response)


def purge_expired(now: datetime | None = None) -> int:
    """Delete the logs whose retention passed, in batches (a long backlog must not hold one huge transaction)."""
    now = now or timezone.now()
    total = 0
    while True:
        ids = list(RequestLog.objects.filter(expires_at__lte=now).values_list("pk", flat=True)[:PURGE_BATCH])
        if not ids:
            return total
        total += RequestLog.objects.filter(pk__in=ids).delete()[0]
