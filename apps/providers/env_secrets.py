"""Secrets of environment-configured providers: looked up in this process's environment when a request needs
them, never stored (the mirrored credential rows hold only the variable's name and a hint)."""

from __future__ import annotations

from django.conf import settings


def env_secret(provider_slug: str, env_var: str) -> str:
    for provider in settings.ENV_PROVIDERS:
        if provider.slug == provider_slug:
            for name, key in zip(provider.key_vars, provider.keys, strict=True):
                if name == env_var:
                    return key
    raise LookupError(f"{env_var} is not set in this process's environment")
