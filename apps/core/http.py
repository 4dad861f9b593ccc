"""Outbound HTTP rules: which upstream base URLs a tenant may configure."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError

_BLOCKED_HOSTNAMES = {"localhost", "localhost.localdomain", "metadata.google.internal"}


def validate_upstream_url(url: str, *, allow_private: bool | None = None) -> str:
    """Reject non-HTTP schemes, embedded credentials and, unless allowed, private or loopback hosts."""
    if allow_private is None:
        allow_private = settings.ALLOW_PRIVATE_UPSTREAMS
    try:
        parts = urlsplit(url)
        port = parts.port  # raises ValueError for a non-numeric or out-of-range port
    except ValueError:
        raise ValidationError("Enter a valid URL.", code="invalid") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValidationError("Base URL must start with http:// or https:// and name a host.", code="invalid")
    if parts.username or parts.password:
        raise ValidationError("Base URL must not contain credentials; store the key as a credential.",
                              code="invalid")
    if parts.query or parts.fragment:
        raise ValidationError("Base URL must not contain a query string or fragment.", code="invalid")
    del port
    if not allow_private:
        host = parts.hostname.lower()
        if host in _BLOCKED_HOSTNAMES or host.endswith(".localhost"):
            raise ValidationError("Base URL points at a local host, which is not allowed here.", code="private")
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            address = None
        if address is not None and not address.is_global:
            raise ValidationError("Base URL points at a private address, which is not allowed here.",
                                  code="private")
    return url.rstrip("/")
