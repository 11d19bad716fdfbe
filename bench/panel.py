"""The panel's pages under load: 10,000 servers over 1,000 customers and 5 hosts, 20 concurrent users.

    sudo .venv/bin/python bench/panel.py [--seconds 15] [--workers 5]

Loads the data in bulk into the database `panel_bench_web` (created anew on the server of
DATABASE_URL, default postgres://panel:panel@127.0.0.1:5432/), serves the panel with gunicorn
(DEBUG off) and measures with wrk (Debian's package, installed if missing when run as root) the
median and 95th percentile latency of: a customer's servers list, a customer's server page, and the
staff servers list (10,000 servers, 50 a page). Target: 95th percentile under 100 ms.

Each page is measured two ways, after every worker has served it once (compiled its templates):
- saturated: wrk's 20 connections send each request as soon as the last is answered. The latency
  is then 20 / throughput, so it measures what a request costs the machine;
- paced: 20 users each wait 0.5 to 1.5 s between pages, as busy people clicking about once a
  second would, and connect when they have something to ask, as browsers do: about 20 pages a
  second offered, a light load here, so this is the latency a person sees, not a capacity
  figure. (wrk cannot pace this way: it reconnects at once and then waits, holding a sync
  worker that waits with it, which the buffering proxy in front of a production panel prevents.)
"""

import argparse
import datetime
import http.client
import os
import random
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

from common import ROOT, database_url, fresh_database

DATABASE_URL = database_url("panel_bench_web")
CUSTOMERS, SERVERS_EACH, HOSTS = 1000, 10, 5
# wrk prints the median and the 95th percentile in microseconds when it is done.
WRK_SCRIPT = """
local cookie = os.getenv("BENCH_COOKIE")
request = function() return wrk.format("GET", nil, {["Cookie"] = cookie}) end
done = function(summary, latency, requests)
  io.write(string.format("RESULT %d %d %d %d\\n", latency:percentile(50), latency:percentile(95),
                         summary.requests, summary.errors.status + summary.errors.connect + summary.errors.timeout))
end
"""


def load(settings_env: dict) -> dict:
    """Bulk-load the data; returns a customer's and a staff member's session cookies and page paths."""
    fresh_database("panel_bench_web")
    os.environ.update(settings_env)
    import django

    django.setup()
    from decimal import Decimal
    from ipaddress import ip_network

    from django.contrib.auth.hashers import make_password
    from django.contrib.sessions.backends.db import SessionStore
    from django.core.management import call_command
    from django.utils import timezone
    from django_otp.plugins.otp_totp.models import TOTPDevice

    from contexts.models import Host, IPAddress, IPPool, Operation, Template, UsageSample, VirtualServer
    from customers.models import Customer, Plan, UsageRecord, User

    call_command("migrate", verbosity=0)
    hosts = Host.objects.bulk_create(
        Host(name=f"host{i}.example.net", cpus=Decimal(64), memory_mib=2**20, disk_gib=10**5) for i in range(HOSTS)
    )
    template = Template.objects.create(name="busybox", distribution="BusyBox", version="1")
    pool = IPPool(name="v4", cidr="198.18.0.0/15")
    pool.full_clean()
    pool.save()
    plan = Plan.objects.create(
        slug="s", name="Small", cpu_cores=Decimal("0.5"), memory_mib=512, disk_gib=10, price_monthly=Decimal(5)
    )
    customers = Customer.objects.bulk_create(
        Customer(name=f"Customer {i}", email=f"c{i}@example.com") for i in range(CUSTOMERS)
    )
    password = make_password("bench-Password-1")
    users = User.objects.bulk_create(
        User(username=c.email, email=c.email, password=password, customer=c) for c in customers
    )
    staff = User.objects.create_user("staff", "staff@example.com", "bench-Password-1", is_staff=True)
    servers = VirtualServer.objects.bulk_create(
        VirtualServer(
            customer=c,
            plan=plan,
            host=hosts[(i * SERVERS_EACH + j) % HOSTS],
            template=template,
            hostname=f"s{j}.c{i}.example.com",
            context_id=2 + (i * SERVERS_EACH + j) // HOSTS,
            state="running",
        )
        for i, c in enumerate(customers)
        for j in range(SERVERS_EACH)
    )
    addresses = ip_network("198.18.0.0/15").hosts()
    IPAddress.objects.bulk_create(IPAddress(pool=pool, address=str(next(addresses)), server=s) for s in servers)
    now = timezone.now()
    Operation.objects.bulk_create(
        Operation(server=s, kind=kind, status="succeeded", progress=100, step="Done", finished_at=now)
        for s in servers
        for kind in ("create", "restart")
    )

    def cookie(user, device=None) -> str:
        session = SessionStore()
        session["_auth_user_id"] = str(user.pk)
        session["_auth_user_backend"] = "django.contrib.auth.backends.ModelBackend"
        session["_auth_user_hash"] = user.get_session_auth_hash()
        if device is not None:
            session["otp_device_id"] = device.persistent_id  # signed in with a code, as staff must be
        session.create()
        return f"sessionid={session.session_key}"

    customer = users[len(users) // 2]
    server = VirtualServer.objects.filter(customer=customer.customer).first()
    # The measured server has an hour and a day of graph samples and a month of traffic.
    VirtualServer.objects.filter(pk=server.pk).update(created_at=now - datetime.timedelta(days=30))
    minute, hour = now.replace(second=0, microsecond=0), now.replace(minute=0, second=0, microsecond=0)
    UsageSample.objects.bulk_create(
        [
            UsageSample(
                server=server,
                span=span,
                start=start - i * datetime.timedelta(seconds=span),
                cpu_seconds=span / 5,
                memory_bytes=(100 + i) * 2**20,
                disk_bytes=2**30,
                net_in_bytes=10**6 * span,
                net_out_bytes=10**6 * span,
            )
            for span, start, count in ((60, minute, 60), (3600, hour, 24))
            for i in range(count)
        ]
    )
    UsageRecord.objects.create(
        server=server,
        period_start=now.date().replace(day=1),
        period_end=now.date(),
        traffic_in_bytes=2**35,
        traffic_out_bytes=2**36,
    )
    from django.db import connection

    with connection.cursor() as cursor:
        # Statistics, as autovacuum gathers soon after such a load: without them PostgreSQL scans
        # whole tables for lookups an index answers.
        for table in connection.introspection.table_names(cursor):
            cursor.execute(f'ANALYZE "{table}"')
    return {
        "customer": cookie(customer),
        "staff": cookie(staff, TOTPDevice.objects.create(user=staff, name="app", confirmed=True)),
        "server": f"/servers/{server.pk}/",
    }


def busy_cpu_seconds() -> float:
    """CPU time the whole machine spent busy so far (server, database, load generator alike)."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    idle, iowait = fields[3], fields[4]
    return (sum(fields[:8]) - idle - iowait) / os.sysconf("SC_CLK_TCK")


def wrk(url: str, cookie: str, seconds: int, script: str) -> tuple[float, float, int, int]:
    result = subprocess.run(
        ["wrk", "-t", "2", "-c", "20", "-d", f"{seconds}s", "-s", script, url],
        env=os.environ | {"BENCH_COOKIE": cookie},
        capture_output=True,
        text=True,
        check=True,
    )
    line = next(line for line in result.stdout.splitlines() if line.startswith("RESULT"))
    p50, p95, requests, errors = (int(x) for x in line.split()[1:])
    return p50 / 1000, p95 / 1000, requests, errors


def paced(port: int, path: str, cookie: str, seconds: int) -> tuple[float, float, int]:
    """20 users, each asking for `path`, reading the answer and pausing 0.5-1.5 s, for `seconds`:
    the median and 95th percentile latency in ms, and the number of pages served."""
    latencies, errors = [], []
    deadline = time.monotonic() + 1 + seconds

    def user() -> None:
        rng = random.Random()
        time.sleep(rng.uniform(0, 1))  # people do not all click at the same instant
        while time.monotonic() < deadline:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            started = time.perf_counter()
            try:
                connection.request("GET", path, headers={"Cookie": cookie})
                response = connection.getresponse()
                response.read()
                (latencies if response.status == 200 else errors).append((time.perf_counter() - started) * 1000)
            except OSError as exc:
                errors.append(exc)
            finally:
                connection.close()  # gunicorn's sync workers close it anyway
            time.sleep(rng.uniform(0.5, 1.5))

    users = [threading.Thread(target=user) for _ in range(20)]
    for thread in users:
        thread.start()
    for thread in users:
        thread.join()
    if errors or len(latencies) < 20:
        sys.exit(f"{path}: {len(errors)} errors, {len(latencies)} pages")
    cuts = statistics.quantiles(latencies, n=20)
    return statistics.median(latencies), cuts[18], len(latencies)


def check(url: str, cookie: str) -> None:
    """The page itself, not a redirect to the login or two-factor page, is what gets measured."""
    request = urllib.request.Request(url, headers={"Cookie": cookie})
    with urllib.request.urlopen(request) as response:
        if response.status != 200 or response.url != url:
            sys.exit(f"{url} answered {response.status} at {response.url}: the benchmark's session is not signed in")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--workers", type=int, default=3, help="gunicorn worker processes (default 3)")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        if os.geteuid() != 0:
            sys.exit("bench/panel.py needs wrk: apt-get install wrk (or run it as root)")
        subprocess.run(["apt-get", "install", "-y", "-q", "wrk"], check=True, capture_output=True)
    static_root = tempfile.mkdtemp(prefix="panel-bench-static-")
    env = {
        # Served as in production (collected, compressed static files; connections kept), except that
        # plain HTTP is not redirected: a TLS proxy in front would do that.
        "PANEL_MODE": "production",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "SECURE_SSL_REDIRECT": "false",
        "STATIC_ROOT": static_root,
        "DATABASE_URL": DATABASE_URL,
        "DJANGO_SETTINGS_MODULE": "panel.settings",
        "ALLOWED_HOSTS": "127.0.0.1",
        "CONN_MAX_AGE": "60",
        "REDIS_URL": os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/14"),
    }
    started = time.perf_counter()
    data = load(env)
    from django.core.management import call_command

    call_command("collectstatic", interactive=False, verbosity=0)
    print(
        f"loaded {CUSTOMERS * SERVERS_EACH} servers, {CUSTOMERS} customers, {HOSTS} hosts "
        f"in {time.perf_counter() - started:.0f} s"
    )
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "panel.wsgi",
            "--workers",
            str(args.workers),
            "--bind",
            f"127.0.0.1:{port}",
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env=os.environ | env,
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        with tempfile.NamedTemporaryFile("w", suffix=".lua") as script:
            script.write(WRK_SCRIPT)
            script.flush()
            base = f"http://127.0.0.1:{port}"
            pages = [
                ("customer's servers list", f"{base}/servers/", data["customer"]),
                ("customer's server page", f"{base}{data['server']}", data["customer"]),
                ("staff servers list (page 1 of 200)", f"{base}/servers/", data["staff"]),
            ]
            for _, url, cookie in pages:
                check(url, cookie)
                wrk(url, cookie, 2, script.name)  # every worker compiles the page's templates once
            print(
                f"gunicorn {args.workers} workers, {args.seconds} s a page, "
                f"{os.cpu_count()} CPUs (server and load generator on the same machine)"
            )
            print(" saturated (wrk, 20 connections without pause):")
            for label, url, cookie in pages:
                before = busy_cpu_seconds()
                p50, p95, requests, errors = wrk(url, cookie, args.seconds, script.name)
                # Latency on 2 shared CPUs swings with the machine; the CPU each request costs does not.
                cpu_ms = (busy_cpu_seconds() - before) / max(1, requests) * 1000
                print(
                    f"  {label:36} median {p50:6.1f} ms   p95 {p95:6.1f} ms   {requests / args.seconds:6.0f} req/s   "
                    f"CPU {cpu_ms:5.1f} ms/req   errors {errors}   p95/target(100 ms) {p95 / 100:.2f}"
                )
            print(" paced (20 users, each pausing 0.5-1.5 s between pages: light load, the latency a person sees):")
            for label, url, cookie in pages:
                p50, p95, requests = paced(port, url.removeprefix(base), cookie, args.seconds)
                print(
                    f"  {label:36} median {p50:6.1f} ms   p95 {p95:6.1f} ms   {requests:6d} pages   "
                    f"p95/target(100 ms) {p95 / 100:.2f}"
                )
    finally:
        server.terminate()
        shutil.rmtree(static_root, ignore_errors=True)
        server.wait()


if __name__ == "__main__":
    main()
