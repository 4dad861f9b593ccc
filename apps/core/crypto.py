"""Encryption of secrets at rest (provider API keys) with Fernet (AES-128-CBC + HMAC-SHA256).

ENCRYPTION_KEY holds one or more Fernet keys, comma-separated: the first encrypts, all decrypt,
so keys rotate by prepending a new one and running the admin's "re-encrypt" action. The embedded
default derives a key from SECRET_KEY so a new user needs to set nothing.
"""

from __future__ import annotations

import base64
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


class DecryptionError(Exception):
    """The ciphertext was made with a key that is no longer configured, or was tampered with."""


def derive_key(secret: str) -> bytes:
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"cbplatform-field-encryption", info=b"fernet")
    return base64.urlsafe_b64encode(hkdf.derive(secret.encode()))


@lru_cache(maxsize=1)
def _fernet() -> MultiFernet:
    keys = list(getattr(settings, "ENCRYPTION_KEYS", []) or [])
    if not keys:
        return MultiFernet([Fernet(derive_key(settings.SECRET_KEY))])
    fernets = []
    for index, key in enumerate(keys, start=1):
        try:
            fernets.append(Fernet(key.encode()))
        except (ValueError, TypeError):
            # ImproperlyConfigured (cbplatform.env.EnvError's base): manage.py prints it as one line.
            raise ImproperlyConfigured(
                f"ENCRYPTION_KEY entry {index} is not a Fernet key; generate one with "
                "python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'"
            ) from None
    return MultiFernet(fernets)


def reset_cache() -> None:
    _fernet.cache_clear()


def encrypt(plaintext: str) -> str:
    return _fernet().encrypt(plaintext.encode()).decode()


def decrypt(token: str) -> str:
    try:
        return _fernet().decrypt(token.encode()).decode()
    except InvalidToken:
        raise DecryptionError("stored secret cannot be decrypted with the configured ENCRYPTION_KEY") from None


def rotate(token: str) -> str:
    """Re-encrypt under the primary key."""
    try:
        return _fernet().rotate(token.encode()).decode()
    except InvalidToken:
        raise DecryptionError("stored secret cannot be decrypted with the configured ENCRYPTION_KEY") from None


def mask(secret: str, *, keep: int = 4) -> str:
    """`sk-proj-abc…wxyz` style hint: a recognisable prefix and the last characters, never more than 8 shown."""
    if not secret:
        return ""
    if len(secret) <= keep * 3:
        return "…" + secret[-2:] if len(secret) > 4 else "…"
    head = secret.split("-", 1)[0]
    prefix = head + "-" if "-" in secret and len(head) <= 3 else ""  # "sk-", "cb-": the kind, not the key
    return f"{prefix}…{secret[-keep:]}"
