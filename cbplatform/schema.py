"""The GraphQL schema: each app contributes `<App>Queries` / `<App>Mutations`, assembled here."""

import graphene
from django.conf import settings

from apps.realtime.graphql.subscriptions import Subscription


class SystemQueries(graphene.ObjectType):
    version = graphene.String(description="cbplatform version.")

    def resolve_version(root, info):
        return settings.VERSION


class Query(SystemQueries, graphene.ObjectType):
    pass


schema = graphene.Schema(query=Query, subscription=Subscription)
