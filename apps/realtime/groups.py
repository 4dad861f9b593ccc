"""Channel-layer group names. Every name carries the tenant id, so a subscriber that guessed another tenant's
object id would still sit in a group of its own tenant (access is checked before joining anyway).
Names stay within what channel layers accept: ASCII letters, digits, `-`, `_`, `.`, under 100 characters."""

from __future__ import annotations

import hashlib
import re

_SAFE = re.compile(r"^[A-Za-z0-9_.-]{1,60}$")


def _part(value) -> str:
    text = str(value)
    return text if _SAFE.match(text) else "h" + hashlib.sha256(text.encode()).hexdigest()[:40]


def tenant(tenant_id) -> str:
    return f"cb-tn-{tenant_id}"


def workflow(tenant_id, slug) -> str:
    return f"cb-wf-{tenant_id}-{_part(slug)}"


def instance(tenant_id, instance_id) -> str:
    return f"cb-in-{tenant_id}-{_part(instance_id)}"


def token(tenant_id, token_id) -> str:
    return f"cb-tk-{tenant_id}-{_part(token_id)}"


def execution(tenant_id, execution_id) -> str:
    return f"cb-ex-{tenant_id}-{_part(execution_id)}"


def cost(tenant_id) -> str:
    return f"cb-cost-{tenant_id}"


def completion(tenant_id, completion_id) -> str:
    return f"cb-cmpl-{tenant_id}-{_part(completion_id)}"


def llm(tenant_id, request_id) -> str:
    return f"cb-llm-{tenant_id}-{_part(request_id)}"


def for_event(event: dict) -> list[str]:
    """The groups one relayed workflow event goes to (see `event_messages.event_message`)."""
    t = event["tenantId"]
    names = [tenant(t), workflow(t, event["workflowId"])]
    if event.get("instanceId"):
        names.append(instance(t, event["instanceId"]))
    tokens = [event.get("tokenId")] + list((event.get("data") or {}).get("consumed") or [])
    names += [token(t, tid) for tid in dict.fromkeys(tokens) if tid]
    execution_id = (event.get("data") or {}).get("execution_id")
    if execution_id:
        names.append(execution(t, execution_id))
    return names
