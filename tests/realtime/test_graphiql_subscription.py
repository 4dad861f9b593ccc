"""GraphiQL (offline, as served) runs a subscription in headless Chromium, signed in through the admin: the
browser's own graphql-ws client, our /graphql socket, the session cookie, live workflow events."""

from __future__ import annotations

import shutil

import pytest

from tests.graphiql_browser import graphiql_running

from .conftest import committed, fire, new_instance

pytestmark = [pytest.mark.django_db, pytest.mark.slow,
              pytest.mark.skipif(shutil.which("chromium") is None, reason="needs the system chromium")]


def test_graphiql_runs_a_subscription_with_the_session(world):
    from apps.tenants.models import Membership
    from tests import factories

    user = committed(factories.user, f"rt-staff-{world['tenant'].slug}", tenant_obj=world["tenant"],
                     role=Membership.Role.MEMBER, is_staff=True)
    base = world["server"].graphql_url
    query = 'subscription { workflowEvents(workflowId: "document_review") { id eventType tokenId } }'
    try:
        with graphiql_running(base, user.username, query, path="/graphql") as page:
            page.wait_for_timeout(1500)  # the socket opens and subscribes
            _, token = new_instance(world["tenant"])
            fire(world["tenant"], token, "submit")
            page.wait_for_function("document.body.innerText.includes('transition_fired')", timeout=20000)
            text = page.inner_text(".result-window")
    finally:
        committed(user.delete)
    assert str(token.id) in text and "transition_fired" in text
