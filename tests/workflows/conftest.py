from __future__ import annotations

import pytest

from tests import factories

from .nets import DOCUMENT_REVIEW, PARALLEL_REVIEW, chain


@pytest.fixture
def tenant(db):
    return factories.tenant()


@pytest.fixture
def saved(tenant):
    """Save definitions for `tenant`: saved(raw) -> (workflow, version)."""
    from apps.workflows import services

    def save(raw, **kwargs):
        workflow, version, _ = services.workflow_save(tenant, definition=raw, **kwargs)
        return workflow, version

    return save


@pytest.fixture
def nets():
    return {"document_review": DOCUMENT_REVIEW, "parallel_review": PARALLEL_REVIEW, "chain": chain}
