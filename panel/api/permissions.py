"""What a token's scope allows: reading, provisioning (accounts, plans, passwords), or everything."""

from rest_framework.permissions import SAFE_METHODS, BasePermission

from panel.models import ApiToken, ApiTokenScope

RANK = {ApiTokenScope.READ: 0, ApiTokenScope.PROVISIONING: 1, ApiTokenScope.FULL: 2}


def required_scope(request, view) -> str:
    if request.method in SAFE_METHODS:
        return ApiTokenScope.READ
    # Unsafe methods need what the view names for its action, and the widest scope when it names none.
    return getattr(view, "action_scopes", {}).get(getattr(view, "action", None), ApiTokenScope.FULL)


class TokenScope(BasePermission):
    def has_permission(self, request, view):
        token = request.auth
        if not isinstance(token, ApiToken):
            return False
        needed = required_scope(request, view)
        if RANK[ApiTokenScope(token.scope)] < RANK[ApiTokenScope(needed)]:
            self.message = f"This API token's scope ({token.scope}) does not allow this; it needs {needed}."
            return False
        return True


class StaffOnly(BasePermission):
    """Accounts, hosts and billing state are the hosting company's: tokens acting for staff only."""

    message = "Only a token acting for a staff account may do this."

    def has_permission(self, request, view):
        return bool(request.user and request.user.is_staff)
