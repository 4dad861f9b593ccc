from django.conf import settings
from django.shortcuts import render
from django.urls import resolve
from django.views.decorators.csrf import csrf_exempt


@csrf_exempt  # the GraphQL view applies its own CSRF rule (sessions only)
def root(request):
    """`/` on the GraphQL port is GraphiQL, as in the original server; elsewhere a page of links."""
    on_graphql_port = str(request.META.get("SERVER_PORT")) == str(settings.GRAPHQL_PORT)
    if on_graphql_port and settings.GRAPHQL_PORT != settings.OPENAI_PORT:
        return resolve("/graphql").func(request)  # the URL conf's GraphQL view (a layer above core)
    return render(request, "core/index.html", {"version": settings.VERSION, "openai_port": settings.OPENAI_PORT,
                                                "graphql_port": settings.GRAPHQL_PORT})
