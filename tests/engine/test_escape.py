"""Acceptance tests: attacks a hostile guest root mounts from inside a real running guest, each of
which must fail. One test per attack class of the security model (DESIGN.md): the host's terminal,
host helpers the guest could trace or read, cgroups the guest is not placed in, raising its own
limits through a user namespace, and kernel interfaces the syscall filter must close.

The attacks are made by a small static C program (tests/engine/attack.c) compiled once per session
and copied into each guest through `exec`'s stdin. Each of its subcommands prints `name: ok` when
the call worked or `name: errno=N` when it failed."""

import fcntl
import os
import pty
import re
import shutil
import struct
import subprocess
import tempfile
import termios
import time
import tty
import uuid
from pathlib import Path

import pytest

from tests.engine.conftest import inside, read_until
from tests.kernel import wait_until

SOURCE = Path(__file__).with_name("attack.c")
EPERM, ENOSYS = "errno=1", "errno=38"
SIGSYS_STATUS = 128 + 31  # a shell's $? for a program killed by SIGSYS
CAP_SYS_PTRACE = 19


def _unavailable(reason: str) -> None:
    """Skip, but fail under REQUIRE_ROOT=1 (CI), as tests/kernel.py's need_root does."""
    if os.environ.get("REQUIRE_ROOT") == "1":
        pytest.fail(f"{reason}, and REQUIRE_ROOT=1 is set")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def attack_binary(tmp_path_factory) -> Path:
    """tests/engine/attack.c, compiled static once per session."""
    cc = shutil.which("cc")
    if cc is None:
        _unavailable("no C compiler (cc) to build tests/engine/attack.c: apt-get install gcc")
    libc_a = subprocess.run([cc, "-print-file-name=libc.a"], capture_output=True, text=True).stdout.strip()
    if not os.path.isabs(libc_a) or not os.path.exists(libc_a):
        _unavailable("no static C library (libc.a) to build tests/engine/attack.c: apt-get install libc6-dev")
    binary = tmp_path_factory.mktemp("attack") / "attack"
    result = subprocess.run(
        [cc, "-static", "-O1", "-Wall", "-o", str(binary), str(SOURCE)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    return binary


def cli_bytes(cli, *args, input: bytes = b"", env=None) -> subprocess.CompletedProcess:
    """The host CLI with binary stdin (Cli itself speaks text)."""
    return subprocess.run(
        [*cli.argv, *args], cwd=cli.cwd, env=env or cli.env, input=input, capture_output=True, timeout=60
    )


def install(cli, name: str, binary: Path) -> None:
    """Copy the attack program into the running guest as /attack, through exec's stdin."""
    script = "cat > /attack && chmod 755 /attack"
    result = cli_bytes(cli, "exec", name, "--", "/bin/sh", "-c", script, input=binary.read_bytes())
    assert result.returncode == 0, result.stderr


def guest_with_attack(make_context, cli, binary: Path, **options) -> str:
    name = make_context(**options)
    install(cli, name, binary)
    return name


def parse(output: str) -> dict[str, str]:
    """`name: result` lines as a dict."""
    return dict(line.split(": ", 1) for line in output.splitlines() if ": " in line)


def attack(cli, name: str, *commands: str) -> dict[str, str]:
    result = cli("exec", name, "--", "/attack", *commands, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, (result.returncode, result.stdout, result.stderr)
    return parse(result.stdout)


def attack_on_host(binary: Path, command: str) -> str:
    """The answer the host (outside any guest) gets for the same call."""
    result = subprocess.run([str(binary), command], capture_output=True, text=True, timeout=30)
    if result.returncode < 0:
        return f"killed by signal {-result.returncode}"
    return parse(result.stdout).get(command, result.stdout)


def init_pid(engine, name: str) -> int:
    return engine.status(name)["init_pid"]


# --- cgroup hierarchies of this host ---------------------------------------------------------------


def controllers() -> set[str]:
    with open("/proc/cgroups") as f:
        return {line.split()[0] for line in f if line.strip() and not line.startswith("#")}


def hierarchies() -> dict[frozenset, str]:
    """Every cgroup hierarchy mounted on this host: its key in /proc/PID/cgroup (the set of controllers
    and name= of a v1 hierarchy, {"0::"} for cgroup2) -> one of its mount points."""
    known = controllers()
    found = {}
    with open("/proc/self/mounts") as f:
        for line in f:
            source, target, fstype, options = line.split()[:4]
            if fstype == "cgroup2":
                found.setdefault(frozenset({"0::"}), target)
            elif fstype == "cgroup":
                opts = set(options.split(","))
                key = {o for o in opts if o in known} | {o for o in opts if o.startswith("name=")}
                found.setdefault(frozenset(key), target)
    return found


def cgroups_of(pid: int) -> dict[frozenset, str]:
    """/proc/PID/cgroup as hierarchy key -> path."""
    paths = {}
    with open(f"/proc/{pid}/cgroup") as f:
        for line in f:
            number, names, path = line.rstrip("\n").split(":", 2)
            key = frozenset({"0::"}) if number == "0" and not names else frozenset(names.split(","))
            paths[key] = path
    return paths


def in_group(path: str, parent: str, name: str) -> bool:
    """Whether a cgroup path is the context's group /PARENT/NAME or below it."""
    return f"/{parent}/{name}/" in path + "/"


def misplaced(pid: int, parent: str, name: str) -> dict[str, str]:
    """The hierarchies of this host in which `pid` is not in the context's group, with where it is."""
    paths = cgroups_of(pid)
    wrong = {}
    for key, mountpoint in hierarchies().items():
        path = paths.get(key)
        if path is None or not in_group(path, parent, name):
            wrong[f"{','.join(sorted(key))} on {mountpoint}"] = path
    return wrong


def context_cgroup_file(pid: int, parent: str, name: str, filename: str) -> str | None:
    """Content of a limit file (pids.max, cpu.cfs_quota_us, cpu.max) in the context's own group
    /PARENT/NAME of the hierarchy holding that controller, as the host sees it."""
    controller = filename.split(".")[0]
    paths = cgroups_of(pid)
    for key, mountpoint in hierarchies().items():
        if key != frozenset({"0::"}) and controller not in key:
            continue
        path = paths.get(key, "")
        marker = f"/{parent}/{name}"
        if marker + "/" not in path + "/":
            continue
        group = path[: (path + "/").index(marker + "/") + len(marker)]
        candidate = os.path.join(mountpoint, group.lstrip("/"), filename)
        if os.path.exists(candidate):
            with open(candidate) as f:
                return f.read().strip()
    return None


# --- terminals -------------------------------------------------------------------------------------


def _take_terminal() -> None:
    """In the CLI process, after setsid: make stdin (the test's pty) the controlling terminal, as a
    staff member's shell has one when it runs `contexts exec`."""
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


def on_terminal(cli, *args, raw=False):
    """Run the CLI with stdin, stdout and stderr on a pty the test created (its controlling terminal);
    returns (process, master, slave)."""
    master, slave = pty.openpty()
    if raw:
        tty.setraw(slave)
    process = subprocess.Popen(
        [*cli.argv, *args],
        cwd=cli.cwd,
        env=cli.env | {"TERM": "xterm"},
        stdin=slave,
        stdout=slave,
        stderr=slave,
        start_new_session=True,
        preexec_fn=_take_terminal,
    )
    return process, master, slave


def drain(process, master: int, timeout: float = 30.0) -> bytes:
    """Everything the process writes to the terminal until it exits."""
    output = read_until(master, lambda _: process.poll() is not None, timeout)
    return output + read_until(master, lambda _: False, 0.3)


def pending_input(slave: int) -> bytes:
    """What sits in the terminal's input queue (as if typed), without blocking."""
    queued = struct.unpack("i", fcntl.ioctl(slave, termios.FIONREAD, b"\0\0\0\0"))[0]
    os.set_blocking(slave, False)
    try:
        data = os.read(slave, 4096)
    except BlockingIOError:
        data = b""
    return data if data else b"?" * queued


def close_terminal(process, master: int, slave: int) -> None:
    if process.poll() is None:
        process.kill()
        process.wait(timeout=10)
    os.close(master)
    os.close(slave)


# === 1. the host's terminal =======================================================================


def test_tiocsti_never_reaches_the_hosts_terminal(engine, make_context, cli, attack_binary):
    """A guest process run by `exec` from a staff member's terminal must not be able to type into that
    terminal (TIOCSTI on stdin or /dev/tty): it never holds the host's terminal at all."""
    name = guest_with_attack(make_context, cli, attack_binary)

    process, master, slave = on_terminal(cli, "exec", name, "--", "/attack", "tiocsti", raw=True)
    try:
        output = drain(process, master)
        injected = pending_input(slave)
        assert process.returncode == 0, output
        assert b"X" not in injected, f"the guest typed {injected!r} into the host's terminal: {output!r}"
    finally:
        close_terminal(process, master, slave)

    # What the exec'd process holds as stdin is a terminal of the guest (or a pipe), never the host's.
    process, master, slave = on_terminal(
        cli, "exec", name, "--", "/bin/sh", "-c", "stat -L -c dev=%d:%i /proc/self/fd/0", raw=True
    )
    try:
        output = drain(process, master)
        host = os.fstat(slave)
        assert b"dev=" in output, output
        seen = re.search(rb"dev=(\d+):(\d+)", output).groups()
        assert (int(seen[0]), int(seen[1])) != (host.st_dev, host.st_ino), (
            f"the guest's stdin is the host's terminal {os.ttyname(slave)}"
        )
    finally:
        close_terminal(process, master, slave)


def test_exec_on_a_terminal_still_works_interactively(engine, make_context, cli):
    name = make_context()
    process, master, slave = on_terminal(cli, "exec", name, "--", "/bin/sh", "-c", "echo ready; exec /bin/cat")
    try:
        # Typed once the program runs: what is typed before may go when the terminal is made raw.
        assert b"ready" in read_until(master, lambda s: b"ready" in s)
        os.write(master, b"hello-tty\n")
        seen = read_until(master, lambda s: s.count(b"hello-tty") >= 2)
        assert seen.count(b"hello-tty") >= 2, seen  # the terminal's echo and cat's copy
        os.write(master, b"\x04")  # end of file, typed
        assert process.wait(timeout=20) == 0
    finally:
        close_terminal(process, master, slave)


# === 2. host helpers the guest can read or trace ==================================================

GUEST_PROGRAMS = {"init", "sh", "true", "sleep", "cat", "ls", "grep", "setsid", "attack"}


def test_host_helpers_cannot_be_read_or_traced_by_the_guest(engine, make_context, cli, attack_binary):
    """While the host runs `exec` into the guest with a secret in its environment, the guest's root
    watches every process that appears and tries to read its environment and attach to it."""
    name = guest_with_attack(make_context, cli, attack_binary)
    secret = f"S3CR3T-{uuid.uuid4().hex}"
    # The script goes in through stdin, so the secret is in no command line but the hunter's own. It
    # hunts for at most 30 s, and is stopped (SIGTERM: it then reports) once the host is done.
    started = cli(
        "exec",
        name,
        "--",
        "/bin/sh",
        input=f"setsid /attack hunt 30 {secret} </dev/null >/tmp/hunt.log 2>&1 &\n",
    )
    assert started.returncode == 0, started.stderr

    def hunter():
        found = re.search(r"hunt: pid=(\d+)", inside(engine, name, "cat /tmp/hunt.log").stdout)
        return found and found.group(1)

    hunter_pid = wait_until(hunter, 10, "the hunter to run")

    env = cli.env | {"BROKER_URL": f"redis://:{secret}@x/0", "DATABASE_URL": f"postgres://u:{secret}@x/db"}
    for _ in range(10):
        assert cli_bytes(cli, "exec", name, "--", "/bin/true", env=env).returncode == 0
    assert cli_bytes(cli, "exec", name, "--", "/bin/sleep", "1", env=env).returncode == 0
    inside(engine, name, f"kill -TERM {hunter_pid}")

    def hunt_log():
        out = inside(engine, name, "cat /tmp/hunt.log").stdout
        return out if "hunt: done" in out else None

    log = wait_until(hunt_log, 20, "the hunter to finish")
    seen = int(re.search(r"seen=(\d+)", log).group(1))
    assert seen >= 11, f"the hunter did not even see the exec'd programs: {log}"
    found = [line for line in log.splitlines() if line.startswith("found")]
    attached = [line for line in log.splitlines() if line.startswith("attached")]
    assert not found, f"the guest read the host's secret: {found}"
    foreign = [line for line in attached if line.split()[2] not in GUEST_PROGRAMS]
    assert not foreign, f"the guest attached to host helpers: {foreign}"

    # What an exec'd process holds: the guest's environment only, no descriptor beyond 0, 1, 2.
    env_term = env | {"TERM": "xterm"}
    environ = cli_bytes(cli, "exec", name, "--", "/bin/cat", "/proc/self/environ", env=env_term).stdout
    variables = dict(item.split(b"=", 1) for item in environ.split(b"\0") if item)
    assert secret.encode() not in environ
    assert b"PATH" in variables and variables.get(b"TERM", b"xterm") == b"xterm", variables
    assert set(variables) <= {b"PATH", b"TERM", b"HOME", b"container"}, variables

    listing = cli("exec", name, "--", "/bin/ls", "-l", "/proc/self/fd", stdin=subprocess.DEVNULL).stdout
    fds = {}
    for line in listing.splitlines()[1:]:  # after "total 0"
        fields = line.split()
        if "->" in fields:
            arrow = fields.index("->")
            fds[fields[arrow - 1]] = " ".join(fields[arrow + 1 :])
        elif fields:
            fds[fields[-1]] = None  # closed again by the time ls looked: the directory ls read
    assert {"0", "1", "2"} <= set(fds), listing
    for fd, target in fds.items():
        if fd in {"0", "1", "2"}:
            assert re.fullmatch(r"pipe:\[\d+\]|/dev/pts/\d+|/dev/null", target or ""), listing
        else:
            assert target is None or re.fullmatch(r"/proc/\d+/fd", target), listing
    assert len(fds) <= 4, listing

    # The guest's root may debug its own processes, but holds no SYS_PTRACE over anything else.
    for pid in ("1", "self"):
        line = inside(engine, name, f"grep CapBnd /proc/{pid}/status").stdout
        assert not int(line.split()[1], 16) >> CAP_SYS_PTRACE & 1, f"/proc/{pid}: {line}"
    assert attack(cli, name, "ptrace_self_child") == {"ptrace_self_child": "ok"}


# === 3. cgroups everywhere ========================================================================


def exec_in_background(cli, engine, name: str):
    """`exec NAME -- /bin/sleep 5` left running; returns (the CLI process, the sleep's host pid)."""
    process = subprocess.Popen(
        [*cli.argv, "exec", name, "--", "/bin/sleep", "5"],
        cwd=cli.cwd,
        env=cli.env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    namespace = os.readlink(f"/proc/{init_pid(engine, name)}/ns/pid")

    def find():
        for entry in os.listdir("/proc"):
            try:
                if entry.isdigit() and os.readlink(f"/proc/{entry}/ns/pid") == namespace:
                    with open(f"/proc/{entry}/comm") as f:
                        if f.read().strip() == "sleep":
                            return int(entry)
            except OSError:
                continue
        return None

    return process, wait_until(find, 20, "the exec'd sleep")


def test_guest_processes_are_in_every_cgroup_hierarchy_of_the_host(engine, make_context, cli):
    """Init and an exec'd process: in the context's group of every hierarchy mounted here (on a
    hybrid host that includes name=systemd and the cgroup2 one), not left in the host's groups."""
    name = make_context()
    parent = engine.cgroup_parent
    assert misplaced(init_pid(engine, name), parent, name) == {}
    process, pid = exec_in_background(cli, engine, name)
    try:
        assert misplaced(pid, parent, name) == {}
    finally:
        process.kill()
        process.wait(timeout=10)


def _empty_hierarchy(target: str) -> None:
    """Remove every group below the root of a v1 hierarchy. Guests started meanwhile (by other test
    runs on this machine) may sit in it: it has no controllers, so moving them to its root changes
    nothing for them."""
    for directory, subdirectories, _ in os.walk(target, topdown=False):
        for sub in subdirectories:
            group = os.path.join(directory, sub)
            try:
                with open(os.path.join(group, "cgroup.procs")) as f:
                    pids = f.read().split()
                for pid in pids:
                    try:
                        with open(os.path.join(target, "cgroup.procs"), "w") as f:
                            f.write(pid)
                    except OSError:
                        pass  # it exited
                os.rmdir(group)
            except OSError:
                pass


def _hierarchy_alive(label: str) -> bool:
    with open("/proc/self/cgroup") as f:
        return f":name={label}:" in f.read()


@pytest.fixture
def extra_hierarchy(engine_state):
    """A named v1 hierarchy the test mounts (before any guest starts), removed at the end.

    A v1 hierarchy unmounted while it still has groups (removed ones linger a moment as dying) lives
    on, unreachable, in every /proc/PID/cgroup: so empty, unmount, and mount it again to retry until
    the kernel has let it go."""
    label = f"ctxtest-{uuid.uuid4().hex}"
    target = tempfile.mkdtemp(prefix="cgroup-ctxtest-")
    mount = ["mount", "-t", "cgroup", "-o", f"none,name={label}", "cgroup", target]
    subprocess.run(mount, check=True)
    try:
        yield label, target
    finally:
        for _ in range(100):
            _empty_hierarchy(target)
            subprocess.run(["umount", target], check=False)
            time.sleep(0.05)
            if not _hierarchy_alive(label):
                break
            subprocess.run(mount, check=False)
        if not os.path.ismount(target):
            shutil.rmtree(target, ignore_errors=True)


def test_guest_joins_a_hierarchy_mounted_after_the_engine_was_written(extra_hierarchy, engine, make_context, cli):
    label, target = extra_hierarchy
    parent = engine.cgroup_parent
    name = make_context(start=False)
    engine.start(name)
    paths = cgroups_of(init_pid(engine, name))
    assert in_group(paths.get(frozenset({f"name={label}"}), ""), parent, name), paths
    assert misplaced(init_pid(engine, name), parent, name) == {}
    process, pid = exec_in_background(cli, engine, name)
    try:
        assert in_group(cgroups_of(pid).get(frozenset({f"name={label}"}), ""), parent, name)
    finally:
        process.kill()
        process.wait(timeout=10)
    engine.destroy(name, timeout=2)
    assert not os.path.exists(os.path.join(target, parent, name)), "destroy left the context's group behind"


# === 4. raising its own limits ====================================================================


def test_guest_cannot_raise_its_limits_through_a_user_namespace(engine, make_context, cli, attack_binary):
    name = guest_with_attack(make_context, cli, attack_binary, limits={"pids": 64, "cpus": 0.5})
    parent, pid = engine.cgroup_parent, init_pid(engine, name)

    def limits():
        pids = context_cgroup_file(pid, parent, name, "pids.max")
        cpu = context_cgroup_file(pid, parent, name, "cpu.max") or context_cgroup_file(
            pid, parent, name, "cpu.cfs_quota_us"
        )
        return pids, cpu

    before = limits()
    assert before[0] == "64" and before[1] not in (None, "-1") and not before[1].startswith("max"), before

    answers = attack(cli, name, "userns_clone", "clone3", "userns_unshare")
    assert answers == {"userns_clone": EPERM, "clone3": ENOSYS, "userns_unshare": EPERM}, answers
    steps = attack(cli, name, "userns_cgroup")
    assert steps.get("userns_cgroup.unshare") == EPERM, steps
    assert steps.get("userns_cgroup") != "ok" and "ok" not in {
        steps.get("userns_cgroup.pids_max"),
        steps.get("userns_cgroup.cgroup2_pids_max"),
    }, steps
    assert limits() == before


# === 5. kernel interfaces =========================================================================

EXPECTED = {
    **dict.fromkeys(("keyctl", "add_key", "request_key"), ENOSYS),
    **dict.fromkeys(
        (
            "kexec_load",
            "kexec_file_load",
            "init_module",
            "finit_module",
            "delete_module",
            "open_by_handle_at",
            "bpf",
            "perf_event_open",
            "userfaultfd",
            "swapon",
            "swapoff",
            "acct",
            "quotactl",
            "syslog",
        ),
        EPERM,
    ),
    **dict.fromkeys(
        ("io_uring_setup", "fsopen", "fsconfig", "fsmount", "fspick", "open_tree", "move_mount", "mount_setattr"),
        ENOSYS,
    ),
}
# Not run on the host: turning process accounting off there is not harmless.
NOT_ON_HOST = {"acct"}
MASKED_FILES = ("/proc/kpageflags", "/proc/kpagecount", "/proc/slabinfo", "/sys/kernel/vmcoreinfo")


def test_kernel_interfaces_are_closed_by_the_syscall_filter(engine, make_context, cli, attack_binary):
    name = guest_with_attack(make_context, cli, attack_binary)
    answers = attack(cli, name, *EXPECTED)
    wrong = {call: answers.get(call) for call, expected in EXPECTED.items() if answers.get(call) != expected}
    assert wrong == {}, f"answers in the guest other than the filter's: {wrong}"

    # An errno alone may be the kernel's (no kexec or modules in this kernel, no capability in the
    # guest): the host, outside any guest, must get another answer for each call.
    host = {call: attack_on_host(attack_binary, call) for call in EXPECTED if call not in NOT_ON_HOST}
    same = {call: answer for call, answer in host.items() if answer == answers[call]}
    assert same == {}, f"the host gets the same answers, so the guest's are not the filter's: {same}"

    # Other system call ABIs (x32, i386's int 0x80) are not filtered by number: they kill.
    result = inside(engine, name, "/attack x32; echo status=$?; /attack i386; echo status=$?")
    statuses = re.findall(r"status=(\d+)", result.stdout)
    assert statuses == [str(SIGSYS_STATUS)] * 2, result.stdout + result.stderr

    # Kernel memory layout and allocator state read as empty.
    script = "; ".join(f"echo {path}=$(head -c 64 {path} 2>/dev/null | wc -c)" for path in MASKED_FILES)
    sizes = dict(line.split("=") for line in inside(engine, name, script).stdout.split())
    readable = {path: sizes[path] for path in MASKED_FILES if os.path.exists(path) and sizes[path].strip() != "0"}
    assert readable == {}, f"files the guest can read: {readable}"


# === 6. the host's own code loading the guest's files =============================================

PLANTED = 'import os; open("/pwned", "w").write(str(os.getuid()))'  # one line: it goes through sh


def test_a_failing_start_never_imports_the_guests_python(engine, make_context, cli):
    """The guest plants a json module where the starting process would look for one (the project's
    directory and the standard library's, seen from inside), breaks its own init and reboots: the
    restart fails after pivot_root, and recording that failure must not import anything (it would
    run the guest's code with every capability, next to a descriptor of the host's state directory)."""
    import sys
    import sysconfig

    from contexts.engine.lifecycle import PROJECT_ROOT

    name = make_context(init=["/bin/sleep", "100000"])
    places = {PROJECT_ROOT, sysconfig.get_paths()["stdlib"], *[p for p in sys.path if p.startswith("/usr/lib/py")]}
    script = "".join(
        f"mkdir -p '{place}/json' && printf %s \"$PLANTED\" > '{place}/json.py' && "
        f"printf %s \"$PLANTED\" > '{place}/json/__init__.py'; "
        for place in sorted(places)
    )
    run_id = engine.state.run_record(name)["run_id"]
    # Init becomes a file that cannot run, then reboot(2): the supervisor starts the guest again.
    result = inside(
        engine, name, f"PLANTED='{PLANTED}'; export PLANTED; {script} rm /bin/sleep && echo x > /bin/sleep; reboot -f"
    )
    assert "Operation not permitted" not in result.stderr, result.stderr

    upper = engine.state.context_dir(name) / "upper"

    def restarted_and_failed():
        run = engine.state.run_record(name)
        return run.get("run_id") != run_id and (run.get("last_exit") or {}).get("run_id") == run.get("run_id")

    wait_until(lambda: (upper / "pwned").exists() or restarted_and_failed(), 45, "the restart to fail")
    assert not (upper / "pwned").exists(), "the host's starting process ran the guest's json module"
    assert "not an executable program" in engine.state.run_record(name)["last_exit"]["reason"]


# === 7. halting: the host runs a program of the guest's ===========================================

SPY = """#!/bin/sh
{ echo "uid=$(id -u)"; env; echo --fds; ls -l /proc/self/fd
  echo --status; grep -E '^(CapBnd|Seccomp):' /proc/self/status; } > /var/tmp/telinit.log 2>&1
exec /sbin/telinit.real "$@"
"""


def test_halting_runs_the_guests_telinit_with_nothing_of_the_host(engine, make_context, debian_template, monkeypatch):
    """Stop of a SysV guest runs its /sbin/telinit, which the guest's root controls: here a spy that
    records what it was given, with a secret in the halting host process's environment."""
    from tests.engine.test_debian import wait_for

    secret = f"S3CR3T-{uuid.uuid4().hex}"
    monkeypatch.setenv("BROKER_URL", f"redis://:{secret}@broker/0")  # as in the host agent's environment
    name = make_context(template=debian_template)
    wait_for(engine, name, "runlevel", "N 2")
    result = inside(
        engine,
        name,
        f"mv /sbin/telinit /sbin/telinit.real && cat > /sbin/telinit <<'EOF'\n{SPY}EOF\nchmod 755 /sbin/telinit",
    )
    assert result.returncode == 0, result.stderr
    assert engine.stop(name, timeout=60) is True
    assert engine.status(name)["last_exit"]["reason"] == "halted"  # the spy passed the request on
    log = (engine.state.context_dir(name) / "upper/var/tmp/telinit.log").read_text()
    assert secret not in log
    variables = {line.split("=", 1)[0] for line in log.split("--fds")[0].splitlines()[1:] if "=" in line}
    assert variables <= {"PATH", "HOME", "container", "PWD", "SHLVL", "_"}, log  # the last three: the spy's sh
    fds = re.findall(r" (\d+) -> (\S+)", log.split("--fds")[1].split("--status")[0])
    assert {fd for fd, _ in fds} >= {"0", "1", "2"}
    assert all(target in ("/dev/null", "/var/tmp/telinit.log") or target.startswith("/proc/") for _, target in fds), log
    status = dict(line.split(":\t") for line in log.split("--status")[1].strip().splitlines())
    assert status["Seccomp"] == "2" and not int(status["CapBnd"], 16) >> CAP_SYS_PTRACE & 1, log
