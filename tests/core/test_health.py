"""/health is assembled from the checks and sections the apps register (core never imports upward)."""

import asyncio

import pytest

from apps.core.health import health_report, register_health_check, register_health_section, unregister_health_check


async def _down():
    raise ConnectionError("nope")


async def _up():
    return None


async def _section_that_fails():
    raise RuntimeError("secret detail")


@pytest.mark.django_db(transaction=True)
def test_registered_checks_decide_the_status_and_sections_only_inform():
    status, body = asyncio.run(health_report())
    assert status == 200 and body["checks"]["database"]["status"] == "up" and "redis" in body["checks"]
    assert "providers" in body  # registered by the gateway's AppConfig.ready

    register_health_section("extra", _section_that_fails)
    register_health_check("broken", _down)
    register_health_check("switched-off", _down, enabled=lambda: False)  # asked per probe, like Redis
    try:
        status, body = asyncio.run(health_report())
        assert status == 503 and body["status"] == "unhealthy"
        assert body["checks"]["broken"] == {"status": "down", "error": "ConnectionError"}
        assert body["extra"] == {"error": "RuntimeError"} and "secret" not in str(body)
        assert "switched-off" not in body["checks"]
        register_health_check("broken", _up)  # re-registering replaces
        status, body = asyncio.run(health_report())
        assert status == 200 and body["checks"]["broken"]["status"] == "up"
    finally:
        unregister_health_check("broken")
        unregister_health_check("extra")
        unregister_health_check("switched-off")
    assert "broken" not in asyncio.run(health_report())[1]["checks"]

