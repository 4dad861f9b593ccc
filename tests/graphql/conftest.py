"""GraphQL over HTTP, as clients call it: a JSON body POSTed to /graphql with a tenant API key."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest
from django.test import Client

from tests.tenants.factories import api_key, tenant


@dataclass
class Caller:
    """One principal calling /graphql through Django's test client (a server adds nothing for these tests)."""

    client: Client
    headers: dict

    def post(self, query: str, variables: dict | None = None, **extra):
        body = {"query": query, **({"variables": variables} if variables is not None else {})}
        return self.client.post("/graphql", data=json.dumps(body), content_type="application/json",
                                headers={**self.headers, **extra})

    def __call__(self, query: str, variables: dict | None = None) -> dict:
        """The answer's JSON; any error fails the test (use `errors()` to expect them)."""
        response = self.post(query, variables)
        body = response.json()
        assert response.status_code == 200 and "errors" not in body, body
        return body["data"]

    def errors(self, query: str, variables: dict | None = None) -> tuple[dict | None, list[dict]]:
        body = self.post(query, variables).json()
        assert body.get("errors"), body
        return body.get("data"), body["errors"]


def caller_for(secret: str) -> Caller:
    return Caller(Client(), {"Authorization": f"Bearer {secret}"})


@pytest.fixture
def tenant_a(db):
    created = tenant("gql-a")
    _, secret = api_key(created, scopes=["admin", "inference"])
    return created, caller_for(secret)


@pytest.fixture
def tenant_b(db):
    created = tenant("gql-b")
    _, secret = api_key(created, scopes=["admin", "inference"])
    return created, caller_for(secret)


def codes(errors: list[dict]) -> list[str]:
    return [error["extensions"]["code"] for error in errors]
