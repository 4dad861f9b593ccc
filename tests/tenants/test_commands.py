from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from apps.tenants.models import ApiKey, Tenant
from apps.tenants.selectors import api_key_from_secret

pytestmark = pytest.mark.django_db


def test_createtenant_and_createapikey_print_the_key_once():
    out = StringIO()
    call_command("createtenant", "acme", "--name", "Acme Inc", stdout=out)
    assert Tenant.objects.get(slug="acme").name == "Acme Inc"

    out, err = StringIO(), StringIO()
    call_command("createapikey", "--tenant", "acme", "--name", "ci", "--scopes", "inference,admin",
                 stdout=out, stderr=err)
    secret = out.getvalue().strip()
    key = api_key_from_secret(secret)
    assert key is not None and key.tenant.slug == "acme" and key.scopes == ["admin", "inference"]
    assert secret not in err.getvalue()
    assert ApiKey.objects.filter(tenant__slug="acme").count() == 1


def test_createapikey_errors_are_clear():
    with pytest.raises(CommandError, match="no tenant 'ghost'"):
        call_command("createapikey", "--tenant", "ghost")
    call_command("createtenant", "acme", stdout=StringIO())
    with pytest.raises(CommandError, match="Unknown scope"):
        call_command("createapikey", "--tenant", "acme", "--scopes", "superuser", stdout=StringIO())
    with pytest.raises(CommandError, match="slug"):
        call_command("createtenant", "Not A Slug", stdout=StringIO())
