"""Helpers shared by the admin modules."""

import csv

from django.contrib import admin, messages
from django.http import HttpResponse

from contexts.exceptions import ServiceError


class ReadOnlyAdmin(admin.ModelAdmin):
    """Records written only by services: staff may look, never edit."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


def service_action(service, description: str, done: str, name: str | None = None):
    """An admin action that runs `service(obj, actor)` for each selected object, each in its own
    transaction, reporting every refusal by name instead of failing the whole batch silently."""

    def action(modeladmin, request, queryset):
        succeeded = 0
        for obj in queryset:
            try:
                service(obj, request.user)
            except ServiceError as exc:
                modeladmin.message_user(request, f"{obj}: {exc}", messages.ERROR)
            else:
                succeeded += 1
        if succeeded:
            modeladmin.message_user(request, f"{succeeded} {done}.", messages.SUCCESS)

    action.short_description = description
    action.__name__ = name or service.__name__
    return action


def csv_export(columns: list[tuple[str, callable]], filename: str):
    """An admin action that downloads the selected rows as CSV, one column per (header, getter)."""

    def export(modeladmin, request, queryset):
        response = HttpResponse(content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="{filename}"'
        writer = csv.writer(response)
        writer.writerow([header for header, _ in columns])
        for obj in queryset:
            writer.writerow([get(obj) for _, get in columns])
        return response

    export.short_description = "Export selected as CSV"
    return export
