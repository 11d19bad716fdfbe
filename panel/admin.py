from django.contrib import admin

from .admin_tools import ReadOnlyAdmin
from .models import AuditEvent

admin.site.site_header = "Hosting panel administration"
admin.site.site_title = "Hosting panel admin"


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    list_display = ("at", "actor_name", "action", "object_type", "object_repr", "from_state", "to_state")
    list_filter = ("object_type", "action")
    search_fields = ("actor_name", "object_repr", "object_id", "action")
    date_hierarchy = "at"
