"""Generated documents (hypothesis-graphql, from our own schema) with arbitrary arguments: whatever they ask,
the answer is data or coded GraphQL errors — never a 500 or an INTERNAL_SERVER_ERROR."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis_graphql import mutations, nodes, queries

from cbplatform.schema import schema

pytestmark = pytest.mark.django_db
# Fields whose work is outside this process (an upstream call, the health probes): covered in test_served.
SLOW = {"createCompletion", "health", "metrics"}
QUERY_FIELDS = [name for name in schema.graphql_schema.query_type.fields if name not in SLOW]
MUTATION_FIELDS = [name for name in schema.graphql_schema.mutation_type.fields if name not in SLOW]
SCALARS = {
    "Date": st.one_of(st.dates().map(str), st.text(max_size=12)).map(nodes.String),
    "DateTime": st.datetimes().map(lambda d: d.isoformat()).map(nodes.String),
    "JSON": st.one_of(st.text(max_size=20).map(nodes.String), st.integers().map(nodes.Int), st.just(nodes.Null),
                      st.booleans().map(nodes.Boolean)),
}
RUNS = settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))


def _fine(caller, document: str) -> None:
    response = caller.post(document)
    assert response.status_code < 500, document
    body = response.json()
    codes = [e.get("extensions", {}).get("code") for e in body.get("errors", [])]
    assert "INTERNAL_SERVER_ERROR" not in codes and None not in codes, (document, body)


@RUNS
@given(document=queries(schema.graphql_schema, fields=QUERY_FIELDS, custom_scalars=SCALARS))
def test_generated_queries(tenant_a, document):
    _fine(tenant_a[1], document)


@RUNS
@given(document=mutations(schema.graphql_schema, fields=MUTATION_FIELDS, custom_scalars=SCALARS))
def test_generated_mutations(tenant_a, document):
    _fine(tenant_a[1], document)
