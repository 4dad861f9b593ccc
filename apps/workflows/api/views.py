"""The workflows management API: thin views over services, selectors and access helpers, tenant-scoped."""

from __future__ import annotations

import uuid

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import parsers, renderers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from apps.core.errors import NotFound
from apps.tenants.api.permissions import IsTenantAdmin
from apps.tenants.api.tenancy import request_tenant
from apps.workflows import selectors, services
from apps.workflows.access import instance_access_by_id, token_access_by_id, workflow_access_by_id
from apps.workflows.models import Token, WorkflowDefinition, WorkflowInstance, WorkflowVersion

from .formats import TextYAMLParser, YAMLParser, YAMLRenderer, workflow_exception_handler
from .serializers import (
    CancelSerializer,
    EventSerializer,
    FireResultSerializer,
    FireSerializer,
    HistorySerializer,
    InstanceCreateSerializer,
    InstanceDetailSerializer,
    InstanceSerializer,
    TokenCreateSerializer,
    TokenDetailSerializer,
    TokenFireSerializer,
    TokenSerializer,
    TokenUpdateSerializer,
    VersionSerializer,
    WorkflowSerializer,
)

STRICT = OpenApiParameter("strict", OpenApiTypes.BOOL, description="Refuse a net that is not sound.")


def _actor(request) -> str:
    return str(request.user)[:200]


def _flag(request, name: str) -> bool:
    value = request.query_params.get(name, "false").lower()
    if value not in ("true", "false", "1", "0", "yes", "no"):
        raise ValidationError({name: ["Must be true or false."]})
    return value in ("true", "1", "yes")


def _validated(serializer_class, request):
    serializer = serializer_class(data=request.data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


class _WorkflowsApi(viewsets.GenericViewSet):
    permission_classes = [IsTenantAdmin]

    def get_exception_handler(self):
        return workflow_exception_handler

    @property
    def tenant(self):
        return request_tenant(self.request)


class WorkflowViewSet(_WorkflowsApi):
    """Workflow definitions (Petri nets), addressed by their slug. POST/PUT take the definition itself, as
    JSON or YAML (`Content-Type: application/yaml`), in our shape or the original's."""

    serializer_class = WorkflowSerializer
    lookup_value_regex = r"[A-Za-z0-9][A-Za-z0-9_\-]{0,63}"
    parser_classes = [parsers.JSONParser, YAMLParser, TextYAMLParser]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return WorkflowDefinition.objects.none()
        return selectors.workflow_list(tenant=self.tenant)

    def list(self, request):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(WorkflowSerializer(page, many=True).data)

    def _save(self, request, *, expected_id=None):
        if not isinstance(request.data, dict):
            raise ValidationError({"non_field_errors": ["The body must be a workflow definition (an object)."]})
        source_format = "yaml" if "yaml" in (request.content_type or "") else "json"
        workflow, version, created = services.workflow_save(
            self.tenant, definition=request.data, source_format=source_format, strict=_flag(request, "strict"),
            actor=_actor(request), expected_id=expected_id)
        body = WorkflowSerializer(workflow).data
        body["version_created"] = created
        body["analysis"] = version.analysis
        return body

    @extend_schema(request=OpenApiTypes.OBJECT, parameters=[STRICT], responses={201: WorkflowSerializer})
    def create(self, request):
        body = self._save(request)
        return Response(body, status=status.HTTP_201_CREATED if body["version_created"] else status.HTTP_200_OK)

    def retrieve(self, request, pk=None):
        return Response(WorkflowSerializer(workflow_access_by_id(self.tenant, pk)).data)

    @extend_schema(request=OpenApiTypes.OBJECT, parameters=[STRICT], responses=WorkflowSerializer)
    def update(self, request, pk=None):
        workflow_access_by_id(self.tenant, pk)
        return Response(self._save(request, expected_id=pk))

    def destroy(self, request, pk=None):
        services.workflow_delete(self.tenant, workflow=workflow_access_by_id(self.tenant, pk), actor=_actor(request))
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(responses=VersionSerializer(many=True))
    @action(detail=True, methods=["get"])
    def versions(self, request, pk=None):
        workflow = workflow_access_by_id(self.tenant, pk)
        page = self.paginate_queryset(WorkflowVersion.objects.filter(definition=workflow).order_by("-number"))
        return self.get_paginated_response(VersionSerializer(page, many=True).data)

    @extend_schema(responses=OpenApiTypes.OBJECT,
                   parameters=[OpenApiParameter("version", OpenApiTypes.INT, description="Default: current.")])
    @action(detail=True, methods=["get"])
    def analysis(self, request, pk=None):
        """Deadlocks, dead transitions, unbounded places and soundness, each finding with a path reaching it."""
        version = self._version(request, workflow_access_by_id(self.tenant, pk))
        return Response({"workflow_id": pk, "version": version.number, **version.analysis})

    @extend_schema(responses=OpenApiTypes.OBJECT, parameters=[
        OpenApiParameter("format", OpenApiTypes.STR, enum=["json", "yaml"]),
        OpenApiParameter("form", OpenApiTypes.STR, enum=["canonical", "source"],
                         description="canonical (default) or the definition as it was submitted"),
        OpenApiParameter("version", OpenApiTypes.INT)])
    @action(detail=True, methods=["get"], renderer_classes=[renderers.JSONRenderer, YAMLRenderer])
    def export(self, request, pk=None):
        """The definition in the canonical shape, which loads back to the same net (or, with `form=source`, as
        it was submitted)."""
        version = self._version(request, workflow_access_by_id(self.tenant, pk))
        form = request.query_params.get("form", "canonical")
        if form not in ("canonical", "source"):
            raise ValidationError({"form": ["Must be canonical or source."]})
        return Response(version.source if form == "source" else version.net)

    def _version(self, request, workflow) -> WorkflowVersion:
        number = request.query_params.get("version")
        if number is None:
            if workflow.current_version is None:
                raise NotFound(f"Workflow {workflow.slug!r} has no saved version.")
            return workflow.current_version
        version = WorkflowVersion.objects.filter(definition=workflow, number=number).first() if number.isdigit() \
            else None
        if version is None:
            raise NotFound(f"Workflow {workflow.slug!r} has no version {number!r}.")
        return version


def _fire_response(result) -> dict:
    token = Token.objects.select_related("instance__definition").filter(pk=result.token_id).first() \
        if result.token_id else None
    instance = WorkflowInstance.objects.select_related("definition", "version").get(pk=result.instance.pk)
    return FireResultSerializer({"token": token, "instance": instance, "transition": result.plan.transition.id,
                                 "consumed": list(result.plan.consumed), "created": result.created,
                                 "guard": result.guard}).data


class InstanceViewSet(_WorkflowsApi):
    """Workflow instances (cases): create with initial data, read the marking and tokens, list transitions with
    their guard explanations, fire, cancel."""

    serializer_class = InstanceSerializer

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return WorkflowInstance.objects.none()
        return selectors.instance_list(tenant=self.tenant, workflow=self.request.query_params.get("workflow_id"),
                                       status=self.request.query_params.get("status"))

    @extend_schema(parameters=[OpenApiParameter("workflow_id", OpenApiTypes.STR),
                               OpenApiParameter("status", OpenApiTypes.STR)])
    def list(self, request):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(InstanceSerializer(page, many=True).data)

    @extend_schema(request=InstanceCreateSerializer, responses={201: InstanceDetailSerializer})
    def create(self, request):
        body = _validated(InstanceCreateSerializer, request)
        instance = services.instance_create(self.tenant, workflow_id=body["workflow_id"], data=body.get("data"),
                                            metadata=body.get("metadata"), version=body.get("version"),
                                            actor=_actor(request))
        instance = instance_access_by_id(self.tenant, instance.pk)
        return Response(InstanceDetailSerializer(instance).data, status=status.HTTP_201_CREATED)

    @extend_schema(responses=InstanceDetailSerializer)
    def retrieve(self, request, pk=None):
        return Response(InstanceDetailSerializer(instance_access_by_id(self.tenant, pk)).data)

    @extend_schema(responses=OpenApiTypes.OBJECT, parameters=[OpenApiParameter("token_id", OpenApiTypes.UUID)])
    @action(detail=True, methods=["get"])
    def transitions(self, request, pk=None):
        """Every transition with `enabled`, the tokens it lacks and its guard's result and explanation."""
        instance = instance_access_by_id(self.tenant, pk)
        token_id = request.query_params.get("token_id")
        if token_id is not None:
            token_id = str(token_access_by_id(self.tenant, token_id).pk)
        return Response({"instance_id": str(instance.pk), "status": instance.status,
                         "transitions": selectors.instance_transitions(instance=instance, token_id=token_id)})

    @extend_schema(request=FireSerializer, responses=FireResultSerializer)
    @action(detail=True, methods=["post"])
    def fire(self, request, pk=None):
        body = _validated(FireSerializer, request)
        instance_access_by_id(self.tenant, pk)
        if body.get("token_id") is not None:
            token = token_access_by_id(self.tenant, body["token_id"])
            if token.instance_id != instance_access_by_id(self.tenant, pk).pk:
                raise ValidationError({"token_id": ["This token belongs to another instance."]})
            result = services.transition_fire(self.tenant, token_id=token.pk, transition_id=body["transition_id"],
                                              data=body.get("data"), actor=_actor(request))
        else:
            result = services.transition_fire(self.tenant, instance_id=pk, transition_id=body["transition_id"],
                                              data=body.get("data"), actor=_actor(request))
        return Response(_fire_response(result))

    @extend_schema(request=CancelSerializer, responses=InstanceSerializer)
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        body = _validated(CancelSerializer, request)
        instance = services.instance_cancel(self.tenant, instance_id=instance_access_by_id(self.tenant, pk).pk,
                                            actor=_actor(request), reason=body.get("reason", ""))
        return Response(InstanceSerializer(instance_access_by_id(self.tenant, instance.pk)).data)

    @extend_schema(responses=EventSerializer(many=True),
                   parameters=[OpenApiParameter("after", OpenApiTypes.INT, description="Events after this id.")])
    @action(detail=True, methods=["get"])
    def events(self, request, pk=None):
        instance = instance_access_by_id(self.tenant, pk)
        after = request.query_params.get("after", "0")
        if not after.isdigit():
            raise ValidationError({"after": ["Must be an event id."]})
        page = self.paginate_queryset(selectors.event_list(tenant=self.tenant, instance_id=instance.pk,
                                                           after_id=int(after)))
        return self.get_paginated_response(EventSerializer(page, many=True).data)


class TokenViewSet(_WorkflowsApi):
    """Tokens: find them in a place, create one (in a new instance unless one is named), read one with its
    history, fire a transition with it, update its data."""

    serializer_class = TokenSerializer

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Token.objects.none()
        params = self.request.query_params
        instance = None
        if "instance_id" in params:
            try:
                uuid.UUID(params["instance_id"])
            except ValueError:
                raise ValidationError({"instance_id": ["Must be a UUID."]}) from None
            instance = instance_access_by_id(self.tenant, params["instance_id"])
        return selectors.token_list(tenant=self.tenant, instance=instance, workflow=params.get("workflow_id"),
                                    place=params.get("place"), include_consumed=_flag(self.request, "all"))

    @extend_schema(parameters=[OpenApiParameter("workflow_id", OpenApiTypes.STR),
                               OpenApiParameter("instance_id", OpenApiTypes.UUID),
                               OpenApiParameter("place", OpenApiTypes.STR),
                               OpenApiParameter("all", OpenApiTypes.BOOL, description="Include consumed tokens.")])
    def list(self, request):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(TokenSerializer(page, many=True).data)

    @extend_schema(request=TokenCreateSerializer, responses={201: TokenSerializer})
    def create(self, request):
        body = _validated(TokenCreateSerializer, request)
        token = services.token_create(self.tenant, place=body["place"], workflow_id=body.get("workflow_id"),
                                      instance_id=body.get("instance_id"), data=body.get("data"),
                                      metadata=body.get("metadata"), actor=_actor(request))
        return Response(TokenSerializer(token_access_by_id(self.tenant, token.pk)).data,
                        status=status.HTTP_201_CREATED)

    @extend_schema(responses=TokenDetailSerializer)
    def retrieve(self, request, pk=None):
        return Response(TokenDetailSerializer(token_access_by_id(self.tenant, pk)).data)

    @extend_schema(request=TokenUpdateSerializer, responses=TokenSerializer)
    def partial_update(self, request, pk=None):
        body = _validated(TokenUpdateSerializer, request)
        token = token_access_by_id(self.tenant, pk)
        services.token_update_data(self.tenant, token_id=token.pk, data=body["data"], replace=body["replace"],
                                   actor=_actor(request))
        return Response(TokenSerializer(token_access_by_id(self.tenant, pk)).data)

    @extend_schema(request=TokenFireSerializer, responses=FireResultSerializer)
    @action(detail=True, methods=["post"])
    def fire(self, request, pk=None):
        body = _validated(TokenFireSerializer, request)
        token = token_access_by_id(self.tenant, pk)
        result = services.transition_fire(self.tenant, token_id=token.pk, transition_id=body["transition_id"],
                                          data=body.get("data"), actor=_actor(request))
        return Response(_fire_response(result))

    @extend_schema(responses=HistorySerializer(many=True))
    @action(detail=True, methods=["get"], pagination_class=None)  # the whole history, a plain list
    def history(self, request, pk=None):
        token = token_access_by_id(self.tenant, pk)
        return Response(HistorySerializer(selectors.token_history(token=token), many=True).data)
