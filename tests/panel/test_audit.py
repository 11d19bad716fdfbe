"""The audit log is append-only."""

import pytest

from panel import audit
from panel.models import AppendOnlyError, AuditEvent


def test_events_cannot_be_changed_or_deleted(world):
    event = audit.record(world.staff, "host.state", world.host, "active", "maintenance")
    assert event.actor_name == "admin" and event.object_type == "host" and event.object_id == str(world.host.pk)
    event.action = "forged"
    with pytest.raises(AppendOnlyError):
        event.save()
    with pytest.raises(AppendOnlyError):
        event.delete()
    with pytest.raises(AppendOnlyError):
        AuditEvent.objects.filter(pk=event.pk).update(action="forged")
    with pytest.raises(AppendOnlyError):
        AuditEvent.objects.all().delete()
    assert AuditEvent.objects.get(pk=event.pk).action == "host.state"


def test_events_without_a_person_are_by_the_system(world):
    assert audit.record(None, "x", world.host).actor_name == "system"


def test_events_keep_the_actors_name_after_the_login_is_gone(world):
    event = audit.record(world.staff, "x", world.host)
    world.staff.delete()
    event.refresh_from_db()
    assert event.actor is None and event.actor_name == "admin"
