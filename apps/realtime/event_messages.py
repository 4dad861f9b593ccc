"""What a relayed workflow event looks like on the channel layer, to subscribers and on NATS."""

from __future__ import annotations

import re

LAYER_TYPE = "cb.event"  # relayed workflow events
STREAM_MESSAGE = "cb.stream"  # cost, LLM and completion stream messages (`{"payload": …}`)
_SUBJECT_TOKEN = re.compile(r"[^A-Za-z0-9_-]")


def event_message(event, seq: int) -> dict:
    """`event` is a `WorkflowEvent`; `seq` its publish sequence (what subscribers resume by)."""
    return {"id": event.id, "seq": seq, "tenantId": event.tenant_id, "workflowId": event.workflow,
            "instanceId": str(event.instance_id) if event.instance_id else None,
            "tokenId": str(event.token_id) if event.token_id else None, "eventType": event.type,
            "data": event.data or {}, "timestamp": event.created_at.isoformat()}


def _subject_token(value) -> str:
    return _SUBJECT_TOKEN.sub("_", str(value)) or "_"


def event_place(message: dict) -> str:
    """The place an event is about: a moved token's destination, a new token's place, else `_`."""
    data = message.get("data") or {}
    for key in ("place", "to_place", "toPlace"):
        if data.get(key):
            return str(data[key])
    places = data.get("to_places") or []
    return str(places[0]) if places else "_"


def nats_subject(prefix: str, message: dict) -> str:
    """The original's shape: `<prefix>.<tenant>.workflows.<workflow>.places.<place>.tokens.<token>`; events
    about no token (instance status, saves) end `….events.<type>` instead."""
    base = f"{prefix}.{message['tenantId']}.workflows.{_subject_token(message['workflowId'])}"
    if message.get("tokenId"):
        return (f"{base}.places.{_subject_token(event_place(message))}"
                f".tokens.{_subject_token(message['tokenId'])}")
    return f"{base}.events.{_subject_token(message['eventType'])}"
