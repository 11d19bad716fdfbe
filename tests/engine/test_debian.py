"""A real distribution boots unmodified: Debian bookworm with SysV init, built once per run."""

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
