"""The platform-wide GraphQL surface over the gateway: `health`, `metrics`, `version` and `createCompletion`.

A surface (like realtime and the dashboard) because the gateway itself must not import graphene; it calls the
gateway's in-process API (`completion_api`, `health_report`, `metrics`) and the billing selectors.
"""
