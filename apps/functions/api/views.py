"""The functions management API: thin views over services, selectors and access helpers, tenant-scoped.
Command and container functions are defined and changed by staff only (a 403 for everyone else)."""

from __future__ import annotations

import uuid

from django.conf import settings
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.functions import selectors, services
from apps.functions.access import (
    chain_access_by_id,
    execution_access_by_id,
    function_access_by_id,
    trigger_access_by_id,
)
from apps.functions.models import Function, FunctionChain, FunctionExecution, FunctionTrigger
from apps.tenants.api.permissions import IsTenantAdmin
from apps.tenants.api.tenancy import request_tenant

from .serializers import (
    EXECUTION_STATUSES,
    ChainSerializer,
    EventResultSerializer,
    EventSerializer,
    ExecuteSerializer,
    ExecutionSerializer,
    FunctionSerializer,
    TriggerSerializer,
)


def _validated(serializer_class, request, **kwargs) -> dict:
    serializer = serializer_class(data=request.data, **kwargs)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


def _uuid_param(request, name: str):
    raw = request.query_params.get(name)
    if raw is None:
        return None
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise ValidationError({name: ["Must be a UUID."]}) from None


def _staff(request) -> bool:
    return bool(getattr(request.user, "is_staff", False) and request.user.is_authenticated)


class _FunctionsApi(viewsets.GenericViewSet):
    permission_classes = [IsTenantAdmin]

    @property
    def tenant(self):
        return request_tenant(self.request)

    def _page(self, rows, serializer_class):
        page = self.paginate_queryset(rows)
        return self.get_paginated_response(serializer_class(page, many=True).data)


class FunctionViewSet(_FunctionsApi):
    """A tenant's functions: runtime and its config, JSON Schemas, retries. `hmac_secret` (http) and `secret_env`
    (container) are write-only; a generated HMAC secret is returned once, in the creating answer."""

    serializer_class = FunctionSerializer

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Function.objects.none()
        return selectors.function_list(tenant=self.tenant, runtime=self.request.query_params.get("runtime"),
                                       tag=self.request.query_params.get("tag"))

    @extend_schema(parameters=[OpenApiParameter("runtime", OpenApiTypes.STR),
                               OpenApiParameter("tag", OpenApiTypes.STR)])
    def list(self, request):
        return self._page(self.get_queryset(), FunctionSerializer)

    def create(self, request):
        fields = _validated(FunctionSerializer, request)
        secret, secret_env = fields.pop("hmac_secret", None), fields.pop("secret_env", None)
        function, shown = services.function_create(self.tenant, fields=fields, secret=secret, secret_env=secret_env,
                                                   actor=str(request.user)[:200], staff=_staff(request))
        body = FunctionSerializer(function).data
        if shown:
            body["hmac_secret"] = shown
        return Response(body, status=status.HTTP_201_CREATED)

    def retrieve(self, request, pk=None):
        return Response(FunctionSerializer(function_access_by_id(self.tenant, pk)).data)

    def update(self, request, pk=None, partial=False):
        function = function_access_by_id(self.tenant, pk)
        fields = _validated(FunctionSerializer, request, instance=function, partial=partial)
        secret, secret_env = fields.pop("hmac_secret", None), fields.pop("secret_env", None)
        function, shown = services.function_update(self.tenant, function_id=function.id, fields=fields, secret=secret,
                                                   secret_env=secret_env, staff=_staff(request))
        body = FunctionSerializer(function).data
        if shown:
            body["hmac_secret"] = shown
        return Response(body)

    def partial_update(self, request, pk=None):
        return self.update(request, pk, partial=True)

    def destroy(self, request, pk=None):
        services.function_delete(self.tenant, function_id=pk, staff=_staff(request))
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request=ExecuteSerializer, responses={202: ExecutionSerializer, 200: ExecutionSerializer})
    @action(detail=True, methods=["post"])
    def execute(self, request, pk=None):
        """Start a run. With `wait: true` the answer comes when it finished (200), or after
        FUNCTIONS_EXECUTE_WAIT_SECONDS with the run as it is then (202); else at once (202)."""
        body = _validated(ExecuteSerializer, request)
        execution = services.function_execute(self.tenant, function_id=pk, input=body["input"], trigger="api",
                                              strict=True)
        if body["wait"]:
            execution = services.execution_wait(execution, settings.FUNCTIONS_EXECUTE_WAIT_SECONDS)
        code = status.HTTP_200_OK if execution.finished else status.HTTP_202_ACCEPTED
        return Response(ExecutionSerializer(execution).data, status=code)


class TriggerViewSet(_FunctionsApi):
    """What starts functions by themselves: workflow events, function completions, custom events, schedules."""

    serializer_class = TriggerSerializer

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return FunctionTrigger.objects.none()
        function_id = _uuid_param(self.request, "function")
        function = function_access_by_id(self.tenant, function_id) if function_id else None
        return selectors.trigger_list(tenant=self.tenant, function=function,
                                      kind=self.request.query_params.get("kind"))

    @extend_schema(parameters=[OpenApiParameter("function", OpenApiTypes.UUID),
                               OpenApiParameter("kind", OpenApiTypes.STR)])
    def list(self, request):
        return self._page(self.get_queryset(), TriggerSerializer)

    def create(self, request):
        fields = _validated(TriggerSerializer, request)
        function_id = fields.pop("function_id")
        trigger = services.trigger_create(self.tenant, function_id=function_id, fields=fields)
        return Response(TriggerSerializer(trigger).data, status=status.HTTP_201_CREATED)

    def retrieve(self, request, pk=None):
        return Response(TriggerSerializer(trigger_access_by_id(self.tenant, pk)).data)

    def update(self, request, pk=None, partial=False):
        trigger = trigger_access_by_id(self.tenant, pk)
        fields = _validated(TriggerSerializer, request, instance=trigger, partial=partial)
        if fields.pop("function_id", trigger.function_id) != trigger.function_id:
            raise ValidationError({"function": ["A trigger's function cannot change; create another trigger."]})
        trigger = services.trigger_update(self.tenant, trigger_id=trigger.id, fields=fields)
        return Response(TriggerSerializer(trigger).data)

    def partial_update(self, request, pk=None):
        return self.update(request, pk, partial=True)

    def destroy(self, request, pk=None):
        services.trigger_delete(self.tenant, trigger_id=pk)
        return Response(status=status.HTTP_204_NO_CONTENT)


class ChainViewSet(_FunctionsApi):
    """After a function finishes: run another always, on success, on failure, or when a condition holds."""

    serializer_class = ChainSerializer

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return FunctionChain.objects.none()
        function_id = _uuid_param(self.request, "function")
        function = function_access_by_id(self.tenant, function_id) if function_id else None
        return selectors.chain_list(tenant=self.tenant, function=function)

    @extend_schema(parameters=[OpenApiParameter("function", OpenApiTypes.UUID)])
    def list(self, request):
        return self._page(self.get_queryset(), ChainSerializer)

    def create(self, request):
        fields = _validated(ChainSerializer, request)
        chain = services.chain_create(self.tenant, function_id=fields.pop("function_id"),
                                      next_function_id=fields.pop("next_function_id"), fields=fields)
        return Response(ChainSerializer(chain).data, status=status.HTTP_201_CREATED)

    def retrieve(self, request, pk=None):
        return Response(ChainSerializer(chain_access_by_id(self.tenant, pk)).data)

    def update(self, request, pk=None, partial=False):
        chain = chain_access_by_id(self.tenant, pk)
        fields = _validated(ChainSerializer, request, instance=chain, partial=partial)
        if (fields.pop("function_id", chain.function_id) != chain.function_id
                or fields.pop("next_function_id", chain.next_function_id) != chain.next_function_id):
            raise ValidationError({"function": ["A chain's functions cannot change; create another chain."]})
        return Response(ChainSerializer(services.chain_update(self.tenant, chain_id=chain.id, fields=fields)).data)

    def partial_update(self, request, pk=None):
        return self.update(request, pk, partial=True)

    def destroy(self, request, pk=None):
        services.chain_delete(self.tenant, chain_id=pk)
        return Response(status=status.HTTP_204_NO_CONTENT)


class ExecutionViewSet(_FunctionsApi):
    """Every run of a function (read-only), filterable; pending and running ones can be cancelled."""

    serializer_class = ExecutionSerializer

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return FunctionExecution.objects.none()
        params = self.request.query_params
        function_id = _uuid_param(self.request, "function")
        run_status = params.get("status")
        if run_status is not None and run_status not in EXECUTION_STATUSES:
            raise ValidationError({"status": [f"Must be one of {', '.join(EXECUTION_STATUSES)}."]})
        return selectors.execution_list(
            tenant=self.tenant, function=function_access_by_id(self.tenant, function_id) if function_id else None,
            status=run_status, instance_id=_uuid_param(self.request, "instance"),
            token_id=_uuid_param(self.request, "token"), agent_execution_id=params.get("agent_execution") or None)

    @extend_schema(parameters=[OpenApiParameter("function", OpenApiTypes.UUID),
                               OpenApiParameter("status", OpenApiTypes.STR, enum=EXECUTION_STATUSES),
                               OpenApiParameter("instance", OpenApiTypes.UUID),
                               OpenApiParameter("token", OpenApiTypes.UUID),
                               OpenApiParameter("agent_execution", OpenApiTypes.STR)])
    def list(self, request):
        return self._page(self.get_queryset(), ExecutionSerializer)

    def retrieve(self, request, pk=None):
        return Response(ExecutionSerializer(execution_access_by_id(self.tenant, pk)).data)

    @extend_schema(request=None, responses=ExecutionSerializer)
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        return Response(ExecutionSerializer(services.execution_cancel(self.tenant, execution_id=pk)).data)


class EventView(APIView):
    """Emit a named custom event: the tenant's `custom` triggers of that name whose conditions hold start."""

    permission_classes = [IsTenantAdmin]

    @extend_schema(request=EventSerializer, responses={202: EventResultSerializer})
    def post(self, request):
        body = _validated(EventSerializer, request)
        started = services.event_emit(request_tenant(request), name=body["name"], data=body["data"])
        return Response({"name": body["name"], "executions": [str(e.id) for e in started]},
                        status=status.HTTP_202_ACCEPTED)
