"""The embedded default's simulated provider must not shadow a real one: with OPENAI_API_KEY (and a base URL
pointing at a fake OpenAI) `make run`'s settings answer `auto` and `cb:*` from the real provider, and the
simulated one only when named."""

from __future__ import annotations

import tempfile

import openai
import pytest

from tests.conftest import ServerProcess
from tests.fakes.openai import FakeOpenAI


@pytest.fixture(scope="module")
def embedded_with_openai():
    fake = FakeOpenAI().start()
    with tempfile.TemporaryDirectory() as var:
        server = ServerProcess(settings_module="cbplatform.settings.local", env={
            "DATABASE_URL": "", "REDIS_URL": "", "CB_VAR_DIR": var,
            "OPENAI_API_KEY": fake.api_key, "OPENAI_BASE_URL": f"{fake.url}/v1"}).start(timeout=90)
        yield server, fake
        server.stop()
    fake.stop()


def ask(server: ServerProcess, model: str) -> str:
    sdk = openai.OpenAI(base_url=f"{server.url}/v1", api_key="not-needed", max_retries=0, timeout=30)
    reply = sdk.chat.completions.create(model=model, messages=[{"role": "user", "content": "who answers?"}])
    return reply.choices[0].message.content


@pytest.mark.parametrize("model", ["auto", "cb:cost-optimal", "cb:fastest", "cb:coding"])
def test_virtual_models_are_answered_by_the_configured_provider(embedded_with_openai, model):
    server, fake = embedded_with_openai
    before = len(fake.requests)
    assert ask(server, model).startswith("[openai] You said: who answers?")
    assert len(fake.requests) == before + 1


def test_the_simulated_provider_still_answers_when_named(embedded_with_openai):
    server, fake = embedded_with_openai
    before = len(fake.requests)
    assert "Simulated" in ask(server, "simulated-echo")
    assert len(fake.requests) == before
