import pytest
from cryptography.fernet import Fernet
from django.db import connection

from apps.core import crypto
from apps.providers.models import ProviderCredential
from tests.providers import factories as provider_factories
from tests.tenants import factories as tenant_factories

SECRET = "sk-live-THIS-IS-THE-PLAINTEXT-0001"


def test_round_trip_and_ciphertext_differs():
    token = crypto.encrypt(SECRET)
    assert SECRET not in token
    assert crypto.decrypt(token) == SECRET
    assert crypto.encrypt(SECRET) != token  # random IV: equal secrets do not look equal


@pytest.mark.django_db
def test_database_column_never_holds_the_plaintext():
    provider = provider_factories.provider(tenant_factories.tenant())
    credential = provider_factories.credential(provider, api_key_value=SECRET)
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM providers_providercredential WHERE id = %s", [credential.pk])
        row = cursor.fetchone()
    assert not any(SECRET in str(value) for value in row)
    assert not any(SECRET[-8:] in str(value) for value in row)  # not even a long suffix
    assert ProviderCredential.objects.get(pk=credential.pk).secret() == SECRET
    assert credential.hint == "sk-…0001"


def test_rotation_keeps_old_ciphertexts_readable(settings):
    old_key, new_key = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.ENCRYPTION_KEYS = [old_key]
    crypto.reset_cache()
    try:
        token = crypto.encrypt(SECRET)
        settings.ENCRYPTION_KEYS = [new_key, old_key]
        crypto.reset_cache()
        assert crypto.decrypt(token) == SECRET
        rotated = crypto.rotate(token)
        settings.ENCRYPTION_KEYS = [new_key]
        crypto.reset_cache()
        assert crypto.decrypt(rotated) == SECRET
        with pytest.raises(crypto.DecryptionError):
            crypto.decrypt(token)
    finally:
        crypto.reset_cache()


def test_invalid_encryption_key_names_the_variable(settings):
    settings.ENCRYPTION_KEYS = ["not-a-fernet-key"]
    crypto.reset_cache()
    try:
        with pytest.raises(Exception, match="ENCRYPTION_KEY"):
            crypto.encrypt("x")
    finally:
        crypto.reset_cache()


@pytest.mark.parametrize(("secret", "hint"), [
    ("sk-proj-abcdefghijklmnop1234", "sk-…1234"), ("AIzaSyD-1234567890abcdefXYZW", "…XYZW"),
    ("short", "…rt"), ("", ""),
])
def test_mask(secret, hint):
    assert crypto.mask(secret) == hint
