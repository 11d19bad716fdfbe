"""Copy-on-write hard-link clones, unification, disk accounting and per-guest disk limits."""

import io
import os
import tarfile
import uuid

import pytest

from contexts.engine import disk
from contexts.engine.errors import EngineError, TemplateNotFound
from contexts.engine.templates import Templates, tree_checksum
from tests.engine.conftest import inside


def inodes(root) -> dict[str, int]:
    out = {}
    for dirpath, _, filenames in os.walk(root):
        for name in filenames:
            path = os.path.join(dirpath, name)
            if os.path.isfile(path) and not os.path.islink(path):
                out[os.path.relpath(path, root)] = os.lstat(path).st_ino
    return out


def test_lower_tree_is_the_templates_inodes(engine, make_context, busybox_template):
    name = make_context(start=False)
    template = inodes(engine.state.template_rootfs(busybox_template))
    lower = inodes(engine.state.context_dir(name) / "lower")
    assert template and lower == template


def test_writes_inside_never_reach_the_template_or_a_sibling(engine, make_context, busybox_template):
    template_root = engine.state.template_rootfs(busybox_template)
    before = tree_checksum(template_root)
    writer, sibling = make_context(), make_context()
    sibling_view = inside(engine, sibling, "md5sum /etc/passwd /etc/group /bin/busybox; ls -ln /etc").stdout
    result = inside(
        engine,
        writer,
        """
        chown 1:1 /etc/hosts && chmod 600 /etc/group && truncate -s 1 /etc/profile && rm /etc/inittab &&
        echo x >> /etc/passwd && echo new > /tmp/n && mv /tmp/n /etc/group && chmod 700 /bin/busybox; echo rc=$?""",
    )
    assert "rc=0" in result.stdout, result.stderr
    assert tree_checksum(template_root) == before
    assert inside(engine, sibling, "md5sum /etc/passwd /etc/group /bin/busybox; ls -ln /etc").stdout == sibling_view


def test_a_removed_template_leaves_its_guests_working(engine, make_context):
    state = engine.state
    name = f"tpl-{uuid.uuid4().hex[:8]}"
    Templates(state).build_busybox(name)
    guest = make_context(start=False, template=name)
    Templates(state).remove(name)
    assert name not in state.template_names()
    engine.start(guest)
    assert inside(engine, guest, "cat /etc/passwd | head -1").stdout == "root:x:0:0:root:/root:/bin/sh\n"


def test_unify_shares_identical_private_files_and_keeps_guests_apart(engine, make_context):
    guests = [make_context() for _ in range(5)]
    # Each guest "installs" the same 4 MiB of files privately; one also has a file of its own.
    payload = "head -c 1048576 /dev/zero | tr '\\0' 'a' > /usr/lib/app/f$i"
    for name in guests:
        inside(engine, name, f"mkdir -p /usr/lib/app && for i in 1 2 3 4; do {payload}; done")
    inside(engine, guests[0], "echo mine > /usr/lib/app/own")
    for name in guests:
        engine.stop(name, timeout=5)
    duplicated = 4 * 2**20 * (len(guests) - 1)
    report = engine.unify(guests)
    assert report["bytes_reclaimed"] >= 0.9 * duplicated, report
    assert report["skipped_running"] == []
    lowers = [engine.state.context_dir(n) / "lower/usr/lib/app/f1" for n in guests]
    assert len({os.stat(p).st_ino for p in lowers}) == 1
    assert not (engine.state.context_dir(guests[0]) / "lower/usr/lib/app/own").exists()  # unique: stays private
    for name in guests:
        engine.start(name)
    inside(engine, guests[1], "echo changed > /usr/lib/app/f1")
    for name in guests[:1] + guests[2:]:
        out = inside(engine, name, "head -c 3 /usr/lib/app/f1; echo; wc -c < /usr/lib/app/f1").stdout.split()
        assert out == ["aaa", "1048576"]
    assert inside(engine, guests[1], "cat /usr/lib/app/f1").stdout == "changed\n"
    assert inside(engine, guests[0], "cat /usr/lib/app/own").stdout == "mine\n"


def test_unify_leaves_running_guests_alone(engine, make_context):
    running = make_context()
    inside(engine, running, "echo same > /usr/share-x 2>/dev/null; mkdir -p /usr/share/x && echo same > /usr/share/x/f")
    report = engine.unify([running])
    assert report["skipped_running"] == [running]


def test_df_reports_shared_and_private(engine, make_context):
    a, b = make_context(), make_context()
    inside(engine, a, "head -c 2097152 /dev/zero > /root/blob")
    report = engine.disk_report()
    rows = {r["name"]: r for r in report["contexts"]}
    assert rows[a]["shared_bytes"] > 1_000_000 and rows[a]["shared_bytes"] == rows[b]["shared_bytes"]
    assert rows[a]["private_bytes"] >= 2 * 2**20 > rows[b]["private_bytes"]
    assert report["saved_bytes"] > 0 and report["actual_bytes"] < report["apparent_bytes"]


def test_disk_limit_stops_the_guest_and_no_one_else(engine, make_context):
    limited = make_context(disk=64 * 2**20)
    neighbour = make_context()
    result = inside(engine, limited, "dd if=/dev/zero of=/root/fill bs=1M count=100; wc -c < /root/fill")
    assert "No space left on device" in result.stderr
    written = int(result.stdout.split()[-1])
    assert 56 * 2**20 <= written <= 64 * 2**20
    ok = inside(engine, neighbour, "dd if=/dev/zero of=/root/fill bs=1M count=100 2>/dev/null; wc -c < /root/fill")
    assert int(ok.stdout.split()[-1]) == 100 * 2**20


def test_disk_limit_changes(engine, make_context):
    name = make_context(disk=32 * 2**20)
    inside(engine, name, "dd if=/dev/zero of=/root/fill bs=1M count=20 2>/dev/null")
    engine.stop(name, timeout=5)
    with pytest.raises(EngineError, match="would not hold it"):
        engine.set_disk_limit(name, 16 * 2**20)
    engine.set_disk_limit(name, 96 * 2**20)
    engine.start(name)
    assert engine.status(name)["limits"]["disk_bytes"] == 96 * 2**20
    out = inside(engine, name, "dd if=/dev/zero of=/root/more bs=1M count=60 2>&1 | tail -1; wc -c < /root/more")
    assert int(out.stdout.split()[-1]) == 60 * 2**20
    directory = engine.state.context_dir(name)
    assert 95 * 2**20 <= disk.capacity(directory) <= 98 * 2**20


def test_bad_template_sources_are_refused_and_write_nothing_outside(engine_state, tmp_path):
    state = engine_state[0]
    templates = Templates(state)
    before = set(os.listdir(state.templates))
    corrupt = tmp_path / "corrupt.tar.gz"
    corrupt.write_bytes(b"\x1f\x8b\x08\x00not really gzip")
    with pytest.raises(EngineError):
        templates.import_("t-corrupt", str(corrupt))

    escape = tmp_path / "escape.tar"
    victim = tmp_path / "victim"
    with tarfile.open(escape, "w") as tar:
        for member_name in ("../victim", "/tmp/absolute-" + uuid.uuid4().hex, "bin/ok"):
            info = tarfile.TarInfo(member_name)
            info.size = 4
            tar.addfile(info, io.BytesIO(b"evil"))
    try:
        templates.import_("t-escape", str(escape))
    except EngineError:
        pass
    assert not victim.exists()
    assert not [p for p in os.listdir("/tmp") if p.startswith("absolute-")]

    devices = tmp_path / "devices"
    (devices / "dev").mkdir(parents=True)
    os.mknod(devices / "dev/sda", 0o600 | 0o060000, os.makedev(8, 0))  # a block device: the host's disk
    with pytest.raises(EngineError, match="host device nodes: /dev/sda"):
        templates.import_("t-devices", str(devices))
    with pytest.raises(TemplateNotFound):
        templates.remove("t-never-was")
    leftovers = set(os.listdir(state.templates)) - before
    assert leftovers <= {"t-escape"}  # only the safe members of the escaping archive, inside the state dir
    if leftovers:
        templates.remove("t-escape")
