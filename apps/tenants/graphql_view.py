"""`/graphql` over HTTP: graphene-django's view with our authentication, errors, limits and body rules.

- Who: `graphql_principal` (API key, or the session and X-CB-Tenant, or the embedded default's anonymous
  tenant); the execution context is a `GraphQLContext` (a Principal plus the request).
- CSRF: a request that carries an API key has no ambient credentials and is exempt; a session-authenticated
  POST (GraphiQL in the browser) must carry Django's CSRF token, as the admin does.
- Bodies: a POST whose body is JSON is read as JSON whatever its Content-Type (`curl -d '{"query": …}'` sends
  it form-encoded); `application/graphql` and real form fields keep working; GET runs queries only.
- Limits: graphql-core's rules plus depth and cost (`apps.core.graphql_limits`), from settings.
"""

from __future__ import annotations

import json
import logging

from django.conf import settings
from django.db import DatabaseError
from django.http import HttpResponse, JsonResponse
from django.middleware.csrf import CsrfViewMiddleware
from django.utils.decorators import method_decorator
from django.views.decorators.csrf import csrf_exempt
from graphene_django.views import GraphQLView, HttpError

from apps.core.errors import ApiError, ServiceUnavailable
from apps.core.graphql_errors import format_graphql_error
from apps.core.graphql_fields import refuse_nul_characters
from apps.core.graphql_limits import limit_rules

from .graphql_auth import Principal, graphql_principal, presented_secret

log = logging.getLogger(__name__)


class GraphQLContext(Principal):
    """What resolvers get as `info.context`: the principal's tenant/user/api_key, plus the request and a
    per-request cache (for loaders)."""

    def __init__(self, principal: Principal, request):
        super().__init__(tenant=principal.tenant, user=principal.user, api_key=principal.api_key,
                         actions=principal.actions)
        self.request = request
        self.cache: dict = {}


class _Refused(HttpError):
    """An error answered before execution, already in the GraphQL error shape."""

    def __init__(self, status: int, error: dict, headers: dict | None = None):
        super().__init__(HttpResponse(status=status, headers=headers), message=error["message"])
        self.error = error


def _refusal(status: int, code: str, message: str) -> _Refused:
    return _Refused(status, {"message": message, "extensions": {"code": code, "status": status}})


_HTTP_CODES = {400: "BAD_REQUEST", 405: "METHOD_NOT_ALLOWED"}


class _CsrfCheck(CsrfViewMiddleware):
    def _reject(self, request, reason):
        return reason


@method_decorator(csrf_exempt, name="dispatch")
class CbGraphQLView(GraphQLView):
    graphiql = True

    def __init__(self, **kwargs):
        kwargs.setdefault("validation_rules", limit_rules(max_depth=settings.GRAPHQL_MAX_DEPTH,
                                                          max_cost=settings.GRAPHQL_MAX_COST))
        kwargs.setdefault("middleware", [refuse_nul_characters])
        super().__init__(**kwargs)

    def dispatch(self, request, *args, **kwargs):
        if request.method == "POST" and self._needs_csrf(request):
            reason = _CsrfCheck(lambda r: None).process_view(request, None, (), {})
            if reason is not None:
                message = (f"CSRF check failed: {reason}. Send the csrftoken cookie's value as X-CSRFToken, or use "
                           "an API key.")
                return JsonResponse({"errors": [{"message": message, "extensions": {"code": "CSRF_FAILED",
                                                                                      "status": 403}}]}, status=403)
        return super().dispatch(request, *args, **kwargs)

    @staticmethod
    def _needs_csrf(request) -> bool:
        user = getattr(request, "user", None)
        signed_in = bool(user is not None and user.is_authenticated)
        return signed_in and presented_secret({k.lower(): v for k, v in request.headers.items()}) is None

    def parse_body(self, request):
        content_type = self.get_content_type(request)
        if request.method == "POST" and content_type not in ("application/graphql", "multipart/form-data"):
            raw = request.body.lstrip()
            if raw[:1] in (b"{", b"[") or content_type == "application/json":
                try:
                    data = json.loads(raw.decode("utf-8"))
                except (UnicodeDecodeError, ValueError):
                    raise _refusal(400, "BAD_REQUEST", "The body is not valid JSON.") from None
                if not isinstance(data, dict):
                    raise _refusal(400, "BAD_REQUEST", "The body must be a JSON object with a 'query'.")
                return data
        return super().parse_body(request)

    def get_response(self, request, data, show_graphiql=False):
        query, variables, operation, _ = self.get_graphql_params(request, data)
        if query is not None and not isinstance(query, str):
            raise _refusal(400, "BAD_REQUEST", "`query` must be a string.")
        if variables is not None and not isinstance(variables, dict):
            raise _refusal(400, "BAD_REQUEST", "`variables` must be an object.")
        if operation is not None and not isinstance(operation, str):
            raise _refusal(400, "BAD_REQUEST", "`operationName` must be a string.")
        try:  # every operation, introspection included, acts for someone (GraphiQL's page itself needs nobody)
            request.graphql_context = GraphQLContext(
                graphql_principal(headers=request.headers, user=getattr(request, "user", None)), request)
        except ApiError as exc:
            raise _Refused(exc.status, format_graphql_error(exc), exc.headers or None) from None
        except DatabaseError:  # e.g. Postgres refusing connections: a GraphQL answer, not Django's HTML 500
            log.warning("GraphQL authentication could not reach the database", exc_info=True)
            exc = ServiceUnavailable("The database did not answer; try again shortly.", code="database_unavailable")
            raise _Refused(exc.status, format_graphql_error(exc), {"Retry-After": "1"}) from None
        return super().get_response(request, data, show_graphiql)

    def get_context(self, request):
        return request.graphql_context

    @staticmethod
    def format_error(error):
        if isinstance(error, _Refused):
            return error.error
        if isinstance(error, HttpError):  # graphene-django's own: no query, a mutation over GET, bad variables
            status = error.response.status_code
            return {"message": error.message, "extensions": {"code": _HTTP_CODES.get(status, "BAD_REQUEST"),
                                                             "status": status}}
        return format_graphql_error(error)
