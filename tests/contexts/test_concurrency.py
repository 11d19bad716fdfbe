"""Provisions at the same moment on PostgreSQL, each on its own connection."""

import threading
from decimal import Decimal

import pytest
from django.db import connection

from contexts.exceptions import NoCapacity
from contexts.models import IPAddress, VirtualServer
from customers import services
from customers.models import Customer
from tests.conftest import make_pool

PARALLEL = 20


def provision_in_parallel(world, count):
    """Start `count` provisions together on separate connections; return (results, errors)."""
    start = threading.Barrier(count)
    results, errors = [], []

    def provision(n):
        try:
            start.wait()
            results.append(
                services.provision_account(
                    name=f"Customer {n}",
                    email=f"c{n}@example.com",
                    plan=world.plan,
                    template=world.template,
                    hostname=f"www{n}.example.com",
                    actor=None,
                )
            )
        except Exception as exc:  # collected and checked by the test
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=provision, args=(n,)) for n in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return results, errors


@pytest.mark.django_db(transaction=True)
def test_parallel_provisions_get_distinct_addresses_and_context_ids(postgres, world):
    world.host.cpus, world.host.memory_mib = Decimal("16"), 65536
    world.host.save()
    make_pool("v4-wide", "198.51.100.0/24", "198.51.100.1", world.host)  # the /28 has room for 13 only
    results, errors = provision_in_parallel(world, PARALLEL)
    assert not errors, errors
    assert len(results) == PARALLEL
    servers = VirtualServer.objects.all()
    assert servers.count() == PARALLEL
    assert len(set(servers.values_list("context_id", flat=True))) == PARALLEL
    addresses = list(IPAddress.objects.values_list("address", flat=True))
    assert len(addresses) == 2 * PARALLEL and len(set(addresses)) == len(addresses)


@pytest.mark.django_db(transaction=True)
def test_parallel_provisions_never_oversell_a_host(postgres, world):
    """4 CPUs sold in halves fit 8 servers: of 20 racing requests exactly 8 win, the rest leave nothing."""
    make_pool("v4-wide", "198.51.100.0/24", "198.51.100.1", world.host)
    results, errors = provision_in_parallel(world, PARALLEL)
    assert len(results) == 8, errors
    assert len(errors) == PARALLEL - 8 and all(isinstance(e, NoCapacity) for e in errors), errors
    assert VirtualServer.objects.count() == 8 and Customer.objects.count() == 8
    assert IPAddress.objects.count() == 16
