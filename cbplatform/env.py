"""Reading the environment: every variable cbplatform understands, validated once at start-up.

Names follow the original Circuit Breaker server so an existing `.env` keeps working
(`OPENAI_PORT`, `RUST_LOG`, `OPENAI_API_KEYS`, …). A bad value stops the process with one
line that names the variable, instead of failing later somewhere far from the cause.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

LOG_LEVELS = ("trace", "debug", "info", "warn", "warning", "error", "critical")
STORAGE_BACKENDS = ("auto", "memory", "sqlite", "postgres", "nats")

_TRUE = {"1", "true", "yes", "on", "y", "t"}
_FALSE = {"0", "false", "no", "off", "n", "f"}


class EnvError(ImproperlyConfigured):
    """A variable is missing or malformed; the message names it."""


class Env:
    """Typed getters over a mapping (os.environ by default) with alias support."""

    def __init__(self, source: dict[str, str] | None = None):
        self.source = os.environ if source is None else source

    def raw(self, *names: str) -> tuple[str | None, str | None]:
        """First variable of `names` that is set: (name, value)."""
        for name in names:
            value = self.source.get(name)
            if value is not None:
                return name, value.strip()
        return None, None

    def str(self, *names: str, default: str | None = None) -> str | None:
        _, value = self.raw(*names)
        return default if value in (None, "") else value

    def bool(self, *names: str, default: bool) -> bool:
        name, value = self.raw(*names)
        if value in (None, ""):  # empty means unset, as for every other type (compose passes ${X:-})
            return default
        lowered = value.lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
        raise EnvError(f"{name}={value!r} is not a boolean (use true or false)")

    def int(self, *names: str, default: int, minimum: int | None = None, maximum: int | None = None) -> int:
        name, value = self.raw(*names)
        if value in (None, ""):
            return default
        try:
            number = int(value)
        except ValueError:
            raise EnvError(f"{name}={value!r} is not a whole number") from None
        if minimum is not None and number < minimum:
            raise EnvError(f"{name}={number} is below the minimum of {minimum}")
        if maximum is not None and number > maximum:
            raise EnvError(f"{name}={number} is above the maximum of {maximum}")
        return number

    def float(self, *names: str, default: float, minimum: float | None = None) -> float:
        name, value = self.raw(*names)
        if value in (None, ""):
            return default
        try:
            number = float(value)
        except ValueError:
            raise EnvError(f"{name}={value!r} is not a number") from None
        if minimum is not None and number < minimum:
            raise EnvError(f"{name}={number} is below the minimum of {minimum}")
        return number

    def port(self, *names: str, default: int) -> int:
        return self.int(*names, default=default, minimum=1, maximum=65535)

    def choice(self, *names: str, default: str, choices: tuple[str, ...]) -> str:
        name, value = self.raw(*names)
        if value in (None, ""):
            return default
        lowered = value.lower()
        if lowered not in choices:
            raise EnvError(f"{name}={value!r} is not one of: {', '.join(choices)}")
        return lowered

    def list(self, *names: str) -> list[str]:
        """Comma-separated list; blanks dropped, order kept."""
        _, value = self.raw(*names)
        if not value:
            return []
        return [item.strip() for item in value.split(",") if item.strip()]

    def url(self, *names: str, default: str | None = None, schemes: tuple[str, ...] = ("http", "https")) -> str | None:
        name, value = self.raw(*names)
        if value in (None, ""):
            return default
        from urllib.parse import urlsplit

        parts = urlsplit(value)
        if parts.scheme not in schemes or not parts.netloc:
            raise EnvError(f"{name}={value!r} is not a URL ({'/'.join(schemes)}://host…)")
        return value.rstrip("/")

    def database(self, name: str = "DATABASE_URL") -> dict | None:
        value = self.str(name)
        if not value:
            return None
        try:
            config = environ.Env.db_url_config(value)
        except Exception:  # django-environ raises several types for junk input
            raise EnvError(f"{name} is not a database URL (postgres://user:pass@host:5432/name)") from None
        engine = config.get("ENGINE", "")
        if not engine.endswith(("postgresql", "sqlite3")):
            raise EnvError(f"{name} has an unsupported scheme (use postgres:// or sqlite:///)")
        return config

    def log_level(self) -> str:
        """LOG_LEVEL, or RUST_LOG as the original server read it (`info` or `crate=debug,…`)."""
        name, value = self.raw("LOG_LEVEL", "RUST_LOG")
        if not value:
            return "INFO"
        level = value
        if "=" in value or "," in value:
            # RUST_LOG directives: a bare level among them wins, else the first directive's level.
            directives = [d.strip() for d in value.split(",") if d.strip()]
            bare = [d for d in directives if "=" not in d]
            level = bare[0] if bare else directives[0].split("=", 1)[1]
        level = level.lower()
        if level not in LOG_LEVELS:
            raise EnvError(f"{name}={value!r} is not a log level ({', '.join(LOG_LEVELS)})")
        return {"trace": "DEBUG", "warn": "WARNING"}.get(level, level.upper())


@dataclass(frozen=True)
class EnvProvider:
    """A provider configured by environment variables: global, read-only, secrets never stored."""

    slug: str
    name: str
    type: str
    base_url: str
    key_vars: tuple[str, ...] = ()  # names like "OPENAI_API_KEYS[2]" for display
    keys: tuple[str, ...] = field(default=(), repr=False)
    options: dict = field(default_factory=dict)


def env_providers(env: Env) -> list[EnvProvider]:
    """Providers implied by OPENAI_API_KEY(S), ANTHROPIC_…, GOOGLE_…, AZURE_OPENAI_…, OLLAMA_BASE_URL, CUSTOM_LLM_…."""

    def keys(single: str, plural: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
        found: list[tuple[str, str]] = []
        for index, key in enumerate(env.list(plural), start=1):
            found.append((f"{plural}[{index}]", key))
        single_value = env.str(single)
        if single_value and single_value not in {k for _, k in found}:
            found.insert(0, (single, single_value))
        return tuple(n for n, _ in found), tuple(k for _, k in found)

    providers: list[EnvProvider] = []
    names, secrets = keys("OPENAI_API_KEY", "OPENAI_API_KEYS")
    if secrets:
        providers.append(EnvProvider("env-openai", "OpenAI (environment)", "openai",
                                     env.url("OPENAI_BASE_URL", default="https://api.openai.com/v1"), names, secrets))
    names, secrets = keys("ANTHROPIC_API_KEY", "ANTHROPIC_API_KEYS")
    if secrets:
        providers.append(EnvProvider("env-anthropic", "Anthropic (environment)", "anthropic",
                                     env.url("ANTHROPIC_BASE_URL", default="https://api.anthropic.com"),
                                     names, secrets))
    names, secrets = keys("GOOGLE_API_KEY", "GOOGLE_API_KEYS")
    if secrets:
        providers.append(EnvProvider("env-gemini", "Google Gemini (environment)", "gemini",
                                     env.url("GOOGLE_BASE_URL", default="https://generativelanguage.googleapis.com"),
                                     names, secrets))
    azure_key = env.str("AZURE_OPENAI_API_KEY")
    azure_endpoint = env.url("AZURE_OPENAI_ENDPOINT")
    if azure_key or azure_endpoint:
        if not (azure_key and azure_endpoint):
            missing = "AZURE_OPENAI_ENDPOINT" if azure_key else "AZURE_OPENAI_API_KEY"
            raise EnvError(f"{missing} is required when the other AZURE_OPENAI_* variable is set")
        providers.append(EnvProvider("env-azure", "Azure OpenAI (environment)", "azure", azure_endpoint,
                                     ("AZURE_OPENAI_API_KEY",), (azure_key,),
                                     {"api_version": env.str("AZURE_OPENAI_API_VERSION", default="2024-10-21")}))
    ollama = env.url("OLLAMA_BASE_URL")
    if ollama:
        providers.append(EnvProvider("env-ollama", "Ollama (environment)", "ollama", ollama))
    custom = env.url("CUSTOM_LLM_ENDPOINT")
    if custom:
        key = env.str("CUSTOM_LLM_API_KEY")
        providers.append(EnvProvider("env-custom", "Custom OpenAI-compatible (environment)", "openai_compatible",
                                     custom, ("CUSTOM_LLM_API_KEY",) if key else (),
                                     (key,) if key else ()))
    return providers


def read_or_create_secret(path: Path, nbytes: int = 48) -> str:
    """A per-checkout secret for the embedded default, so sessions survive restarts."""
    import secrets

    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        return path.read_text().strip()
    value = secrets.token_urlsafe(nbytes)
    path.write_text(value + "\n")
    path.chmod(0o600)
    return value
