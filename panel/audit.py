"""Writing the audit log: every service that changes state calls `record`."""

from .models import AuditEvent


def actor_label(actor) -> str:
    if actor is None:
        return "system"
    token = getattr(actor, "api_token", None)  # set by the API's authentication
    if token is not None:
        return f"{actor.get_username()} (API token {token.name})"[:150]
    return actor.get_username()


def record(actor, action: str, obj, from_state: str = "", to_state: str = "", **details) -> AuditEvent:
    return AuditEvent.objects.create(
        actor=actor,
        actor_name=actor_label(actor),
        action=action,
        object_type=obj._meta.model_name,
        object_id=str(obj.pk),
        object_repr=str(obj)[:300],
        from_state=from_state or "",
        to_state=to_state or "",
        details=details,
    )


def events_for(obj, limit: int = 20):
    """The newest audit events about `obj`."""
    return AuditEvent.objects.filter(object_type=obj._meta.model_name, object_id=str(obj.pk))[:limit]
