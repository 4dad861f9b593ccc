from __future__ import annotations

from rest_framework import permissions

from apps.tenants.models import ApiKey, Membership
from apps.tenants.selectors import membership_role

from .tenancy import request_tenant


class IsTenantAdmin(permissions.BasePermission):
    """Reads: a key with `read` or `admin` scope, or any member. Writes: `admin` scope, owners and admins."""

    message = "This API key or user may not manage this tenant."

    def has_permission(self, request, view):
        safe = request.method in permissions.SAFE_METHODS
        if isinstance(request.auth, ApiKey):
            return request.auth.has_scope(ApiKey.Scope.ADMIN) or (safe and request.auth.has_scope(ApiKey.Scope.READ))
        user = request.user
        if not (user and user.is_authenticated):
            return False
        if getattr(view, "tenant_free", False):
            return True
        role = membership_role(user=user, tenant=request_tenant(request))
        if role is None:
            return False
        return safe or role in Membership.ADMIN_ROLES


class IsStaffOrReadOnly(permissions.BasePermission):
    """Writes by staff (session) only; reads by anyone authenticated."""

    def has_permission(self, request, view):
        if not (request.user and request.user.is_authenticated):
            return False
        if request.method in permissions.SAFE_METHODS:
            return True
        return bool(request.user.is_staff)
