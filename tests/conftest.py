import os
import uuid
from decimal import Decimal

import pytest
from django.db import connection

from contexts.choices import ServerState
from contexts.models import Host, IPPool, Template
from contexts.services import finish_operation
from customers import services as customer_services
from customers.models import Customer, Plan, User

pytest_plugins = ["tests.kernel", "tests.pipeline_world"]


def require(condition: bool, reason: str) -> None:
    """Skip when a service the test needs is missing, or fail when the run requires services
    (REQUIRE_SERVICES=1, set by the README's test command) so CI never passes by skipping."""
    if condition:
        return
    if os.environ.get("REQUIRE_SERVICES") == "1":
        pytest.fail(f"{reason} (REQUIRE_SERVICES=1)")
    pytest.skip(reason)


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def postgres():
    require(connection.vendor == "postgresql", "needs PostgreSQL: set DATABASE_URL=postgres://...")


def make_plan(slug="small", **overrides) -> Plan:
    values = dict(
        name=slug.title(),
        cpu_cores=Decimal("0.50"),
        cpu_weight=100,
        memory_mib=512,
        swap_mib=256,
        disk_gib=10,
        inode_limit=100_000,
        process_limit=128,
        ipv4_count=1,
        ipv6_count=1,
        traffic_gib=500,
        rate_mbit=100,
        price_monthly=Decimal("5.00"),
        currency="EUR",
    )
    values.update(overrides)
    return Plan.objects.create(slug=slug, **values)


def make_host(name=None, **overrides) -> Host:
    values = dict(cpus=Decimal("4"), memory_mib=8192, disk_gib=200)
    values.update(overrides)
    return Host.objects.create(name=name or f"host-{uuid.uuid4().hex[:8]}", **values)


def make_pool(name, cidr, gateway, *hosts) -> IPPool:
    pool = IPPool(name=name, cidr=cidr, gateway=gateway)
    pool.full_clean()
    pool.save()
    pool.hosts.add(*hosts)
    return pool


@pytest.fixture
def world(db):
    """One host with a template, an IPv4 /28 and an IPv6 /64 pool, a plan and a staff login."""
    host = make_host()
    template = Template.objects.create(name="busybox", distribution="BusyBox", version="1.35")
    template.hosts.add(host)
    v4 = make_pool("v4", "192.0.2.0/28", "192.0.2.1", host)
    v6 = make_pool("v6", "2001:db8::/64", "2001:db8::1", host)
    plan = make_plan()
    staff = User.objects.create_user(
        "admin", "admin@example.net", "correct-horse-battery", is_staff=True, is_superuser=True
    )
    world = type("World", (), dict(host=host, template=template, v4=v4, v6=v6, plan=plan, staff=staff))

    def provision(name, email, hostname, **overrides):
        """A new account with a server through the service, staff acting; keywords override."""
        values = dict(name=name, email=email, plan=plan, template=template, hostname=hostname, actor=staff)
        return customer_services.provision_account(**values | overrides)

    world.provision = staticmethod(provision)
    return world


@pytest.fixture
def customer_login(db):
    def make(name="Alice", email=None):
        customer = Customer.objects.create(name=name, email=email or f"{name.lower()}@example.com")
        login = User.objects.create_user(customer.email, customer.email, "correct-horse-battery", customer=customer)
        return customer, login

    return make


@pytest.fixture
def staff_client(client, world):
    client.force_login(world.staff)
    return client


@pytest.fixture
def running(world):
    """Alice's server, created and running (the host's outcome recorded as a host would)."""
    account = world.provision("Alice Ltd", "alice@example.com", "www.alice.example")
    finish_operation(account.operation.pk, ok=True)
    account.server.refresh_from_db()
    assert account.server.state == ServerState.RUNNING
    return account
