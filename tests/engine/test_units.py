"""The engine's pure logic, without root or a kernel to spare."""

import os
import struct

import pytest

from contexts.engine import capabilities, cgroups, procinfo, safefile, templates
from contexts.engine.errors import HostUnsupported, InvalidSpec
from contexts.engine.lifecycle import describe_exit

V1_MOUNTS = """\
tmpfs /sys/fs/cgroup tmpfs rw,relatime,mode=755 0 0
cgroup /sys/fs/cgroup/cpu,cpuacct cgroup rw,relatime,cpu,cpuacct 0 0
cgroup /sys/fs/cgroup/memory cgroup rw,relatime,memory 0 0
cgroup /sys/fs/cgroup/pids cgroup rw,relatime,pids 0 0
cgroup /sys/fs/cgroup/freezer cgroup rw,relatime,freezer 0 0
cgroup2 /sys/fs/cgroup/unified cgroup2 rw,relatime 0 0
"""
V2_MOUNTS = "cgroup2 /sys/fs/cgroup cgroup2 rw,nosuid,nodev,noexec,relatime,nsdelegate 0 0\n"


def test_v1_hierarchies_merge_co_mounted_controllers():
    cg = cgroups.choose("ctx", V1_MOUNTS)
    assert isinstance(cg, cgroups.CgroupsV1) and cg.version == 1
    assert cg.hierarchies["cpu"] == cg.hierarchies["cpuacct"] == "/sys/fs/cgroup/cpu,cpuacct"
    assert cg.directories("web") == [
        "/sys/fs/cgroup/pids/ctx/web",
        "/sys/fs/cgroup/freezer/ctx/web",
        "/sys/fs/cgroup/memory/ctx/web",
        "/sys/fs/cgroup/cpu,cpuacct/ctx/web",
    ]
    assert cg.procs_files("web")[0] == "/sys/fs/cgroup/pids/ctx/web/cgroup.procs"


def test_hybrid_hosts_use_v1_and_unified_hosts_v2():
    assert cgroups.choose("ctx", V1_MOUNTS).version == 1  # the empty cgroup2 beside v1 owns no controllers
    v2 = cgroups.choose("ctx", V2_MOUNTS)
    assert v2.version == 2 and v2.directories("web") == ["/sys/fs/cgroup/ctx/web"]


def test_no_cgroups_is_explained():
    with pytest.raises(HostUnsupported, match="mount cgroup2 on /sys/fs/cgroup"):
        cgroups.choose("ctx", "proc /proc proc rw 0 0\n")


def test_parse_procs():
    assert cgroups.parse_procs("1\n22\n333\n") == {1, 22, 333}
    assert cgroups.parse_procs("") == set()


def test_parse_stat_copes_with_odd_command_names():
    text = "42 (a) b (c)) S 1 42 42 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 1 0 98765 1000 50 18446744073709551615"
    assert procinfo.parse_stat(text) == ("S", 98765)
    assert procinfo.is_alive(os.getpid())
    assert not procinfo.is_alive(os.getpid(), starttime=1)  # same pid, another process
    assert not procinfo.is_alive(2**22 + 1)


def test_capabilities_to_drop():
    dropped = capabilities.to_drop(last=40)
    kept = {capabilities.CAP_NUMBERS[n] for n in capabilities.GUEST_CAPABILITIES}
    assert set(dropped) | kept == set(range(41)) and not set(dropped) & kept
    assert capabilities.CAP_NUMBERS["SYS_ADMIN"] in dropped and capabilities.CAP_NUMBERS["SYS_BOOT"] not in dropped


def vfs_caps(permitted: int, effective: bool) -> bytes:
    magic = 0x02000000 | (1 if effective else 0)
    return struct.pack("<IIIII", magic, permitted & 0xFFFFFFFF, 0, permitted >> 32, 0)


def test_file_capabilities_beyond_the_guests_are_recognised():
    net_raw = 1 << capabilities.CAP_NUMBERS["NET_RAW"]
    bind = 1 << capabilities.CAP_NUMBERS["NET_BIND_SERVICE"]
    assert templates.unusable_file_capabilities(vfs_caps(net_raw, effective=True))
    assert not templates.unusable_file_capabilities(vfs_caps(net_raw, effective=False))  # runs, just without it
    assert not templates.unusable_file_capabilities(vfs_caps(bind, effective=True))
    assert templates.unusable_file_capabilities(vfs_caps(1 << 38, effective=True))  # PERFMON, upper word


def test_exit_reasons():
    assert describe_exit(129) == "rebooted" and describe_exit(130) == "halted" and describe_exit(137) == "killed"
    assert describe_exit(0) == "init exited with status 0" and describe_exit(143) == "init ended by signal 15"


def test_safe_write_replaces_symlinks_instead_of_following_them(tmp_path):
    root, outside = tmp_path / "root", tmp_path / "outside"
    (root / "etc").mkdir(parents=True)
    outside.write_text("keep")
    (root / "etc/hostname").symlink_to(outside)
    safefile.write_file(root, "etc/hostname", "guest\n")
    assert outside.read_text() == "keep"
    assert not (root / "etc/hostname").is_symlink() and (root / "etc/hostname").read_text() == "guest\n"


def test_safe_write_refuses_symlinked_directories_and_dot_dot(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    (root / "etc").symlink_to(tmp_path)
    with pytest.raises(safefile.UnsafePath, match="'etc' is a symlink"):
        safefile.write_file(root, "etc/passwd", "x")
    assert not (tmp_path / "passwd").exists()
    for bad in ("../x", "a/../../x", "", "."):
        with pytest.raises(safefile.UnsafePath):
            safefile.write_file(root, bad, "x")
    assert safefile.read_file(root, "etc/anything") is None


def test_safe_write_creates_directories_and_sets_mode(tmp_path):
    safefile.write_file(tmp_path, "root/.ssh/authorized_keys", "ssh-ed25519 AAA", mode=0o600)
    path = tmp_path / "root/.ssh/authorized_keys"
    assert path.read_text() == "ssh-ed25519 AAA" and (path.stat().st_mode & 0o777) == 0o600
    assert safefile.read_file(tmp_path, "root/.ssh/authorized_keys") == b"ssh-ed25519 AAA"
    assert [p.name for p in (tmp_path / "root/.ssh").iterdir()] == ["authorized_keys"]  # no temporary left


def _tree(root, files: dict):
    for rel, (data, mode) in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        os.chmod(path, mode)
    return str(root)


def test_unify_links_only_truly_identical_files(tmp_path):
    from contexts.engine import unify

    a = _tree(tmp_path / "a", {"usr/x": (b"same", 0o644), "usr/mode": (b"m", 0o644), "etc/conf": (b"c", 0o644)})
    b = _tree(tmp_path / "b", {"usr/x": (b"same", 0o644), "usr/mode": (b"m", 0o755), "etc/conf": (b"c", 0o644)})
    c = _tree(tmp_path / "c", {"usr/x": (b"diff", 0o644)})
    os.setxattr(os.path.join(a, "usr/mode"), "user.tag", b"1")
    report = unify.unify([a, b, c], [])
    assert os.stat(os.path.join(a, "usr/x")).st_ino == os.stat(os.path.join(b, "usr/x")).st_ino
    assert os.stat(os.path.join(c, "usr/x")).st_ino != os.stat(os.path.join(a, "usr/x")).st_ino
    assert os.stat(os.path.join(a, "usr/mode")).st_ino != os.stat(os.path.join(b, "usr/mode")).st_ino
    # /etc is excluded by default
    assert os.stat(os.path.join(a, "etc/conf")).st_ino != os.stat(os.path.join(b, "etc/conf")).st_ino
    assert report.files_linked == 1 and report.bytes_reclaimed > 0


def test_unify_skips_a_file_that_changes_after_it_was_hashed(tmp_path, monkeypatch):
    from contexts.engine import unify

    a = _tree(tmp_path / "a", {"usr/f": (b"x" * 5000, 0o644)})
    b = _tree(tmp_path / "b", {"usr/f": (b"x" * 5000, 0o644)})
    real_digest = unify._digest

    def digest_then_change(path):
        # A double for a writer racing with unify: the file changes right after it was hashed.
        value = real_digest(path)
        if path.startswith(b):
            with open(path, "ab") as f:
                f.write(b"y")
        return value

    monkeypatch.setattr(unify, "_digest", digest_then_change)
    report = unify.unify([a, b], [])
    assert report.files_linked == 0 and report.changed_while_running == 1
    assert open(os.path.join(b, "usr/f"), "rb").read().endswith(b"y")


def test_limits_translate_to_cgroup_v2_files():
    from contexts.engine import limits

    pairs = dict(
        limits.settings(
            {
                "cpus": 0.5,
                "cpu_weight": 200,
                "memory_bytes": 64 * 2**20,
                "swap_bytes": 0,
                "pids": 64,
                "io_weight": 500,
                "io_write_bps": 10 * 2**20,
            },
            version=2,
            context_id=3,
            available=[0, 1, 2, 3],
            io_device="8:0",
        )
    )
    assert pairs["cpu.max"] == "50000 100000" and pairs["cpu.weight"] == "200"
    assert pairs["cpuset.cpus"] == "3"  # one CPU for half a core, chosen by context id
    assert pairs["memory.max"] == str(64 * 2**20) and pairs["memory.swap.max"] == "0"
    assert pairs["pids.max"] == "64" and pairs["io.weight"] == "default 500"
    assert pairs["io.max"] == f"8:0 wbps={10 * 2**20}"
    unlimited = dict(limits.settings({}, version=2, context_id=3, available=[0, 1], io_device=None))
    assert unlimited["cpu.max"] == "max 100000" and unlimited["memory.max"] == "max"
    assert unlimited["cpuset.cpus"] == "0,1" and "io.max" not in unlimited


def test_limits_translate_to_cgroup_v1_files():
    from contexts.engine import limits

    pairs = limits.settings(
        {"cpus": 1.5, "cpu_weight": 50, "memory_bytes": 2**30, "swap_bytes": 2**29},
        version=1,
        context_id=0,
        available=[0, 1, 2, 3],
        io_device="8:0",
    )
    files = [f for f, _ in pairs]
    values = dict(pairs)
    assert values["cpu.cfs_quota_us"] == "150000" and values["cpu.shares"] == "512"
    assert values["cpuset.cpus"] == "0,1"
    assert files.index("memory.limit_in_bytes") < files.index("memory.memsw.limit_in_bytes")
    assert values["memory.memsw.limit_in_bytes"] == str(2**30 + 2**29)
    assert values["blkio.throttle.write_bps_device"] == "8:0 0"  # no cap: 0 removes it


def test_limit_validation():
    from contexts.engine import limits

    ok = limits.validate({"cpus": 1, "cpuset": "1,0", "memory_bytes": 2**30}, [0, 1, 2], 2**34)
    assert ok == {"cpus": 1.0, "cpuset": "0,1", "memory_bytes": 2**30}
    with pytest.raises(InvalidSpec):
        limits.validate({"cpus": 4}, [0, 1], 2**34)
    assert limits.parse_bytes("512M") == 512 * 2**20 and limits.parse_bytes("1GiB") == 2**30
    with pytest.raises(InvalidSpec):
        limits.parse_bytes("lots")
