"""The syscall filter's table and the cgroup placement logic, without a guest."""

import re
from pathlib import Path

from contexts.engine import cgroups, entry, seccomp

SECURITY = Path(seccomp.__file__).with_name("SECURITY.md").read_text()

HYBRID_MOUNTINFO = """\
25 30 0:23 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
33 25 0:28 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755
34 33 0:29 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime shared:10 - cgroup2 cgroup2 rw,nsdelegate
35 33 0:30 / /sys/fs/cgroup/systemd rw,nosuid,nodev,noexec,relatime shared:11 - cgroup cgroup rw,xattr,name=systemd
38 33 0:33 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:14 - cgroup cgroup rw,cpu,cpuacct
39 33 0:34 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:15 - cgroup cgroup rw,memory
40 33 0:35 / /sys/fs/cgroup/pids rw,nosuid,nodev,noexec,relatime shared:16 - cgroup cgroup rw,pids
41 33 0:36 / /sys/fs/cgroup/net_cls,net_prio rw,relatime shared:17 - cgroup cgroup rw,net_cls,net_prio
42 30 0:30 / /mnt/systemd-again rw,relatime shared:18 - cgroup cgroup rw,xattr,name=systemd
43 30 0:34 /lxc/guest /mnt/memory-subtree rw,relatime shared:19 - cgroup cgroup rw,memory
"""
HYBRID_MOUNTS = "\n".join(
    f"cgroup{'2' if 'cgroup2' in line else ''} {line.split()[4]} {line.split(' - ')[1].split()[0]} "
    f"{line.split(' - ')[1].split()[2]} 0 0"
    for line in HYBRID_MOUNTINFO.splitlines()
    if " - cgroup" in line
)
V2_MOUNTINFO = """\
30 25 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate
50 30 0:40 / /run/legacy rw,relatime shared:30 - cgroup cgroup rw,name=legacy
"""


def test_every_denied_call_is_documented_with_its_answer():
    for name, (number, reason) in seccomp.DENIED.items():
        assert reason
        answer = {seccomp.EPERM: "EPERM", seccomp.ENOSYS: "ENOSYS"}[number]
        rows = [line for line in SECURITY.splitlines() if re.search(rf"\b{re.escape(name)}\b", line) and "|" in line]
        assert any(answer in row for row in rows), f"{name} ({answer}) is not in SECURITY.md's table"
    for name, *_ in seccomp.DENIED_WHEN:
        assert name in SECURITY


def test_the_calls_the_issue_names_are_denied():
    required = {
        "kexec_load", "kexec_file_load", "init_module", "finit_module", "delete_module", "open_by_handle_at",
        "keyctl", "add_key", "request_key", "bpf", "perf_event_open", "userfaultfd", "io_uring_setup",
        "io_uring_enter", "io_uring_register", "fsopen", "fsconfig", "fsmount", "fspick", "open_tree",
        "move_mount", "mount_setattr", "swapon", "swapoff", "acct", "quotactl", "syslog", "clone3",
    }  # fmt: skip
    assert required <= set(seccomp.DENIED)
    assert {name for name, *_ in seccomp.DENIED_WHEN} >= {"clone", "unshare"}


def test_the_filter_compiles_for_this_machine():
    program = seccomp.compile_filter()
    assert program and len(program) % 8 == 0
    assert seccomp.support_problem() is None


def test_guests_are_placed_in_every_whole_hierarchy_once():
    cg = cgroups.choose("ctx", HYBRID_MOUNTS, HYBRID_MOUNTINFO)
    assert cg.version == 1
    # name=systemd (once, though mounted twice), net_cls (a controller we set no limit in) and the
    # cgroup2 beside v1; not the subtree mount, where ctx/web would be some other group.
    assert cg.extra_roots == ["/sys/fs/cgroup/unified", "/sys/fs/cgroup/systemd", "/sys/fs/cgroup/net_cls,net_prio"]
    directories = cg.directories("web")
    assert directories[0] == "/sys/fs/cgroup/pids/ctx/web"  # the limits' hierarchies come first
    assert "/sys/fs/cgroup/unified/ctx/web" in directories and "/sys/fs/cgroup/systemd/ctx/web" in directories
    assert cg.procs_files("web")[-1] == "/sys/fs/cgroup/net_cls,net_prio/ctx/web/cgroup.procs"


def test_a_v2_host_places_guests_in_named_v1_hierarchies_too():
    cg = cgroups.choose("ctx", "cgroup2 /sys/fs/cgroup cgroup2 rw,nsdelegate 0 0\n", V2_MOUNTINFO)
    assert cg.version == 2
    assert cg.directories("web") == ["/sys/fs/cgroup/ctx/web", "/run/legacy/ctx/web"]


def test_a_v1_only_host_has_no_extra_hierarchy():
    text = "\n".join(line for line in HYBRID_MOUNTINFO.splitlines() if "cpu,cpuacct" in line or "pids" in line)
    mounts = (
        "cgroup /sys/fs/cgroup/cpu,cpuacct cgroup rw,cpu,cpuacct 0 0\ncgroup /sys/fs/cgroup/pids cgroup rw,pids 0 0\n"
    )
    assert cgroups.choose("ctx", mounts, text).extra_roots == []


def test_exec_gets_a_guest_terminal_only_when_ours_is_one(tmp_path):
    import os
    import pty

    master, slave = pty.openpty()
    with open(tmp_path / "file", "w") as f:
        try:
            assert entry.choose_mode(slave, slave) == "pty"
            assert entry.choose_mode(slave, f.fileno()) == "pipes"  # output to a file gets no CRLF
            assert entry.choose_mode(f.fileno(), slave) == "pipes"
            assert entry.choose_mode(99, 98) == "pipes"  # closed descriptors
        finally:
            os.close(master)
            os.close(slave)


def test_guests_started_before_the_current_protections_are_named():
    import types

    from contexts.engine import operations
    from contexts.engine.lifecycle import PROTECTION_VERSION

    records = {
        "new": {"protection": {"version": PROTECTION_VERSION, "filtered": True}},
        "old": {"run_id": "x"},  # started by an engine before the filter
        "unfiltered": {"protection": {"version": PROTECTION_VERSION, "filtered": False}},
    }
    engine = types.SimpleNamespace(state=types.SimpleNamespace(run_record=records.__getitem__))
    assert operations.outdated_guests(engine, ["new", "old", "unfiltered"]) == ["old", "unfiltered"]
