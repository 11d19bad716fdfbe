from django.contrib import admin
from django.contrib.auth.admin import UserAdmin

from contexts.models import VirtualServer
from panel.admin_tools import ReadOnlyAdmin, csv_export, service_action

from . import services
from .models import Customer, Plan, UsageRecord, User

RESOURCE_FIELDS = (
    "cpu_cores",
    "cpu_weight",
    "memory_mib",
    "swap_mib",
    "process_limit",
    "disk_gib",
    "inode_limit",
    "ipv4_count",
    "ipv6_count",
    "traffic_gib",
    "rate_mbit",
    "throttled_rate_mbit",
    "host_ports",
)


@admin.register(Plan)
class PlanAdmin(admin.ModelAdmin):
    list_display = ("name", "slug", "cpu_cores", "memory_mib", "disk_gib", "traffic_gib", "price_display", "is_active")
    list_filter = ("is_active", "currency")
    search_fields = ("name", "slug")
    prepopulated_fields = {"slug": ("name",)}
    fieldsets = (
        (None, {"fields": ("name", "slug", "is_active")}),
        ("Price", {"fields": ("price_monthly", "currency")}),
        ("CPU and memory", {"fields": ("cpu_cores", "cpu_weight", "memory_mib", "swap_mib", "process_limit")}),
        ("Disk", {"fields": ("disk_gib", "inode_limit")}),
        ("Network", {"fields": ("ipv4_count", "ipv6_count", "rate_mbit", "host_ports")}),
        ("Monthly traffic", {"fields": ("traffic_gib", "traffic_policy", "throttled_rate_mbit")}),
    )

    def get_readonly_fields(self, request, obj=None):
        # Live servers run with these limits on their hosts: to sell different resources, add a plan and
        # change the servers' plans, which applies the limits on the hosts.
        if obj and obj.servers.live().exists():
            return RESOURCE_FIELDS
        return ()

    @admin.display(description="price / month", ordering="price_monthly")
    def price_display(self, plan):
        return plan.price_display

    def has_delete_permission(self, request, obj=None):
        # A plan that was ever sold stays for the billing records; retire it with `active` instead.
        return obj is None or not obj.servers.exists()


class ServerInline(admin.TabularInline):
    model = VirtualServer
    fields = ("hostname", "state", "plan", "host", "created_at")
    readonly_fields = fields
    extra = 0
    show_change_link = True
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False  # servers are made by provisioning, which places them and allocates addresses


class LoginInline(admin.TabularInline):
    model = User
    fields = ("username", "email", "is_active", "last_login")
    readonly_fields = ("last_login",)
    extra = 0
    can_delete = False
    verbose_name = "login"


@admin.register(Customer)
class CustomerAdmin(admin.ModelAdmin):
    list_display = ("name", "email", "billing_state", "created_at")
    list_filter = ("billing_state",)
    search_fields = ("name", "email", "servers__hostname")
    readonly_fields = ("billing_state", "created_at", "updated_at")
    inlines = [LoginInline, ServerInline]
    actions = [
        service_action(services.suspend_customer, "Suspend selected customers", "customer(s) suspended"),
        service_action(services.unsuspend_customer, "Unsuspend selected customers", "customer(s) unsuspended"),
        service_action(
            services.terminate_customer,
            "Terminate selected customers (destroys their servers)",
            "customer(s) terminated",
        ),
    ]

    def has_delete_permission(self, request, obj=None):
        return False  # terminate instead: billing records and the audit log refer to customers


@admin.register(User)
class PanelUserAdmin(UserAdmin):
    list_display = ("username", "email", "customer", "is_staff", "is_active", "last_login")
    list_filter = ("is_staff", "is_active")
    fieldsets = UserAdmin.fieldsets + (("Customer", {"fields": ("customer",)}),)
    autocomplete_fields = ("customer",)


@admin.register(UsageRecord)
class UsageRecordAdmin(ReadOnlyAdmin):
    list_display = (
        "server",
        "customer",
        "period_start",
        "cpu_seconds",
        "peak_memory_bytes",
        "disk_bytes",
        "traffic_in_bytes",
        "traffic_out_bytes",
    )
    list_filter = ("period_start", "server__customer")
    search_fields = ("server__hostname", "server__customer__name")
    date_hierarchy = "period_start"
    list_select_related = ("server", "server__customer")
    actions = [
        csv_export(
            [
                ("customer", lambda r: r.server.customer.name),
                ("server", lambda r: r.server.name),
                ("hostname", lambda r: r.server.hostname),
                ("period_start", lambda r: r.period_start.isoformat()),
                ("period_end", lambda r: r.period_end.isoformat()),
                ("cpu_seconds", lambda r: r.cpu_seconds),
                ("peak_memory_bytes", lambda r: r.peak_memory_bytes),
                ("disk_bytes", lambda r: r.disk_bytes),
                ("traffic_in_bytes", lambda r: r.traffic_in_bytes),
                ("traffic_out_bytes", lambda r: r.traffic_out_bytes),
            ],
            "usage.csv",
        )
    ]

    @admin.display(ordering="server__customer__name")
    def customer(self, record):
        return record.server.customer
