"""A host that runs guests unsafely (no syscall filter) says so in its report, and staff see it."""

import time

from django.urls import reverse

from contexts import reconcile
from panel.models import AuditEvent

NOTE = "Guests run without a syscall filter (CONTEXTS_UNSAFE_NO_SECCOMP is set)."


def report(name, **extra):
    return {
        "host": name,
        "time": time.time() + 5,
        "capacity": {"cpus": 4, "memory_mib": 8192, "disk_gib": 200},
        "templates": ["busybox"],
        "contexts": [],
    } | extra


def test_an_unsafe_host_is_marked_on_the_dashboard_and_in_the_admin_until_it_reports_otherwise(staff_client, world):
    host = reconcile.apply_report(report(world.host.name, unsafe=[NOTE]))
    assert host.unsafe_notes == [NOTE]
    assert AuditEvent.objects.filter(action="host.unsafe", object_id=str(host.pk)).count() == 1
    page = staff_client.get(reverse("dashboard")).content.decode()
    assert 'role="alert"' in page and f"UNSAFE: {host.name}" in page and NOTE in page
    changelist = staff_client.get(reverse("admin:contexts_host_changelist")).content.decode()
    assert "UNSAFE: " + NOTE in changelist
    change = staff_client.get(reverse("admin:contexts_host_change", args=[host.pk])).content.decode()
    assert "UNSAFE: " + NOTE in change

    reconcile.apply_report(report(world.host.name, unsafe=[NOTE]))  # unchanged: no new audit event
    assert AuditEvent.objects.filter(action="host.unsafe", object_id=str(host.pk)).count() == 1

    host = reconcile.apply_report(report(world.host.name))  # an agent that says nothing: nothing unsafe
    assert host.unsafe_notes == []
    page = staff_client.get(reverse("dashboard")).content.decode()
    assert "UNSAFE" not in page and NOTE not in page


def test_unsafe_notes_from_a_host_are_checked_before_they_are_kept(staff_client, world):
    host = reconcile.apply_report(report(world.host.name, unsafe="not a list"))
    assert host.unsafe_notes == []
    host = reconcile.apply_report(report(world.host.name, unsafe=[NOTE, 42, "", {"x": 1}, "y" * 1000]))
    assert host.unsafe_notes == [NOTE, "y" * reconcile.UNSAFE_NOTE_CHARS]
    host = reconcile.apply_report(report(world.host.name, unsafe=[f"note {i}" for i in range(50)]))
    assert len(host.unsafe_notes) == reconcile.UNSAFE_NOTES_MAX
    reconcile.apply_report(report(world.host.name, unsafe=["<script>alert(1)</script>"]))
    page = staff_client.get(reverse("dashboard")).content.decode()
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
