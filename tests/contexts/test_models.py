"""Validation of pools and addresses (what the admin forms run), and the panel-side callback task."""

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from contexts.models import IPAddress
from contexts.tasks import record_outcome
from tests.conftest import make_pool


@pytest.mark.parametrize(
    "cidr, gateway, message",
    [
        ("192.0.2.5/24", None, "has host bits set"),
        ("not-a-network", None, "is not a network in CIDR notation"),
        ("198.51.100.0/24", "192.0.2.1", "is not inside 198.51.100.0/24"),
        ("192.0.2.0/25", None, "overlaps the pool v4"),
    ],
)
def test_pool_validation(world, cidr, gateway, message):
    with pytest.raises(ValidationError, match=message):
        make_pool("new", cidr, gateway)


def test_pool_family_and_usable_addresses(world):
    assert world.v4.family == 4 and world.v6.family == 6
    assert world.v4.size() == 13  # a /28 less network, broadcast and gateway
    assert world.v4.first_available(2) == ["192.0.2.2", "192.0.2.3"]
    assert world.v6.first_available(1) == ["2001:db8::2"]


def test_address_must_be_inside_its_pool(world):
    with pytest.raises(ValidationError, match="not inside the pool"):
        IPAddress(pool=world.v4, address="198.51.100.7").full_clean()


def test_assigned_addresses_cannot_be_edited_or_deleted_in_admin(client, world):
    result = world.provision("A", "a@example.com", "a.example")
    client.force_login(world.staff)
    address = result.server.addresses.get(pool=world.v4)
    response = client.post(reverse("admin:contexts_ipaddress_delete", args=[address.pk]), {"post": "yes"})
    assert response.status_code == 403
    page = client.get(reverse("admin:contexts_ippool_change", args=[world.v4.pk])).content.decode()
    assert 'name="cidr"' not in page  # read-only once addresses are in use
    page = client.get(reverse("admin:customers_plan_change", args=[world.plan.pk])).content.decode()
    assert 'name="memory_mib"' not in page and 'name="price_monthly"' in page


def test_record_outcome_task_finishes_the_operation(world):
    result = world.provision("A", "a@example.com", "a.example")
    record_outcome.apply(args=[{"operation": str(result.operation.pk), "ok": False, "error": "no such template"}])
    result.operation.refresh_from_db()
    result.server.refresh_from_db()
    assert result.operation.status == "failed" and result.operation.error == "no such template"
    assert result.server.state == "failed"
