"""GraphiQL works without internet access: every asset is served from our own static files."""

import base64
import hashlib
import re

import httpx
import pytest
from graphene_django.views import GraphQLView

pytestmark = pytest.mark.django_db(transaction=True)


def test_graphiql_loads_only_local_assets_matching_graphene_djangos_hashes(server_factory):
    server = server_factory()
    page = httpx.get(f"{server.graphql_url}/", headers={"Accept": "text/html"}, timeout=10).text
    assert "cdn.jsdelivr.net" not in page and "https://" not in page
    assets = re.findall(r'(?:src|href)="(/static/vendor/graphiql/[^"]+)"\s+integrity="([^"]+)"', page)
    assert len(assets) == 8
    for path, integrity in assets:
        response = httpx.get(f"{server.graphql_url}{path}", timeout=10)
        assert response.status_code == 200, path
        digest = "sha256-" + base64.b64encode(hashlib.sha256(response.content).digest()).decode()
        assert digest == integrity, path  # the vendored file is the version graphene-django expects
    assert f"graphiql-{GraphQLView.graphiql_version}.min.js" in page
    assert f"react-{GraphQLView.react_version}.production.min.js" in page
