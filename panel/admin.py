from django import forms
from django.contrib import admin

from . import webhooks
from .admin_tools import ReadOnlyAdmin, service_action
from .api import tokens
from .models import ApiToken, AuditEvent, DeliveryStatus, Webhook, WebhookDelivery, WebhookEvent

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
    actions = [service_action(tokens.revoke, "Revoke the selected tokens", "token(s) revoked")]


class WebhookForm(forms.ModelForm):
    url = forms.URLField(label="URL", max_length=500, assume_scheme="https")
    events = forms.MultipleChoiceField(choices=WebhookEvent.choices, widget=forms.CheckboxSelectMultiple)

    class Meta:
        model = Webhook
        fields = ("url", "events", "is_active")

    def clean_url(self):
        url = self.cleaned_data["url"]
        if not url.startswith(("http://", "https://")):
            raise forms.ValidationError("Use an http:// or https:// URL.")
        return url


@admin.register(Webhook)
class WebhookAdmin(admin.ModelAdmin):
    """Staff register receivers here; the secret that signs deliveries is made once and shown here."""

    form = WebhookForm
    list_display = ("url", "event_list", "is_active", "created_at")
    readonly_fields = ("secret", "created_at")

    @admin.display(description="events")
    def event_list(self, webhook):
        return ", ".join(webhook.events)


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ReadOnlyAdmin):
    """The delivery log: every event sent, its attempts and the receiver's last answer."""

    list_display = ("created_at", "event", "webhook", "status", "attempts", "last_status_code", "last_error")
    list_filter = ("status", "event")
    search_fields = ("webhook__url", "last_error")
    date_hierarchy = "created_at"
    actions = ["send_again"]

    @admin.action(description="Send the selected deliveries again")
    def send_again(self, request, queryset):
        pks = list(queryset.values_list("pk", flat=True))
        WebhookDelivery.objects.filter(pk__in=pks).update(status=DeliveryStatus.PENDING, next_attempt_at=None)
        for pk in pks:
            webhooks.send_later(pk)  # by the panel worker: no HTTP inside an admin request
        self.message_user(request, f"{len(pks)} delivery(ies) queued again; see their status.")
