"""The agents management API: thin views over services, selectors and access helpers, tenant-scoped."""

from __future__ import annotations

import uuid

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from apps.agents import selectors, services
from apps.agents.access import agent_access_by_id, execution_access_by_id, place_agent_access_by_id
from apps.agents.models import FINISHED, Agent, AgentExecution, PlaceAgent
from apps.core.errors import NotFound
from apps.tenants.api.permissions import IsTenantAdmin
from apps.tenants.api.tenancy import request_tenant

from .serializers import (
    STATUSES,
    AgentExecuteSerializer,
    AgentExecutionSerializer,
    AgentSerializer,
    PlaceAgentSerializer,
)


class _AgentsApi(viewsets.GenericViewSet):
    permission_classes = [IsTenantAdmin]

    @property
    def tenant(self):
        return request_tenant(self.request)

    def _validated(self, serializer_class, *, instance=None, partial=False):
        serializer = serializer_class(instance, data=self.request.data, partial=partial)
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data

    def _page(self, rows, serializer_class):
        page = self.paginate_queryset(rows)
        return self.get_paginated_response(serializer_class(page, many=True).data)


def _uuid_param(params, name: str):
    raw = params.get(name)
    if raw is None:
        return None
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise ValidationError({name: ["Must be a UUID."]}) from None


def _int_param(params, name: str):
    raw = params.get(name)
    if raw is None:
        return None
    if not raw.isdigit():
        raise ValidationError({name: ["Must be an integer id."]})
    return int(raw)


class AgentViewSet(_AgentsApi):
    """Agents: a model, prompts, LLM settings and the functions they may call. `POST …/{id}/execute/` runs one
    outside workflows."""

    serializer_class = AgentSerializer

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Agent.objects.none()
        return selectors.agent_list(tenant=self.tenant)

    def list(self, request):
        return self._page(self.get_queryset(), AgentSerializer)

    def create(self, request):
        data = self._validated(AgentSerializer)
        agent = services.agent_create(self.tenant, **data)
        return Response(AgentSerializer(agent).data, status=status.HTTP_201_CREATED)

    def retrieve(self, request, pk=None):
        return Response(AgentSerializer(agent_access_by_id(self.tenant, pk)).data)

    def update(self, request, pk=None):
        agent = agent_access_by_id(self.tenant, pk, for_write=True)
        data = self._validated(AgentSerializer, instance=agent, partial=request.method == "PATCH")
        return Response(AgentSerializer(services.agent_update(self.tenant, agent=agent, **data)).data)

    def partial_update(self, request, pk=None):
        return self.update(request, pk)

    def destroy(self, request, pk=None):
        services.agent_delete(self.tenant, agent=agent_access_by_id(self.tenant, pk, for_write=True))
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request=AgentExecuteSerializer,
                   responses={200: AgentExecutionSerializer, 202: AgentExecutionSerializer})
    @action(detail=True, methods=["post"])
    def execute(self, request, pk=None):
        """Run the agent on `input` (its template variables). 202 with the pending execution, or with `wait`
        the finished one (200) when it ends within the wait."""
        agent = agent_access_by_id(self.tenant, pk)
        data = self._validated(AgentExecuteSerializer)
        execution = services.agent_execute(self.tenant, agent=agent, input=data.get("input") or {})
        execution = services.execution_wait(execution, data.get("wait", 0.0))
        finished = execution.status in FINISHED
        return Response(AgentExecutionSerializer(execution).data,
                        status=status.HTTP_200_OK if finished else status.HTTP_202_ACCEPTED)


class PlaceAgentViewSet(_AgentsApi):
    """Place agents (the original's PlaceAgentConfig): an agent bound to a workflow place, run on every token
    that enters it (when its trigger conditions hold)."""

    serializer_class = PlaceAgentSerializer

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return PlaceAgent.objects.none()
        params = self.request.query_params
        return selectors.place_agent_list(tenant=self.tenant, workflow=params.get("workflow_id"),
                                          agent_id=_int_param(params, "agent_id"))

    @extend_schema(parameters=[OpenApiParameter("workflow_id", OpenApiTypes.STR),
                               OpenApiParameter("agent_id", OpenApiTypes.INT)])
    def list(self, request):
        return self._page(self.get_queryset(), PlaceAgentSerializer)

    def _fields(self, data):
        if "agent_id" in data:
            try:
                data["agent"] = agent_access_by_id(self.tenant, data.pop("agent_id"))
            except NotFound as error:
                raise ValidationError({"agent": [error.message]}) from None
        return data

    def create(self, request):
        fields = self._fields(self._validated(PlaceAgentSerializer))
        binding = services.place_agent_create(self.tenant, **fields)
        return Response(PlaceAgentSerializer(binding).data, status=status.HTTP_201_CREATED)

    def retrieve(self, request, pk=None):
        return Response(PlaceAgentSerializer(place_agent_access_by_id(self.tenant, pk)).data)

    def update(self, request, pk=None):
        binding = place_agent_access_by_id(self.tenant, pk, for_write=True)
        fields = self._fields(self._validated(PlaceAgentSerializer, instance=binding,
                                              partial=request.method == "PATCH"))
        return Response(PlaceAgentSerializer(services.place_agent_update(self.tenant, binding=binding,
                                                                         **fields)).data)

    def partial_update(self, request, pk=None):
        return self.update(request, pk)

    def destroy(self, request, pk=None):
        services.place_agent_delete(self.tenant, binding=place_agent_access_by_id(self.tenant, pk, for_write=True))
        return Response(status=status.HTTP_204_NO_CONTENT)


class AgentExecutionViewSet(_AgentsApi):
    """Agent executions (read-only): filter by `agent_id`, `status`, `instance_id`, `token_id`."""

    serializer_class = AgentExecutionSerializer

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return AgentExecution.objects.none()
        params = self.request.query_params
        state = params.get("status")
        if state is not None and state not in STATUSES:
            raise ValidationError({"status": [f"One of {', '.join(STATUSES)}."]})
        return selectors.execution_list(tenant=self.tenant, agent_id=_int_param(params, "agent_id"), status=state,
                                        instance_id=_uuid_param(params, "instance_id"),
                                        token_id=_uuid_param(params, "token_id"))

    @extend_schema(parameters=[OpenApiParameter("agent_id", OpenApiTypes.INT),
                               OpenApiParameter("status", OpenApiTypes.STR, enum=STATUSES),
                               OpenApiParameter("instance_id", OpenApiTypes.UUID),
                               OpenApiParameter("token_id", OpenApiTypes.UUID)])
    def list(self, request):
        return self._page(self.get_queryset(), AgentExecutionSerializer)

    def retrieve(self, request, pk=None):
        return Response(AgentExecutionSerializer(execution_access_by_id(self.tenant, pk)).data)

    @extend_schema(request=None, responses=AgentExecutionSerializer)
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        """Cancel a pending or running execution (a running stream stops within ~100 ms)."""
        execution = execution_access_by_id(self.tenant, pk)
        return Response(AgentExecutionSerializer(services.execution_cancel(self.tenant, execution=execution)).data)
