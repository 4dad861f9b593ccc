"""Keeping the credentials we send upstream out of everything we relay or log.

An upstream (or a proxy in front of it) may echo the request's `Authorization`, `x-api-key` or `api-key` header
in its error text. That text reaches clients holding only an inference key (a 4xx passed through, a 5xx turned
into a 502 message, an in-stream error event, the first failure of a fallback chain) and the logs. `Upstream`
scrubs every `UpstreamError` it raises with `scrub_error`, using the secrets of the request it sent and every
other configured credential of that provider; `SecretFilter` scrubs log records with every secret this process
has sent.

A secret is scrubbed as written and in its common encodings: inside `Bearer …`, URL-encoded, JSON-escaped, and
base64 of `user:key` (any user: base64-looking runs are decoded and checked).
"""

from __future__ import annotations

import base64
import binascii
import logging
import re
from collections.abc import Iterable
from urllib.parse import quote, quote_plus

import orjson

from apps.core.errors import ApiError

REDACTED = "[redacted]"
MIN_SECRET = 6  # shorter values (empty keys, "none") would scrub ordinary words
# Headers that carry credentials, as the adapters and common proxies send them.
CREDENTIAL_HEADERS = frozenset({"authorization", "proxy-authorization", "x-api-key", "api-key", "x-goog-api-key"})
_SCHEMES = ("bearer ", "basic ", "token ")
_BASE64_RUN = re.compile(r"[A-Za-z0-9+/_-]{12,}={0,2}")


def request_secrets(headers: dict[str, str] | None) -> set[str]:
    """The credentials in a request's headers: each header value, and the token after its scheme."""
    found: set[str] = set()
    for name, value in (headers or {}).items():
        if name.lower() not in CREDENTIAL_HEADERS or not value:
            continue
        found.add(value)
        lowered = value.lower()
        for scheme in _SCHEMES:
            if lowered.startswith(scheme):
                token = value[len(scheme):].strip()
                found.add(token)
                if scheme == "basic ":
                    found.update(_basic_parts(token))
    return {s for s in found if len(s) >= MIN_SECRET}


def _basic_parts(token: str) -> list[str]:
    try:
        user, _, password = base64.b64decode(token, validate=True).decode("utf-8").partition(":")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return []
    return [user, password]


def _variants(secret: str) -> list[str]:
    encoded = [secret, quote(secret, safe=""), quote_plus(secret), orjson.dumps(secret).decode()[1:-1],
               secret.replace("/", "\\/")]
    for raw in (secret, ":" + secret, secret + ":"):
        b64 = base64.b64encode(raw.encode()).decode()
        encoded += [b64, b64.rstrip("="), base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")]
    # Longest first, so a replacement never leaves the tail of a longer encoding behind.
    return sorted({v for v in encoded if len(v) >= MIN_SECRET}, key=len, reverse=True)


def scrub(text: str, secrets: Iterable[str]) -> str:
    """`text` with every secret (and its encodings) replaced by "[redacted]"."""
    if not text:
        return text
    secrets = [s for s in secrets if s and len(s) >= MIN_SECRET]
    if not secrets:
        return text
    for secret in sorted(secrets, key=len, reverse=True):
        for variant in _variants(secret):
            if variant in text:
                text = text.replace(variant, REDACTED)
    raw = [s.encode() for s in secrets]
    return _BASE64_RUN.sub(lambda m: _scrub_base64(m.group(0), raw), text)


def _scrub_base64(run: str, secrets: list[bytes]) -> str:
    """A base64 run that decodes to something holding a secret (e.g. `user:key` of Basic auth) is redacted."""
    for candidate in (run, run.rstrip("=")):
        padded = candidate + "=" * (-len(candidate) % 4)
        for decode in (base64.b64decode, base64.urlsafe_b64decode):
            try:
                decoded = decode(padded)
            except (binascii.Error, ValueError):
                continue
            if any(secret in decoded for secret in secrets):
                return REDACTED
    return run


def scrub_error(error: ApiError, secrets: Iterable[str]) -> ApiError:
    """The same error with its client-visible text (message, code, param, headers) scrubbed, in place."""
    secrets = [s for s in secrets if s and len(s) >= MIN_SECRET]
    if not secrets:
        return error
    for name in ("message", "code", "param"):
        value = getattr(error, name, None)
        if isinstance(value, str):
            cleaned = scrub(value, secrets)
            if cleaned != value:
                setattr(error, name, cleaned)
    error.args = tuple(scrub(a, secrets) if isinstance(a, str) else a for a in error.args)
    error.headers = {k: scrub(v, secrets) if isinstance(v, str) else v for k, v in error.headers.items()}
    return error


class SecretFilter(logging.Filter):
    """Scrubs log records (message, arguments, traceback) with every secret the process has sent upstream."""

    def __init__(self, secrets: set[str]):
        super().__init__()
        self.secrets = secrets  # shared with `Upstream`, which adds each credential it sends

    def filter(self, record: logging.LogRecord) -> bool:
        # Info lines (the route log, access lines) carry only our own codes, already scrubbed at the source;
        # warnings and tracebacks may quote an exception's text.
        if not self.secrets or (record.levelno < logging.WARNING and not record.exc_info):
            return True
        secrets = list(self.secrets)
        try:
            message = record.getMessage()
        except Exception:  # a malformed record is the logging module's to report
            return True
        cleaned = scrub(message, secrets)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = scrub(record.exc_text, secrets)
        return True


def install_log_filter(secrets: set[str]) -> SecretFilter:
    """Attach a `SecretFilter` to every handler of the root logger (records from every logger pass there)."""
    log_filter = SecretFilter(secrets)
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, SecretFilter) for f in handler.filters):
            handler.addFilter(log_filter)
    return log_filter
