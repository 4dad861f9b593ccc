"""Fixtures shared by the adapter tests; the helpers they call live in `harness.py`."""

import pytest


@pytest.fixture(scope="module")
def fake(request):
    """The module's fake upstream, made by its `FAKE` factory and started once per module (real HTTP)."""
    server = request.module.FAKE().start()
    yield server
    server.stop()
