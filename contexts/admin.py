from django.contrib import admin, messages

from panel.admin_tools import ReadOnlyAdmin, service_action

from . import services
from .choices import OperationKind
from .models import Host, IPAddress, IPPool, Operation, Template, VirtualServer


@admin.register(Host)
class HostAdmin(admin.ModelAdmin):
    list_display = ("name", "state", "safety", "cpus", "memory_mib", "disk_gib", "last_heartbeat")
    list_filter = ("state",)
    search_fields = ("name",)

    @admin.display(description="safety")
    def safety(self, obj):
        return "UNSAFE: " + " ".join(obj.unsafe_notes) if obj.unsafe_notes else "-"

    def get_readonly_fields(self, request, obj=None):
        # The name is the host agent's identity and its queue: renaming would strand its work. What
        # the host reported (heartbeat, unsafe notes) is the host's to say, not staff's to edit.
        return ("last_heartbeat", "unsafe_notes", "created_at") + (("name",) if obj else ())

    def change_view(self, request, object_id, form_url="", extra_context=None):
        host = self.get_object(request, object_id)
        if host and host.unsafe_notes and request.method == "GET":
            messages.warning(request, "UNSAFE: " + " ".join(host.unsafe_notes))
        return super().change_view(request, object_id, form_url, extra_context)

    def has_delete_permission(self, request, obj=None):
        return obj is None or not obj.servers.exists()


@admin.register(Template)
class TemplateAdmin(admin.ModelAdmin):
    list_display = ("name", "distribution", "version", "is_active")
    list_filter = ("is_active", "distribution")
    filter_horizontal = ("hosts",)


@admin.register(IPPool)
class IPPoolAdmin(admin.ModelAdmin):
    list_display = ("name", "cidr", "gateway", "family", "used")
    filter_horizontal = ("hosts",)

    def get_readonly_fields(self, request, obj=None):
        # Servers use addresses from it: its network can no longer move under them.
        return ("cidr", "gateway") if obj and obj.addresses.exists() else ()

    @admin.display(description="addresses taken")
    def used(self, pool):
        return f"{pool.addresses.count()} of {pool.size()}"


@admin.register(IPAddress)
class IPAddressAdmin(admin.ModelAdmin):
    list_display = ("address", "pool", "server", "description", "assigned_at")
    list_filter = ("pool",)
    search_fields = ("address", "server__hostname", "description")

    def get_readonly_fields(self, request, obj=None):
        # Assigned and released by services only; staff may reserve free addresses here.
        return ("pool", "address", "server") if obj and obj.server_id else ("server",)

    def has_delete_permission(self, request, obj=None):
        return obj is None or obj.server_id is None


def _server_action(kind):
    return lambda server, actor: services.request_action(server, kind, actor)


@admin.register(VirtualServer)
class VirtualServerAdmin(admin.ModelAdmin):
    list_display = ("hostname", "name", "customer", "host", "plan", "state", "created_at")
    list_filter = ("state", "host", "plan")
    search_fields = ("hostname", "customer__name", "addresses__address")
    readonly_fields = ("customer", "host", "template", "plan", "context_id", "state", "created_at", "updated_at")
    actions = [
        service_action(
            _server_action(kind),
            f"{OperationKind(kind).label} selected servers",
            f"{kind} operation(s) queued",
            name=f"server_{kind}",
        )
        for kind in (
            OperationKind.START,
            OperationKind.STOP,
            OperationKind.RESTART,
            OperationKind.SUSPEND,
            OperationKind.UNSUSPEND,
            OperationKind.DESTROY,
        )
    ]

    def has_add_permission(self, request):
        return False  # use "Provision account", which places the server and allocates its addresses

    def has_change_permission(self, request, obj=None):
        return False  # hostname and plan changes are operations on the host

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Operation)
class OperationAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "server", "kind", "status", "progress", "step", "requested_by", "finished_at")
    list_filter = ("status", "kind")
    search_fields = ("server__hostname", "error")
    date_hierarchy = "created_at"
