"""Who a GraphQL operation acts for, over HTTP and over the WebSocket alike.

`graphql_principal(headers=..., user=...)` is the one place that turns what a client presented (an API key in
`Authorization: Bearer` / `x-api-key` / `api-key`, or a signed-in session user and `X-CB-Tenant`) into a
`Principal`: the tenant, the Django user or None, the ApiKey or None, and what the operation may do. The HTTP
view passes the request's headers and session user; the WebSocket consumer passes its `connection_init`
payload (same header names, any case) and the scope's user. Resolvers read `info.context.tenant`,
`info.context.user` and `info.context.api_key` (a context *is* a Principal or carries its attributes) and call
`info.context.require("read" | "write" | "inference")` before touching anything.

Without a key or a session, the embedded default acts for `ANONYMOUS_TENANT` exactly as `/v1` does when keys
are optional (`API_KEY_REQUIRED=false`); with keys required the operation is refused.
"""

from __future__ import annotations

from collections.abc import Mapping

from django.conf import settings

from apps.core.errors import AuthenticationFailed, NotFound, PermissionDenied

from .facade import KEY_PREFIX
from .models import ApiKey, Membership, Tenant
from .selectors import api_key_from_secret, membership_role, tenants_for_user
from .services import api_key_touch

TENANT_HEADER = "x-cb-tenant"
ACTIONS = ("read", "write", "inference")

# What each key scope and each member role may do through GraphQL (as on the management API: reads need the
# `read` or `admin` scope, writes `admin`; completions need `inference`, as on /v1).
_SCOPE_ACTIONS = {ApiKey.Scope.READ: {"read"}, ApiKey.Scope.ADMIN: {"read", "write"},
                  ApiKey.Scope.INFERENCE: {"inference"}}
_ROLE_ACTIONS = {Membership.Role.OWNER: set(ACTIONS), Membership.Role.ADMIN: set(ACTIONS),
                 Membership.Role.MEMBER: {"read", "inference"}, Membership.Role.VIEWER: {"read"}}


class Principal:
    """The tenant an operation acts for, who asked (user or key; both None for the anonymous tenant) and what
    they may do. GraphQL contexts derive from it."""

    def __init__(self, *, tenant: Tenant, user=None, api_key: ApiKey | None = None, actions=frozenset()):
        self.tenant = tenant
        self.user = user
        self.api_key = api_key
        self.actions = frozenset(actions)

    @property
    def anonymous(self) -> bool:
        return self.user is None and self.api_key is None

    @property
    def actor(self) -> str:
        """Who to name in histories and events."""
        if self.api_key is not None:
            return f"api-key:{self.api_key.pk}"
        if self.user is not None:
            return str(self.user.get_username())[:200]
        return "anonymous"

    def allows(self, action: str) -> bool:
        return action in self.actions

    def require(self, action: str) -> None:
        if action not in ACTIONS:
            raise ValueError(f"unknown action {action!r}")
        if action in self.actions:
            return
        if self.api_key is not None:
            needed = {"read": "'read' or 'admin'", "write": "'admin'", "inference": "'inference'"}[action]
            raise PermissionDenied(f"This API key lacks the {needed} scope.", code="insufficient_scope")
        raise PermissionDenied("Your role in this tenant does not allow this.", code="permission_denied")

    def __repr__(self) -> str:
        who = f"key {self.api_key.pk}" if self.api_key else (f"user {self.user.pk}" if self.user else "anonymous")
        return f"Principal(tenant={self.tenant.slug!r}, {who}, {sorted(self.actions)})"


def presented_secret(headers: Mapping[str, str]) -> str | None:
    """The key as OpenAI (`Authorization: Bearer`), Azure (`api-key`) and Anthropic (`x-api-key`) clients send
    it; header names in any case (WebSocket `connection_init` payloads are free-form)."""
    auth = headers.get("authorization")
    if isinstance(auth, str) and auth:
        scheme, _, token = auth.partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return token.strip()
    for name in ("x-api-key", "api-key", "apikey"):
        value = headers.get(name)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None


def graphql_principal(*, headers: Mapping, user=None) -> Principal:
    """The principal for a GraphQL operation; raises AuthenticationFailed (no or a bad key/session),
    NotFound (an X-CB-Tenant the user is not a member of) or InvalidRequest-like PermissionDenied."""
    lowered = {str(k).lower(): v for k, v in (headers or {}).items()}
    secret = presented_secret(lowered)
    if secret and not settings.API_KEY_REQUIRED and not secret.startswith(KEY_PREFIX) \
            and not _signed_in(user):
        secret = None  # with keys optional an SDK's placeholder key ("not-needed") means anonymous, as on /v1
    if secret:
        key = api_key_from_secret(secret)
        if key is None:
            raise AuthenticationFailed("Invalid, revoked or expired API key.")
        api_key_touch(api_key=key)
        actions = set().union(*(_SCOPE_ACTIONS.get(scope, set()) for scope in key.scopes or []))
        return Principal(tenant=key.tenant, user=None, api_key=key, actions=actions)
    if _signed_in(user):
        tenant = _session_tenant(user, lowered.get(TENANT_HEADER))
        role = membership_role(user=user, tenant=tenant)
        return Principal(tenant=tenant, user=user, actions=_ROLE_ACTIONS.get(role, set()))
    if not settings.API_KEY_REQUIRED and settings.ANONYMOUS_TENANT:
        tenant = Tenant.objects.filter(slug=settings.ANONYMOUS_TENANT, is_active=True).first()
        if tenant is not None:
            return Principal(tenant=tenant, actions=ACTIONS)  # the embedded default's demo tenant, as on /v1
    raise AuthenticationFailed(
        "Authenticate with a tenant API key ('Authorization: Bearer <key>' or 'x-api-key') or sign in.",
        code="missing_api_key" if settings.API_KEY_REQUIRED else "invalid_api_key",
    )


def _signed_in(user) -> bool:
    return bool(user is not None and getattr(user, "is_authenticated", False) and user.is_active)


def _session_tenant(user, slug) -> Tenant:
    tenants = tenants_for_user(user=user).filter(is_active=True)
    if slug:
        tenant = tenants.filter(slug=str(slug)).first()
        if tenant is None:
            raise NotFound(f"No tenant {str(slug)!r} for this user.", param="X-CB-Tenant")
        return tenant
    candidates = list(tenants.order_by("pk")[:2])
    if len(candidates) != 1:
        raise PermissionDenied("Name the tenant to act for with the X-CB-Tenant header.",
                               code="tenant_required", param="X-CB-Tenant")
    return candidates[0]
