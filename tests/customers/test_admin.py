"""Billing in Django admin: actions through the services, usage export, read-only records."""

import csv
import datetime
import io

import pytest
from django.urls import reverse

from contexts import services as server_services
from contexts.models import Operation
from customers.models import UsageRecord
from panel.models import AuditEvent


@pytest.fixture
def running_account(world):
    result = world.provision("Alice Ltd", "alice@example.com", "www.alice.example")
    server_services.finish_operation(result.operation.pk, ok=True)
    return result


def run_action(client, model, action, pks):
    return client.post(
        reverse(f"admin:{model}_changelist"),
        {"action": action, "_selected_action": [str(pk) for pk in pks]},
        follow=True,
    )


def test_suspend_unsuspend_terminate_actions_use_the_services_and_the_audit_log(staff_client, world, running_account):
    customer = running_account.customer
    response = run_action(staff_client, "customers_customer", "suspend_customer", [customer.pk])
    assert "1 customer(s) suspended" in response.content.decode()
    customer.refresh_from_db()
    assert customer.billing_state == "suspended"
    event = AuditEvent.objects.filter(action="customer.billing_state").latest("id")
    assert (event.actor, event.from_state, event.to_state) == (world.staff, "active", "suspended")

    # The suspend operation is still queued: terminating now is refused by name, nothing changes.
    response = run_action(staff_client, "customers_customer", "terminate_customer", [customer.pk])
    assert "busy with another operation" in response.content.decode()
    customer.refresh_from_db()
    assert customer.billing_state == "suspended"

    for op in Operation.objects.filter(status="queued"):
        server_services.finish_operation(op.pk, ok=True)
    run_action(staff_client, "customers_customer", "unsuspend_customer", [customer.pk])
    customer.refresh_from_db()
    assert customer.billing_state == "active"
    for op in Operation.objects.filter(status="queued"):
        server_services.finish_operation(op.pk, ok=True)
    response = run_action(staff_client, "customers_customer", "terminate_customer", [customer.pk])
    assert "1 customer(s) terminated" in response.content.decode()
    customer.refresh_from_db()
    assert customer.billing_state == "terminated"
    assert Operation.objects.filter(kind="destroy", requested_by=world.staff).count() == 1


def test_customer_page_shows_servers_inline(staff_client, running_account):
    page = staff_client.get(
        reverse("admin:customers_customer_change", args=[running_account.customer.pk])
    ).content.decode()
    assert "www.alice.example" in page and "alice@example.com" in page


def test_usage_records_filter_and_export_as_csv(staff_client, world, running_account):
    other = world.provision("Bob", "bob@example.com", "bob.example")
    for server, month in ((running_account.server, 10), (running_account.server, 11), (other.server, 11)):
        UsageRecord.objects.create(
            server=server,
            period_start=datetime.date(2026, month, 1),
            period_end=datetime.date(2026, month, 28),
            cpu_seconds=3600.5,
            peak_memory_bytes=2**28,
            disk_bytes=2**30,
            traffic_in_bytes=10,
            traffic_out_bytes=20,
        )
    url = reverse("admin:customers_usagerecord_changelist")
    page = staff_client.get(
        url, {"server__customer__id__exact": running_account.customer.pk, "period_start": "2026-11-01"}
    )
    assert page.context["cl"].result_count == 1
    records = UsageRecord.objects.filter(period_start="2026-11-01").order_by("server__customer__name")
    response = staff_client.post(url, {"action": "export", "_selected_action": [r.pk for r in records]})
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert sorted((r["customer"], r["period_start"], r["cpu_seconds"]) for r in rows) == [
        ("Alice Ltd", "2026-11-01", "3600.5"),
        ("Bob", "2026-11-01", "3600.5"),
    ]
    assert rows[0]["traffic_out_bytes"] == "20"


@pytest.mark.parametrize("model", ["contexts_operation", "panel_auditevent", "customers_usagerecord"])
def test_records_written_by_services_are_read_only(staff_client, running_account, model):
    add = staff_client.get(reverse(f"admin:{model}_add"))
    assert add.status_code == 403
    listing = staff_client.get(reverse(f"admin:{model}_changelist"))
    assert listing.status_code == 200


def test_operation_detail_cannot_be_changed(staff_client, running_account):
    url = reverse("admin:contexts_operation_change", args=[running_account.operation.pk])
    response = staff_client.post(url, {"status": "failed"})
    assert response.status_code == 403
    running_account.operation.refresh_from_db()
    assert running_account.operation.status == "succeeded"


def test_server_admin_actions_queue_operations(staff_client, world, running_account):
    server = running_account.server
    response = run_action(staff_client, "contexts_virtualserver", "server_stop", [server.pk])
    assert "1 stop operation(s) queued" in response.content.decode()
    response = run_action(staff_client, "contexts_virtualserver", "server_start", [server.pk])
    assert "busy" in response.content.decode()


def test_admin_refuses_customers(client, running_account):
    client.force_login(running_account.login)
    response = client.get(reverse("admin:index"))
    assert response.status_code == 302 and "login" in response["Location"]
