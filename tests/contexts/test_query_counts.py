"""The servers list and a server page cost the same number of queries with 1 server or 50."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from contexts.services import create_server, finish_operation
from tests.conftest import make_plan


def queries(client, url) -> int:
    with CaptureQueriesContext(connection) as captured:
        assert client.get(url).status_code == 200
    return len(captured.captured_queries)


@pytest.mark.parametrize("as_staff", [False, True])
def test_constant_queries_whatever_the_number_of_servers(client, world, as_staff):
    from contexts.models import Host

    Host.objects.filter(pk=world.host.pk).update(cpus=100, memory_mib=10**6, disk_gib=10**5)
    account = world.provision("Alice Ltd", "alice@example.com", "s0.alice.example")
    finish_operation(account.operation.pk, ok=True)
    client.force_login(world.staff if as_staff else account.login)
    bulk = make_plan("bulk", ipv4_count=0)  # the IPv4 test pool is a /28; each server still gets an address
    client.get(reverse("server-list"))  # the first page of a session fills caches (the two-factor check)
    counts = {}
    for total in (1, 50):
        while account.customer.servers.count() < total:
            n = account.customer.servers.count()
            server, operation = create_server(
                customer=account.customer,
                plan=bulk,
                template=world.template,
                hostname=f"s{n}.alice.example",
                actor=world.staff,
            )
            finish_operation(operation.pk, ok=True)
        counts[total] = (
            queries(client, reverse("server-list")),
            queries(client, reverse("server-detail", args=[account.server.pk])),
        )
    assert counts[1] == counts[50], counts
    # One more than a page: the list counts them and pages on.
    server, operation = create_server(
        customer=account.customer, plan=bulk, template=world.template, hostname="s50.alice.example", actor=world.staff
    )
    first = client.get(reverse("server-list")).content.decode()
    assert "Page 1 of 2 (51 servers)" in first and "s50.alice.example" in first
    second = client.get(reverse("server-list"), {"page": 2}).content.decode()
    assert "Page 2 of 2" in second and second.count('data-label="Hostname"') == 1
