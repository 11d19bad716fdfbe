"""A plan's host ports: the ports of the host itself its servers may reach (none by default), checked
by the engine's own rule in the model, the admin and the spec the hosts receive."""

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from contexts.engine.spec import OperationSpec
from contexts.models import Operation
from contexts.specs import context_spec, operation_spec
from customers.models import Plan
from tests.conftest import make_plan


def test_none_is_the_default(db):
    plan = make_plan()
    plan.full_clean()
    assert plan.host_ports == "" and plan.host_port_list == []


def test_entries_are_checked_and_written_one_way(db):
    plan = make_plan(host_ports="UDP/53,tcp/53  tcp/3128, tcp/53")
    plan.full_clean()
    assert plan.host_ports == "tcp/53, tcp/3128, udp/53"
    assert plan.host_port_list == ["tcp/53", "tcp/3128", "udp/53"]


@pytest.mark.parametrize("text", ["tcp/0", "tcp/65536", "icmp/8", "53", "tcp/053", "tcp/53;drop", "tcp:53", "tcp/x"])
def test_bad_entries_are_a_clear_error_on_the_field(db, text):
    plan = make_plan(host_ports=text)
    with pytest.raises(ValidationError) as caught:
        plan.full_clean()
    assert list(caught.value.message_dict) == ["host_ports"]
    assert "use tcp/PORT or udp/PORT with PORT in 1-65535" in caught.value.message_dict["host_ports"][0]


def test_the_admin_shows_checks_and_normalises_it(staff_client, world):
    url = reverse("admin:customers_plan_change", args=[world.plan.pk])
    page = staff_client.get(url).content.decode()
    assert 'name="host_ports"' in page and "the safe default" in page
    form = {
        "name": "Small",
        "slug": "small",
        "is_active": "on",
        "price_monthly": "5.00",
        "currency": "EUR",
        "cpu_cores": "0.50",
        "cpu_weight": "100",
        "memory_mib": "512",
        "swap_mib": "256",
        "process_limit": "128",
        "disk_gib": "10",
        "inode_limit": "100000",
        "ipv4_count": "1",
        "ipv6_count": "1",
        "rate_mbit": "100",
        "traffic_gib": "500",
        "traffic_policy": "throttle",
        "throttled_rate_mbit": "10",
    }
    response = staff_client.post(url, form | {"host_ports": "tcp/53 udp/99999"})
    assert response.status_code == 200 and "Invalid host port" in response.content.decode()
    assert Plan.objects.get(pk=world.plan.pk).host_ports == ""
    response = staff_client.post(url, form | {"host_ports": "udp/53 TCP/53"})
    assert response.status_code == 302, response.content.decode()[:2000]
    assert Plan.objects.get(pk=world.plan.pk).host_ports == "tcp/53, udp/53"


def test_plans_with_live_servers_keep_their_host_ports(staff_client, running):
    # The hosts enforce what they were sent: another plan and a change of plan carry a new list.
    page = staff_client.get(reverse("admin:customers_plan_change", args=[running.server.plan.pk])).content.decode()
    assert 'name="host_ports"' not in page


def test_the_hosts_receive_the_plans_host_ports(running):
    server = running.server
    assert context_spec(server).host_ports == ()
    server.plan.host_ports = "udp/53, tcp/53"
    server.plan.save()
    spec = operation_spec(Operation.objects.filter(server=server).latest("created_at"))
    assert spec["context"]["host_ports"] == ["tcp/53", "udp/53"]
    assert OperationSpec.from_dict(spec).context.host_ports == ("tcp/53", "udp/53")
