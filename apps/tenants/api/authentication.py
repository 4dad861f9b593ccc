"""API-key authentication for the management API (the gateway has its own, ORM-free check)."""

from __future__ import annotations

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions

from apps.tenants.selectors import api_key_from_secret
from apps.tenants.services import api_key_touch


def presented_secret(headers) -> str | None:
    """The key from `Authorization: Bearer …`, `api-key` or `x-api-key`, as OpenAI and Azure SDKs send it."""
    auth = headers.get("Authorization") or headers.get("authorization")
    if auth:
        scheme, _, token = auth.partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return token.strip()
    return headers.get("api-key") or headers.get("x-api-key")


class ApiKeyPrincipal:
    """The request.user of a request authenticated by an API key."""

    is_authenticated = True
    is_anonymous = False
    is_active = True
    is_staff = False
    is_superuser = False

    def __init__(self, api_key):
        self.api_key = api_key
        self.pk = None
        self.username = f"api-key:{api_key.pk}"

    def __str__(self):
        return self.username


class ApiKeyAuthentication(authentication.BaseAuthentication):
    def authenticate(self, request):
        secret = presented_secret(request.headers)
        if secret is None:
            return None
        key = api_key_from_secret(secret)
        if key is None:
            raise exceptions.AuthenticationFailed("Invalid, revoked or expired API key.")
        api_key_touch(api_key=key)
        return ApiKeyPrincipal(key), key

    def authenticate_header(self, request):
        return 'Bearer realm="cbplatform"'


class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = ApiKeyAuthentication
    name = "ApiKeyAuth"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer", "description": "A tenant API key (cb-…) with the admin scope."}
