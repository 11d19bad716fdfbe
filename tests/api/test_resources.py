"""Reading through the API, and what one tenant's token can never see of another's."""

from contexts import reconcile
from contexts.services import finish_operation
from customers.models import UsageRecord
from tests.contexts.test_graphs import context


def running(world, name, email, hostname):
    account = world.provision(name, email, hostname)
    finish_operation(account.operation.pk, ok=True)
    account.server.refresh_from_db()
    return account


def test_staff_token_reads_every_resource(api, world):
    alice = running(world, "Alice Ltd", "alice@example.com", "www.alice.example")
    server = api.get(f"/api/v1/servers/{alice.server.pk}/").json()
    assert server["hostname"] == "www.alice.example" and server["state"] == "running"
    assert server["plan"] == world.plan.slug and server["host"] == world.host.name and len(server["addresses"]) == 2
    assert api.get("/api/v1/servers/", {"customer": alice.customer.pk}).json()["count"] == 1
    assert api.get("/api/v1/servers/", {"hostname": "WWW.alice.example"}).json()["count"] == 1
    assert api.get("/api/v1/servers/", {"state": "stopped"}).json()["count"] == 0
    assert api.get(f"/api/v1/customers/{alice.customer.pk}/").json()["email"] == "alice@example.com"
    assert [p["slug"] for p in api.get("/api/v1/plans/").json()["results"]] == [world.plan.slug]
    assert api.get(f"/api/v1/plans/{world.plan.slug}/").json()["memory_mib"] == world.plan.memory_mib
    assert api.get(f"/api/v1/templates/{world.template.name}/").json()["distribution"] == "BusyBox"
    host = api.get(f"/api/v1/hosts/{world.host.name}/").json()
    assert host["used_memory_mib"] == world.plan.memory_mib
    operations = api.get("/api/v1/operations/", {"server": alice.server.pk}).json()["results"]
    assert [o["kind"] for o in operations] == ["create"] and operations[0]["status"] == "succeeded"
    one = api.get(operations[0]["url"]).json()
    assert one["id"] == operations[0]["id"] and one["progress"] == 100


def test_usage_as_json_and_csv(api, world):
    alice = running(world, "Alice Ltd", "alice@example.com", "www.alice.example")
    reconcile.record_usage(alice.server, context(alice.server.name, cpu=42.5, net_in=1000, net_out=3000, peak=2**20))
    record = UsageRecord.objects.get()
    period = f"{record.period_start:%Y-%m}"
    rows = api.get("/api/v1/usage/", {"period": period}).json()["results"]
    assert rows == [
        {
            "server": alice.server.pk,
            "hostname": "www.alice.example",
            "customer": alice.customer.pk,
            "period_start": f"{record.period_start}",
            "period_end": f"{record.period_end}",
            "cpu_seconds": 42.5,
            "peak_memory_bytes": 2**20,
            "disk_bytes": 0,
            "traffic_in_bytes": 1000,
            "traffic_out_bytes": 3000,
            "traffic_gib_allowed": world.plan.traffic_gib,
            "updated_at": rows[0]["updated_at"],
        }
    ]
    csv = api.get("/api/v1/usage/", {"period": period, "format": "csv"})
    assert csv["Content-Type"].startswith("text/csv")
    header, line = csv.content.decode().splitlines()
    assert header.startswith("server,hostname,customer,period_start") and ",42.5,1048576,0,1000,3000," in line
    assert api.get("/api/v1/usage/", {"period": "2001-01"}).json()["count"] == 0
    bad = api.get("/api/v1/usage/", {"period": "November"})
    assert bad.status_code == 400 and "period" in bad.json()


def test_a_customers_token_sees_only_that_customer(make_client, world):
    alice = running(world, "Alice Ltd", "alice@example.com", "www.alice.example")
    bob = running(world, "Bob", "bob@example.com", "www.bob.example")
    reconcile.record_usage(bob.server, context(bob.server.name, cpu=5))
    mine = make_client("full", user=alice.login)
    assert [s["id"] for s in mine.get("/api/v1/servers/").json()["results"]] == [alice.server.pk]
    assert [c["id"] for c in mine.get("/api/v1/customers/").json()["results"]] == [alice.customer.pk]
    assert mine.get("/api/v1/usage/").json()["count"] == 0
    assert mine.get("/api/v1/usage/", {"server": bob.server.pk}).json()["count"] == 0
    assert mine.get("/api/v1/operations/").json()["count"] == 1
    bob_operation = bob.server.operations.get()
    for url in (
        f"/api/v1/servers/{bob.server.pk}/",
        f"/api/v1/customers/{bob.customer.pk}/",
        f"/api/v1/operations/{bob_operation.pk}/",
    ):
        assert mine.get(url).status_code == 404, url
    for url in (f"/api/v1/servers/{bob.server.pk}/stop/", f"/api/v1/servers/{bob.server.pk}/password/"):
        assert mine.post(url, {}, format="json").status_code == 404, url
    assert mine.get("/api/v1/hosts/").status_code == 403
    assert "host" not in mine.get(f"/api/v1/servers/{alice.server.pk}/").json()  # the company's business
    assert mine.post(f"/api/v1/customers/{alice.customer.pk}/suspend/").status_code == 403  # staff only
    # Its own server: the customer's actions work.
    assert mine.post(f"/api/v1/servers/{alice.server.pk}/stop/").status_code == 202
