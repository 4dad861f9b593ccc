"""One real gateway server per module, fake providers on loopback, tenants and keys made through services.

Data is committed once per module (not per test) so one server process serves many SDK tests; the
module tears it down again. Every protocol the gateway speaks has an entry in PROTOCOLS.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from datetime import timedelta

import openai
import pytest
from django.utils import timezone

from tests.conftest import ServerProcess, reseed_catalogue
from tests.fakes.openai import FakeOpenAI


@dataclass
class Protocol:
    name: str  # provider type
    fake_path: str  # "module:Class" under tests.fakes
    model: str  # the model name clients send
    tag: str
    options: dict = field(default_factory=dict)
    base_suffix: str = ""  # appended to the fake's URL to form the provider's base URL
    embeddings_model: str | None = None
    json_mode: bool = True
    vision_model: str | None = None  # when `model` cannot see images

    def fake_class(self):
        module, cls = self.fake_path.split(":")
        try:
            return getattr(importlib.import_module(f"tests.fakes.{module}"), cls)
        except (ImportError, AttributeError):
            return None


PROTOCOLS = [
    Protocol("openai", "openai:FakeOpenAI", "openai/gpt-4o", "openai", base_suffix="/v1",
             embeddings_model="text-embedding-3-small"),
    Protocol("azure", "azure:FakeAzure", "azure/gpt-4o-mini", "azure",
             options={"api_version": "2024-10-21",
                      "deployments": {"gpt-4o-mini": "gpt-4o-prod", "text-embedding-3-large": "embed-prod"}},
             embeddings_model="azure/text-embedding-3-large"),
    Protocol("anthropic", "anthropic:FakeAnthropic", "claude-3-haiku", "anthropic"),
    Protocol("gemini", "gemini:FakeGemini", "gemini-1.5-flash", "gemini", embeddings_model="text-embedding-004"),
    Protocol("ollama", "ollama:FakeOllama", "llama3.2", "ollama", json_mode=True,
             embeddings_model="nomic-embed-text", vision_model="llama3.2-vision"),
]
AVAILABLE = [p for p in PROTOCOLS if p.fake_class() is not None]


@dataclass
class Env:
    server: ServerProcess
    fakes: dict
    keys: dict
    tenants: dict

    def client(self, key: str = "a", **kwargs) -> openai.OpenAI:
        return openai.OpenAI(base_url=f"{self.server.url}/v1", api_key=self.keys[key], max_retries=0,
                             timeout=30, **kwargs)

    def async_client(self, key: str = "a", **kwargs) -> openai.AsyncOpenAI:
        return openai.AsyncOpenAI(base_url=f"{self.server.url}/v1", api_key=self.keys[key], max_retries=0,
                                  timeout=30, **kwargs)


def _configure(fakes):
    from apps.providers import services as provider_services
    from apps.providers.models import ModelEntry
    from tests import factories

    if not ModelEntry.objects.filter(provider__isnull=True).exists():
        reseed_catalogue()
    a = factories.tenant("gw-tenant-a")
    b = factories.tenant("gw-tenant-b")
    keys = {
        "a": factories.api_key(a, name="a")[1],
        "b": factories.api_key(b, name="b")[1],
        "a-admin-only": factories.api_key(a, scopes=["admin"])[1],
        "a-expired": factories.api_key(a, expires_at=timezone.now() - timedelta(minutes=1))[1],
    }
    revoked, keys["a-revoked"] = factories.api_key(a, name="revoked")
    revoked.revoked_at = timezone.now()
    revoked.save()
    for protocol in AVAILABLE:
        fake = fakes[protocol.name]
        provider = provider_services.provider_create(
            tenant=a, slug=f"a-{protocol.name}", name=f"A {protocol.name}", type=protocol.name,
            base_url=fake.url + protocol.base_suffix, options=protocol.options)
        if protocol.name != "ollama":
            provider_services.credential_create(tenant=a, provider=provider, api_key=fake.api_key)
    return {"a": a, "b": b}, keys


def _teardown():
    from apps.tenants.models import Tenant

    Tenant.objects.filter(slug__startswith="gw-").delete()


@pytest.fixture(scope="module")
def fakes():
    started = {}
    for protocol in AVAILABLE:
        options = {"models": ("llama3.2", "llama3.2-vision", "nomic-embed-text")} if protocol.name == "ollama" else {}
        started[protocol.name] = protocol.fake_class()(**options).start()
    yield started
    for fake in started.values():
        fake.stop()


def make_env(django_db_blocker, fakes, server_env=None) -> Env:
    with django_db_blocker.unblock():
        _teardown()
        tenants, keys = _configure(fakes)
    # Protocol tests provoke failures on purpose; circuits are tested on their own (test_resilience.py).
    server = ServerProcess(env={"REQUEST_TIMEOUT_SECONDS": "2", "MAX_REQUEST_BODY_BYTES": "65536",
                                "CIRCUIT_FAILURE_THRESHOLD": "1000", "CIRCUIT_MIN_REQUESTS": "1000",
                                "RETRY_BACKOFF_BASE_SECONDS": "0", **(server_env or {})}).start()
    return Env(server, fakes, keys, tenants)


@pytest.fixture(scope="module")
def gw(django_db_setup, django_db_blocker, fakes):
    env = make_env(django_db_blocker, fakes)
    yield env
    env.server.stop()
    with django_db_blocker.unblock():
        _teardown()


@pytest.fixture(params=AVAILABLE, ids=[p.name for p in AVAILABLE])
def protocol(request) -> Protocol:
    return request.param


__all__ = ["AVAILABLE", "PROTOCOLS", "Env", "FakeOpenAI", "Protocol"]
