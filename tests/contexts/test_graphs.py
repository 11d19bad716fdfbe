"""Resource graphs and monthly traffic on the server page, from the samples the hosts' reports leave."""

import datetime

from django.urls import reverse
from django.utils import timezone

from contexts import graphs, reconcile
from contexts.models import UsageSample
from contexts.services import finish_operation, request_action
from customers.models import UsageRecord

GIB = 1024**3


def context(name, cpu=0.0, memory=0, peak=0, disk=None, net_in=0, net_out=0, state="running"):
    return {
        "name": name,
        "state": state,
        "cpu_seconds": cpu,
        "memory_bytes": memory,
        "memory_peak_bytes": peak,
        "disk_bytes": disk,
        "net_in_bytes": net_in,
        "net_out_bytes": net_out,
    }


def test_reports_leave_minute_and_hour_samples_that_add_up(running):
    server = running.server
    reconcile.record_usage(server, context(server.name, cpu=10, memory=50 * 2**20, peak=60 * 2**20, disk=GIB))
    reconcile.record_usage(
        server, context(server.name, cpu=25, memory=40 * 2**20, peak=60 * 2**20, disk=GIB, net_out=1000)
    )
    minutes = list(UsageSample.objects.filter(server=server, span=60))
    hours = list(UsageSample.objects.filter(server=server, span=3600))
    assert len(hours) == 1 and 1 <= len(minutes) <= 2  # two reports may straddle a minute
    for samples in (minutes, hours):
        assert sum(s.cpu_seconds for s in samples) == 25  # 10, then 15 more
        assert sum(s.net_out_bytes for s in samples) == 1000
        assert max(s.memory_bytes for s in samples) == 50 * 2**20  # the most seen, not the last
    assert hours[0].disk_bytes == GIB
    # An idle report (nothing moved) writes nothing.
    before = UsageSample.objects.count()
    reconcile.record_usage(
        server, context(server.name, cpu=25, memory=40 * 2**20, peak=60 * 2**20, disk=GIB, net_out=1000)
    )
    assert UsageSample.objects.count() == before


def test_charts_read_gaps_as_no_use_and_the_same_memory(running, settings):
    server = running.server
    now = datetime.datetime(2026, 11, 29, 12, 30, 20, tzinfo=datetime.UTC)
    server.created_at = now - datetime.timedelta(minutes=30)
    starts = graphs.bucket_starts(now, 60, 60)
    assert starts[-1] == datetime.datetime(2026, 11, 29, 12, 30, tzinfo=datetime.UTC) and len(starts) == 60
    assert graphs.bucket_starts(now, 3600, 24)[-1] == now.replace(minute=0, second=0)
    samples = [
        UsageSample(server=server, span=60, start=starts[-10], cpu_seconds=30, memory_bytes=64 * 2**20, disk_bytes=GIB),
        UsageSample(
            server=server, span=60, start=starts[-5], cpu_seconds=6, memory_bytes=32 * 2**20, net_in_bytes=75 * 10**6
        ),
    ]
    cpu, memory, disk, network = graphs.build(server, samples, None, starts, 60, now)
    # Before the server existed: nothing drawn; then zero use until the first sample.
    assert cpu.series[0].values[:29] == [None] * 29 and cpu.series[0].values[30] == 0.0
    assert cpu.series[0].values[-10] == 0.5  # 30 CPU seconds in a minute is half a core
    assert cpu.series[0].values[-9] == 0.0  # nothing reported: nothing used
    assert memory.series[0].values[-9] == 64  # nothing reported: the same memory, in MiB
    assert memory.series[0].values[-5] == 32 and memory.series[0].values[-1] == 32
    # The minute under way (20 s so far) counts at least one report's worth of seconds.
    live = [UsageSample(server=server, span=60, start=starts[-1], cpu_seconds=6)]
    assert graphs.build(server, live, None, starts, 60, now)[0].series[0].values[-1] == 6 / max(
        20, settings.HOST_HEARTBEAT_SECONDS
    )
    assert disk.series[0].values[-11] is None and disk.series[0].values[-1] == 1.0  # GiB, carried on
    assert network.series[0].values[-5] == 10.0  # 75 MB in a minute: 10 Mbit/s
    assert "peak 0.50" in cpu.summary and "plan: 0.50 cores" in cpu.summary
    # Drawn as one polyline per unbroken run, inside the 600 x 120 drawing.
    (points,) = cpu.series[0].segments
    xs_ys = [tuple(map(float, p.split(","))) for p in points.split()]
    assert len(xs_ys) == 31 and all(0 <= x <= 600 and 0 <= y <= 120 for x, y in xs_ys)
    assert min(y for _, y in xs_ys) < 60  # the busy minute stands out


def test_server_page_draws_graphs_and_switches_range(client, running):
    server = running.server
    client.force_login(running.login)
    reconcile.record_usage(server, context(server.name, cpu=30, memory=100 * 2**20, peak=100 * 2**20, disk=GIB))
    ago = timezone.now() - datetime.timedelta(minutes=2)
    UsageSample.objects.filter(server=server, span=60).update(start=ago.replace(second=0, microsecond=0))
    type(server).objects.filter(pk=server.pk).update(created_at=ago - datetime.timedelta(minutes=10))
    page = client.get(server.get_absolute_url()).content.decode()
    assert page.count("<svg") == 4 and "<polyline" in page
    assert "Memory used: now 100" in page  # the summary screen readers and everyone read
    assert 'hx-trigger="every 60s"' in page  # running: the graphs refresh
    day = client.get(reverse("server-graphs", args=[server.pk]), {"range": "day"}, headers={"HX-Request": "true"})
    body = day.content.decode()
    assert day.status_code == 200 and "24 h ago" in body and 'aria-current="true" class="current">Last day' in body
    assert "<html" not in body  # the fragment alone
    odd = client.get(reverse("server-graphs", args=[server.pk]), {"range": "<script>"})
    assert odd.status_code == 200 and "60 min ago" in odd.content.decode()
    stop = request_action(server, "stop", running.login)
    finish_operation(stop.pk, ok=True)
    assert 'hx-trigger="every 60s"' not in client.get(server.get_absolute_url()).content.decode()


def test_traffic_this_month_against_the_allowance(client, running):
    server = running.server
    client.force_login(running.login)
    server.plan.traffic_gib = 2
    server.plan.save()
    page = client.get(server.get_absolute_url()).content.decode()
    assert "0.00 GiB of 2 GiB used (0 %)" in page and 'role="alert"' not in page
    reconcile.record_usage(server, context(server.name, net_in=GIB, net_out=GIB + GIB // 2))
    record = UsageRecord.objects.get(server=server)
    assert record.traffic_in_bytes + record.traffic_out_bytes == 2 * GIB + GIB // 2
    page = client.get(server.get_absolute_url()).content.decode()
    assert "2.50 GiB of 2 GiB used (100 %)" in page
    assert "more than its plan's monthly traffic" in page


def test_old_samples_are_pruned(running, settings):
    server = running.server
    now = timezone.now()
    old = now - datetime.timedelta(hours=settings.USAGE_MINUTES_KEPT_HOURS, minutes=1)
    UsageSample.objects.create(server=server, span=60, start=old)
    UsageSample.objects.create(server=server, span=3600, start=old)  # hours are kept for days
    UsageSample.objects.create(server=server, span=60, start=now)
    assert reconcile.prune_usage_samples() == 1
    assert set(UsageSample.objects.values_list("span", "start")) == {(3600, old), (60, now)}


def test_staff_see_who_did_what_on_the_server_page(client, running, world):
    server = running.server
    request_action(server, "stop", world.staff)
    client.force_login(world.staff)
    page = client.get(server.get_absolute_url()).content.decode()
    assert "Audit log" in page and "<code>operation.stop</code>" in page and "admin" in page
    client.force_login(running.login)
    assert "Audit log" not in client.get(server.get_absolute_url()).content.decode()


def test_memory_and_disk_carry_on_from_before_the_window(running):
    """An idle server writes no samples: its last sample, from before the hour, still says what it holds."""
    server = running.server
    now = timezone.now()
    type(server).objects.filter(pk=server.pk).update(created_at=now - datetime.timedelta(days=1))
    server.refresh_from_db()
    UsageSample.objects.create(
        server=server, span=60, start=now - datetime.timedelta(hours=2), memory_bytes=64 * 2**20, disk_bytes=GIB
    )
    UsageSample.objects.create(server=server, span=60, start=now - datetime.timedelta(hours=3), memory_bytes=1)
    cpu, memory, disk, _ = graphs.load(server, "hour", now)["charts"]
    assert set(memory.series[0].values) == {64} and set(disk.series[0].values) == {1.0}
    assert set(cpu.series[0].values) == {0.0}
