"""Who a WebSocket (or the SSE endpoint) acts for: an API key in the `connection_init` payload or the
handshake headers, else the admin session cookie — through the one `graphql_principal` every GraphQL request
uses. A session is honoured only from a page of our own origin (a browser sends the cookie to any site's
socket; the Origin header says whose page opened it)."""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlsplit

from channels.db import database_sync_to_async

from apps.tenants.graphql_auth import Principal, graphql_principal

# Payload keys clients put credentials under (Apollo's `authToken`, graphql-ws's free-form payloads).
_PAYLOAD_ALIASES = {"apikey": "x-api-key", "api_key": "x-api-key", "authtoken": "authorization",
                    "token": "authorization", "tenant": "x-cb-tenant"}


def scope_headers(scope) -> dict[str, str]:
    return {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in scope.get("headers", [])}


def payload_headers(payload) -> dict[str, str]:
    """`{"Authorization": "Bearer cb-…"}`, `{"apiKey": "cb-…"}`, `{"headers": {...}}` → header names."""
    if not isinstance(payload, Mapping):
        return {}
    merged = dict(payload.get("headers") or {}) if isinstance(payload.get("headers"), Mapping) else {}
    merged.update({k: v for k, v in payload.items() if k != "headers"})
    out = {}
    for key, value in merged.items():
        if not isinstance(value, str):
            continue
        name = _PAYLOAD_ALIASES.get(str(key).lower(), str(key).lower())
        bare = name == "authorization" and " " not in value.strip()
        out[name] = f"Bearer {value.strip()}" if bare else value
    return out


def _same_origin(headers: dict) -> bool:
    origin = headers.get("origin")
    return not origin or urlsplit(origin).netloc.lower() == headers.get("host", "").lower()


def _principal(scope, extra: dict) -> Principal:
    headers = scope_headers(scope)
    offered = {**{k: v for k, v in headers.items() if k in ("authorization", "x-api-key", "api-key",
                                                            "x-cb-tenant")}, **extra}
    user = scope.get("user")
    if user is not None and not _same_origin(headers):
        user = None  # another site's page: its cookie proves nothing about who wrote the page
    return graphql_principal(headers=offered, user=user)


async def principal_for(scope, payload=None) -> Principal:
    """Raises AuthenticationFailed / PermissionDenied / NotFound as `graphql_principal` does."""
    return await database_sync_to_async(_principal)(scope, payload_headers(payload))
