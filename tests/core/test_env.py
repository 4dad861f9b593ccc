import subprocess
import sys

import pytest

from cbplatform.env import Env, EnvError, env_providers
from tests.conftest import ROOT


def test_comma_lists_drop_blanks_and_keep_order():
    env = Env({"OPENAI_API_KEYS": " sk-a, ,sk-b,sk-c ,"})
    assert env.list("OPENAI_API_KEYS") == ["sk-a", "sk-b", "sk-c"]


@pytest.mark.parametrize(("source", "expected"), [
    ({"OPENAI_CORS_ENABLED": "false"}, False),
    ({"CORS_ENABLED": "0"}, False),
    ({"OPENAI_CORS_ENABLED": "true", "CORS_ENABLED": "false"}, True),  # the specific name wins
    ({}, True),
])
def test_aliases(source, expected):
    assert Env(source).bool("OPENAI_CORS_ENABLED", "CORS_ENABLED", default=True) is expected


@pytest.mark.parametrize(("value", "level"), [
    ("debug", "DEBUG"), ("warn", "WARNING"), ("circuit_breaker=info,circuit_breaker::api=debug", "INFO"),
    ("warn,hyper=error", "WARNING"), ("trace", "DEBUG"),
])
def test_rust_log_is_an_alias_for_log_level(value, level):
    assert Env({"RUST_LOG": value}).log_level() == level
    assert Env({"LOG_LEVEL": "error", "RUST_LOG": value}).log_level() == "ERROR"


@pytest.mark.parametrize(("source", "call", "message"), [
    ({"OPENAI_PORT": "three thousand"}, lambda e: e.port("OPENAI_PORT", default=3000), "OPENAI_PORT"),
    ({"OPENAI_PORT": "70000"}, lambda e: e.port("OPENAI_PORT", default=3000), "OPENAI_PORT=70000"),
    ({"DEFAULT_ROUTING_STRATEGY": "cheapest"},
     lambda e: e.choice("DEFAULT_ROUTING_STRATEGY", default="balanced", choices=("balanced",)),
     "DEFAULT_ROUTING_STRATEGY='cheapest'"),
    ({"API_KEY_REQUIRED": "maybe"}, lambda e: e.bool("OPENAI_API_KEY_REQUIRED", "API_KEY_REQUIRED", default=False),
     "API_KEY_REQUIRED"),
    ({"LOG_LEVEL": "loud"}, lambda e: e.log_level(), "LOG_LEVEL"),
    ({"OLLAMA_BASE_URL": "localhost:11434"}, lambda e: e.url("OLLAMA_BASE_URL"), "OLLAMA_BASE_URL"),
    ({"DATABASE_URL": "mysqlx://nope"}, lambda e: e.database(), "DATABASE_URL"),
])
def test_invalid_values_name_the_variable(source, call, message):
    with pytest.raises(EnvError, match=message.replace("(", r"\(")):
        call(Env(source))


def test_env_providers_from_keys_and_urls():
    providers = env_providers(Env({
        "OPENAI_API_KEY": "sk-one", "OPENAI_API_KEYS": "sk-one,sk-two", "ANTHROPIC_API_KEYS": "sk-ant-1,sk-ant-2",
        "OLLAMA_BASE_URL": "http://127.0.0.1:11434/", "CUSTOM_LLM_ENDPOINT": "https://llm.example.com/v1",
        "CUSTOM_LLM_API_KEY": "custom-key", "AZURE_OPENAI_API_KEY": "az", "AZURE_OPENAI_ENDPOINT": "https://x.openai.azure.com",
    }))
    by_type = {p.type: p for p in providers}
    assert by_type["openai"].keys == ("sk-one", "sk-two")  # no duplicate for the single variable
    assert by_type["openai"].key_vars == ("OPENAI_API_KEYS[1]", "OPENAI_API_KEYS[2]")
    assert by_type["anthropic"].keys == ("sk-ant-1", "sk-ant-2")
    assert by_type["ollama"].base_url == "http://127.0.0.1:11434"
    assert by_type["openai_compatible"].keys == ("custom-key",)
    assert by_type["azure"].options == {"api_version": "2024-10-21"}
    assert "sk-one" not in repr(by_type["openai"])  # secrets stay out of reprs and so out of logs


def test_azure_needs_both_variables():
    with pytest.raises(EnvError, match="AZURE_OPENAI_ENDPOINT"):
        env_providers(Env({"AZURE_OPENAI_API_KEY": "k"}))


def _manage(*args, env):
    base = {"PATH": "/usr/bin:/bin", "CB_VAR_DIR": "/tmp/cb-env-test-var", "HOME": "/tmp"}
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env={**base, **env},
                          capture_output=True, text=True, timeout=60)


def test_bad_value_stops_startup_with_one_line():
    result = _manage("check", env={"OPENAI_PORT": "abc"})
    assert result.returncode == 2
    assert result.stderr.strip() == "cbplatform: configuration error: OPENAI_PORT='abc' is not a whole number"


def test_production_refuses_to_start_without_services_and_secrets():
    result = _manage("check", env={"DJANGO_SETTINGS_MODULE": "cbplatform.settings.production"})
    assert result.returncode == 2
    line = result.stderr.strip()
    assert "\n" not in line
    for name in ("DATABASE_URL", "REDIS_URL", "SECRET_KEY", "ENCRYPTION_KEY"):
        assert name in line


def test_production_names_only_what_is_missing():
    result = _manage("check", env={"DJANGO_SETTINGS_MODULE": "cbplatform.settings.production",
                                   "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/cbplatform",
                                   "REDIS_URL": "redis://127.0.0.1:6379/14", "SECRET_KEY": "x" * 50})
    assert result.returncode == 2
    assert "ENCRYPTION_KEY" in result.stderr and "DATABASE_URL" not in result.stderr


def test_nats_storage_backend_needs_a_nats_url():
    result = _manage("check", env={"STORAGE_BACKEND": "nats"})
    assert result.returncode == 2 and "STORAGE_BACKEND=nats needs NATS_URL" in result.stderr
    # With a NATS URL the database stays the store (SQLite here) and the process starts.
    result = _manage("check", env={"STORAGE_BACKEND": "nats", "NATS_URL": "nats://127.0.0.1:4222"})
    assert result.returncode == 0, result.stderr


def test_empty_boolean_means_default():
    assert Env({"SESSION_COOKIE_SECURE": ""}).bool("SESSION_COOKIE_SECURE", default=True) is True
