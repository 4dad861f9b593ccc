"""`createFunction`: a function (python, http, command, container …) with its JSON Schemas and retries,
validated as the REST API validates it. Command and container functions are staff-only. An http function
created without `hmacSecret` gets one generated, answered once as `hmacSecret`."""

from __future__ import annotations

import graphene

from apps.core.graphql_fields import JSON, mutation

from ... import services
from ...api.serializers import FunctionSerializer
from ..types import Function


class FunctionInput(graphene.InputObjectType):
    name = graphene.String(required=True)
    runtime = graphene.String(required=True)
    description = graphene.String()
    config = JSON(description="The runtime's settings (python: {callable}, http: {url, method, headers}, …).")
    input_schema = JSON()
    output_schema = JSON()
    timeout_seconds = graphene.Float()
    max_attempts = graphene.Int()
    backoff = graphene.String()
    retry_delay_seconds = graphene.Float()
    retry_max_delay_seconds = graphene.Float()
    retry_on = graphene.List(graphene.NonNull(graphene.String))
    enabled = graphene.Boolean()
    tags = graphene.List(graphene.NonNull(graphene.String))
    hmac_secret = graphene.String(description="http: the key requests are signed with. Write-only.")
    secret_env = JSON(description="container: secret environment variables. Write-only.")


class CreateFunction(graphene.Mutation):
    class Arguments:
        input = FunctionInput(required=True)

    Output = Function

    @staticmethod
    @mutation("write")
    def mutate(root, info, input):  # noqa: A002 - GraphQL's argument name
        serializer = FunctionSerializer(data={name: value for name, value in input.items() if value is not None})
        serializer.is_valid(raise_exception=True)
        fields = dict(serializer.validated_data)
        secret, secret_env = fields.pop("hmac_secret", None), fields.pop("secret_env", None)
        user = info.context.user
        function, shown = services.function_create(
            info.context.tenant, fields=fields, secret=secret, secret_env=secret_env, actor=info.context.actor,
            staff=bool(user is not None and user.is_staff))
        function.shown_secret = shown
        return function
