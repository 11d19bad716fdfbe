"""A real distribution boots unmodified: Debian bookworm with SysV init, built once per run."""

import subprocess
import time

from contexts.engine import safefile
from tests.engine.conftest import inside

MARKER_SCRIPT = """#!/bin/sh
### BEGIN INIT INFO
# Provides:          marker
# Required-Start:    $local_fs
# Required-Stop:     $local_fs
# Default-Start:     2 3 4 5
# Default-Stop:      0 1 6
# Short-Description: leaves a mark when the guest shuts down
### END INIT INFO
case "$1" in
  start) date > /var/lib/marker-started ;;
  stop) date > /var/lib/marker-stopped ;;
esac
exit 0
"""


def wait_for(engine, name, script, expected, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = inside(engine, name, script)
        if expected in result.stdout:
            return result.stdout
        time.sleep(0.3)
    raise AssertionError(f"{script!r} never printed {expected!r}; last: {result.stdout!r} {result.stderr!r}")


def test_debian_boots_to_runlevel_2_and_halts_through_its_scripts(engine, make_context, debian_template):
    name = make_context(template=debian_template, hostname="deb.example.com")
    wait_for(engine, name, "runlevel", "N 2")
    wait_for(engine, name, "ps -eo comm", "cron")
    assert inside(engine, name, "hostname").stdout.strip() == "deb.example.com"

    # A service installed the Debian way: its stop action must run when the context stops.
    inside(
        engine,
        name,
        f"cat > /etc/init.d/marker <<'EOF'\n{MARKER_SCRIPT}EOF\n"
        "chmod 755 /etc/init.d/marker && update-rc.d marker defaults && /etc/init.d/marker start",
    )
    started = time.monotonic()
    assert engine.stop(name, timeout=60) is True
    assert time.monotonic() - started < 30
    status = engine.status(name)
    assert status["last_exit"]["reason"] == "halted"  # its own halt, not our SIGKILL
    upper = engine.state.context_dir(name) / "upper"
    assert safefile.read_file(upper, "var/lib/marker-stopped") is not None


def test_debian_setuid_programs_ping_and_free_work(engine, make_context, debian_template):
    name = make_context(template=debian_template, limits={"memory_bytes": 256 * 2**20, "cpus": 1})
    wait_for(engine, name, "runlevel", "N 2")
    mem = inside(engine, name, "free -b | awk '/^Mem:/ {print $2}'; nproc").stdout.split()
    assert mem == [str(256 * 2**20), "1"]  # procps free reads /proc/meminfo, served by lxcfs
    result = inside(
        engine, name, "useradd -m alice && su alice -s /bin/sh -c 'passwd -S alice; ping -c1 -W2 127.0.0.1'"
    )
    assert result.stdout.startswith("alice L "), result.stderr  # passwd, setuid root, read /etc/shadow
    assert "1 received" in result.stdout, result.stderr


def test_template_has_no_file_capability_the_guest_cannot_hold(debian_template, engine_state):
    state = engine_state[0]
    record = state.template_record(debian_template)
    assert "/usr/bin/ping" in record["stripped_file_capabilities"]


def _tiny_package(directory) -> bytes:
    """A .deb made on the host with dpkg-deb: one script and a maintainer script that runs as root."""
    root = directory / "ctx-hello"
    (root / "DEBIAN").mkdir(parents=True)
    (root / "usr/bin").mkdir(parents=True)
    (root / "DEBIAN/control").write_text(
        "Package: ctx-hello\nVersion: 1.0\nArchitecture: all\nMaintainer: tests <tests@example.com>\n"
        "Description: says hello\n"
    )
    (root / "DEBIAN/postinst").write_text("#!/bin/sh\nset -e\ndate > /var/lib/ctx-hello-installed\n")
    (root / "usr/bin/ctx-hello").write_text("#!/bin/sh\necho hello from a package\n")
    for path in ("DEBIAN/postinst", "usr/bin/ctx-hello"):
        (root / path).chmod(0o755)
    subprocess.run(["dpkg-deb", "--root-owner-group", "--build", str(root), str(directory / "hello.deb")], check=True)
    return (directory / "hello.deb").read_bytes()


def test_debian_under_the_filter_installs_packages_changes_passwords_and_pings_its_gateway(
    engine, make_context, debian_template, cli, tmp_path
):
    """What a customer does first, under the syscall filter and without SYS_PTRACE: apt-get install
    (its download sandbox drops to the _apt user), passwd, su, ping to the gateway, cron."""
    name = make_context(template=debian_template, addresses=["198.51.100.20"])
    wait_for(engine, name, "runlevel", "N 2")
    copy = subprocess.run(
        [*cli.argv, "exec", name, "--", "/bin/sh", "-c", "cat > /tmp/hello.deb"],
        input=_tiny_package(tmp_path),
        cwd=cli.cwd,
        env=cli.env,
        capture_output=True,
        timeout=60,
    )
    assert copy.returncode == 0, copy.stderr
    result = inside(engine, name, "apt-get install -y -q /tmp/hello.deb >/tmp/apt.log 2>&1; echo apt=$?; ctx-hello")
    assert "apt=0" in result.stdout, inside(engine, name, "cat /tmp/apt.log").stdout
    assert "hello from a package" in result.stdout
    result = inside(
        engine,
        name,
        "useradd -m bob && printf 'Tr1cky-pass\\nTr1cky-pass\\n' | passwd bob >/dev/null 2>&1; passwd -S bob; "
        "su bob -s /bin/sh -c 'id -un; ping -c1 -W2 169.254.0.1 >/dev/null && echo gateway=up'",
    )
    assert result.stdout.split()[:2] == ["bob", "P"], (result.stdout, result.stderr)  # a usable password now
    assert "gateway=up" in result.stdout, result.stderr
    assert "cron" in inside(engine, name, "ps -eo comm").stdout.split()
