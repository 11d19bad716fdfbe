"""Seed a demo installation and print its logins: plans, this machine as a host, a template, pools."""

import secrets
from decimal import Decimal

from django.core.management.base import BaseCommand
from django.db import transaction

from contexts.engine.hostinfo import host_name, read_capacity
from contexts.models import Host, IPPool, Template
from customers import services
from customers.models import Plan, User

PLANS = [
    dict(
        slug="small",
        name="Small",
        cpu_cores=Decimal("0.50"),
        cpu_weight=100,
        memory_mib=512,
        swap_mib=256,
        disk_gib=10,
        inode_limit=200_000,
        process_limit=256,
        ipv4_count=1,
        ipv6_count=1,
        traffic_gib=1000,
        rate_mbit=100,
        price_monthly=Decimal("4.00"),
    ),
    dict(
        slug="medium",
        name="Medium",
        cpu_cores=Decimal("1.00"),
        cpu_weight=200,
        memory_mib=2048,
        swap_mib=1024,
        disk_gib=40,
        inode_limit=1_000_000,
        process_limit=1024,
        ipv4_count=1,
        ipv6_count=2,
        traffic_gib=3000,
        rate_mbit=250,
        price_monthly=Decimal("12.00"),
    ),
    dict(
        slug="large",
        name="Large",
        cpu_cores=Decimal("2.00"),
        cpu_weight=400,
        memory_mib=4096,
        swap_mib=2048,
        disk_gib=80,
        inode_limit=2_000_000,
        process_limit=2048,
        ipv4_count=2,
        ipv6_count=4,
        traffic_gib=6000,
        rate_mbit=500,
        price_monthly=Decimal("24.00"),
    ),
]
# Documentation ranges (RFC 5737, RFC 3849): never routed on the internet.
POOLS = [("demo-v4", "192.0.2.0/24", "192.0.2.1"), ("demo-v6", "2001:db8::/64", "2001:db8::1")]


class Command(BaseCommand):
    help = "Create demo data (idempotent) and print a staff and a customer login with fresh passwords."

    def handle(self, *args, **opts):
        with transaction.atomic():
            for plan in PLANS:
                Plan.objects.update_or_create(slug=plan["slug"], defaults=plan)
            capacity = read_capacity()
            host, _ = Host.objects.update_or_create(
                name=host_name(),
                defaults=dict(
                    cpus=capacity.cpus,
                    memory_mib=capacity.memory_mib,
                    disk_gib=capacity.disk_gib,
                    cpu_overcommit=Decimal("4.00"),
                ),
            )
            template, _ = Template.objects.get_or_create(
                name="busybox",
                defaults=dict(distribution="BusyBox", version="1.35", description="A tiny root file system"),
            )
            template.hosts.add(host)
            for name, cidr, gateway in POOLS:
                pool, _ = IPPool.objects.get_or_create(name=name, defaults=dict(cidr=cidr, gateway=gateway))
                pool.hosts.add(host)

            staff, _ = User.objects.get_or_create(username="staff", defaults=dict(is_staff=True, is_superuser=True))
            staff_password = secrets.token_urlsafe(9)
            staff.set_password(staff_password)
            staff.save()

            customer_login = User.objects.filter(username="demo@example.com").first()
            if customer_login is None:
                result = services.provision_account(
                    name="Demo Customer",
                    email="demo@example.com",
                    plan=Plan.objects.get(slug="small"),
                    template=template,
                    hostname="www.example.com",
                    actor=staff,
                )
                customer_login = result.login
            customer_password = secrets.token_urlsafe(9)
            customer_login.set_password(customer_password)
            customer_login.save()

        self.stdout.write(
            f"Demo data ready on host {host.name}.\n"
            f"  staff login:    staff / {staff_password}\n"
            f"  customer login: demo@example.com / {customer_password}\n"
            "Passwords are new each time this runs."
        )
