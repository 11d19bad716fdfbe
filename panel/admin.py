from django.contrib import admin

from .admin_tools import ReadOnlyAdmin
from .models import ApiToken, AuditEvent

admin.site.site_header = "Hosting panel administration"
admin.site.site_title = "Hosting panel admin"


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    list_display = ("at", "actor_name", "action", "object_type", "object_repr", "from_state", "to_state")
    list_filter = ("object_type", "action")
    search_fields = ("actor_name", "object_repr", "object_id", "action")
    date_hierarchy = "at"


@admin.register(ApiToken)
class ApiTokenAdmin(ReadOnlyAdmin):
    """Tokens are made on the staff page (where the token is shown once); here they can be revoked."""

    list_display = ("name", "prefix", "scope", "user", "created_at", "last_used_at", "revoked_at")
    list_filter = ("scope",)
    search_fields = ("name", "prefix", "user__username")
    actions = ["revoke"]

    @admin.action(description="Revoke the selected tokens")
    def revoke(self, request, queryset):
        from .api import tokens

        for token in queryset:
            tokens.revoke(token, request.user)
        self.message_user(request, f"{queryset.count()} token(s) revoked.")
