from django.conf import settings
from django.db import models


class AppendOnlyError(Exception):
    pass


class AuditQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise AppendOnlyError("The audit log is append-only.")

    def delete(self):
        raise AppendOnlyError("The audit log is append-only.")


class AuditEvent(models.Model):
    """One state change and who made it. Rows are written once and never changed or deleted."""

    at = models.DateTimeField(auto_now_add=True, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_name = models.CharField(max_length=150, help_text="Who, as they were called then (or 'system').")
    action = models.CharField(max_length=64)
    object_type = models.CharField(max_length=64)
    object_id = models.CharField(max_length=64)
    object_repr = models.CharField(max_length=300)
    from_state = models.CharField(max_length=32, blank=True)
    to_state = models.CharField(max_length=32, blank=True)
    details = models.JSONField(default=dict, blank=True)

    objects = AuditQuerySet.as_manager()

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["object_type", "object_id"])]

    def __str__(self):
        return f"{self.at:%Y-%m-%d %H:%M} {self.actor_name} {self.action} {self.object_repr}"

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise AppendOnlyError("The audit log is append-only.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise AppendOnlyError("The audit log is append-only.")


class ApiTokenScope(models.TextChoices):
    READ = "read", "Read only"
    PROVISIONING = "provisioning", "Provisioning (accounts, plans, passwords)"
    FULL = "full", "Full (provisioning and server actions)"


class ApiToken(models.Model):
    """A key for the REST API. Only its SHA-256 is kept: the token itself is shown once, when made.

    It acts as `user` (staff see every customer; a customer's login only that customer), within
    `scope`, and only from `allowed_networks` when any are listed."""

    name = models.CharField(max_length=100, help_text="What uses it, e.g. 'WHMCS module'.")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="api_tokens")
    scope = models.CharField(max_length=16, choices=ApiTokenScope.choices, default=ApiTokenScope.READ)
    allowed_networks = models.TextField(
        blank=True, help_text="Source addresses or networks it may be used from, one per line; empty for any."
    )
    prefix = models.CharField(max_length=16, unique=True, editable=False, help_text="Identifies it in lists and logs.")
    key_hash = models.CharField(max_length=64, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+", editable=False
    )
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "API token"

    def __str__(self):
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_revoked(self) -> bool:
        return self.revoked_at is not None


class IdempotencyRecord(models.Model):
    """The answer given to a request carrying an Idempotency-Key, replayed when the same key comes again."""

    token = models.ForeignKey(ApiToken, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=200)
    fingerprint = models.CharField(max_length=64, help_text="SHA-256 of the method, path and body.")
    status_code = models.PositiveSmallIntegerField(null=True, help_text="Empty while the first request runs.")
    body = models.JSONField(null=True)
    headers = models.JSONField(default=dict, blank=True, help_text="The answer's headers a replay repeats (Location).")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["token", "key"], name="one_answer_per_idempotency_key")]

    def __str__(self):
        return f"{self.token.prefix} {self.key}"


class WebhookEvent(models.TextChoices):
    OPERATION_FINISHED = "operation.finished", "An operation finished (succeeded or failed)"
    SERVER_SUSPENDED = "server.suspended", "A server was suspended"
    TRAFFIC_EXCEEDED = "traffic.exceeded", "A server went over its monthly traffic"


def _webhook_secret() -> str:
    import secrets

    return secrets.token_urlsafe(32)


class Webhook(models.Model):
    """A URL that receives the chosen events as JSON, signed with HMAC-SHA256 of its secret."""

    url = models.URLField("URL", max_length=500, help_text="http or https; it should answer 2xx within 10 s.")
    events = models.JSONField(default=list, help_text="Which events it receives.")
    secret = models.CharField(
        max_length=100, default=_webhook_secret, help_text="Signs each delivery: X-Panel-Signature."
    )
    is_active = models.BooleanField("active", default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["url"]

    def __str__(self):
        return self.url


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    DELIVERED = "delivered", "Delivered"
    FAILED = "failed", "Failed (gave up)"


class WebhookDelivery(models.Model):
    """One event for one webhook, and how sending it went: the delivery log."""

    webhook = models.ForeignKey(Webhook, on_delete=models.CASCADE, related_name="deliveries")
    event = models.CharField(max_length=32, choices=WebhookEvent.choices)
    payload = models.JSONField()
    status = models.CharField(max_length=16, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "webhook deliveries"
        indexes = [models.Index(fields=["status", "next_attempt_at"], name="webhook_delivery_due")]

    def __str__(self):
        return f"{self.event} to {self.webhook}"
