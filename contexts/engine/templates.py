"""Templates: the read-only root file systems contexts are built from.

A template is published by building it in a staging directory and renaming it into place, so a
half-built template is never seen, and it is never changed afterwards.
"""

import hashlib
import json
import os
import shutil
import stat
import struct
import subprocess
import tarfile
import time
from pathlib import Path

from . import safefile
from .capabilities import CAP_NUMBERS, GUEST_CAPABILITIES
from .clone import InvalidTemplate, forbidden_devices
from .errors import EngineError, HostUnsupported, TemplateExists
from .spec import check_name
from .state import StateDir, write_json

BUSYBOX = "/bin/busybox"
DEFAULT_MIRROR = "http://deb.debian.org/debian"
# What a VPS customer expects on a minimal Debian besides the base system.
DEBOOTSTRAP_BASE_PACKAGES = ("cron", "procps", "iproute2", "iputils-ping", "netbase", "less")

BUSYBOX_INITTAB = """\
# busybox init: run the rc script, then wait; `halt`, `reboot` and `poweroff` end the context.
::sysinit:/etc/init.d/rcS
::shutdown:/etc/init.d/rcK
::ctrlaltdel:/sbin/reboot
"""
BUSYBOX_RCS = """\
#!/bin/sh
# Boot: mark the time and start the services in /etc/rc.d (S* scripts, in order).
for script in /etc/rc.d/S*; do [ -x "$script" ] && "$script" start; done
"""
BUSYBOX_RCK = """\
#!/bin/sh
# Shutdown: stop the services in /etc/rc.d in reverse order, then flush.
for script in $(ls -r /etc/rc.d/S* 2>/dev/null); do [ -x "$script" ] && "$script" stop; done
sync
"""


def detect_init_style(rootfs) -> str:
    """How to ask this root's /sbin/init to halt: 'busybox', 'sysvinit', 'systemd' or 'signal'."""
    try:
        target = os.readlink(os.path.join(rootfs, "sbin/init"))
    except OSError:
        target = ""
    if target.endswith("busybox"):
        return "busybox"
    if "systemd" in target:
        return "systemd"
    if safefile.read_file(rootfs, "etc/inittab") is not None and os.path.exists(os.path.join(rootfs, "sbin/telinit")):
        return "sysvinit"
    return "signal"


def unusable_file_capabilities(raw: bytes, allowed: set[str] = GUEST_CAPABILITIES) -> bool:
    """True if a `security.capability` value asks for capabilities a guest can never hold with the
    effective bit set: the kernel then refuses to execute the file at all inside a context."""
    if len(raw) < 12:
        return False
    magic, permitted_low = struct.unpack_from("<II", raw)
    permitted = permitted_low
    if len(raw) >= 20:  # revision 2 and 3 carry the upper 32 bits too
        permitted |= struct.unpack_from("<I", raw, 12)[0] << 32
    allowed_mask = sum(1 << CAP_NUMBERS[name] for name in allowed)
    return bool(magic & 0x1) and bool(permitted & ~allowed_mask)


def strip_unusable_file_capabilities(rootfs) -> list[str]:
    """Remove file capabilities that would make a program unrunnable in a guest (Debian sets
    cap_net_raw+ep on ping; without NET_RAW the kernel refuses to run it, while without the file
    capability ping runs and uses an ICMP datagram socket). Returns the paths changed."""
    changed = []
    for dirpath, _, filenames in os.walk(rootfs):
        for name in filenames:
            path = os.path.join(dirpath, name)
            try:
                raw = os.getxattr(path, "security.capability", follow_symlinks=False)
            except OSError:
                continue
            if unusable_file_capabilities(raw):
                os.removexattr(path, "security.capability", follow_symlinks=False)
                changed.append("/" + os.path.relpath(path, rootfs))
    return sorted(changed)


def detect_version(rootfs) -> str:
    """What the tree says it is: os-release's PRETTY_NAME, Debian's version file, or BusyBox's."""
    os_release = safefile.read_file(rootfs, "etc/os-release") or safefile.read_file(rootfs, "usr/lib/os-release")
    if os_release:
        for line in os_release.decode(errors="replace").splitlines():
            if line.startswith("PRETTY_NAME="):
                version = line.split("=", 1)[1].strip().strip('"')
                debian = safefile.read_file(rootfs, "etc/debian_version")
                return f"{version} ({debian.decode().strip()})" if debian else version
    busybox = safefile.read_file(rootfs, "etc/busybox-version")
    return busybox.decode().strip() if busybox else "unknown"


def tree_checksum(rootfs) -> str:
    """sha256 over every entry's path, type, mode, owner and content (or link target), in order:
    equal checksums mean equal trees, whatever the times."""
    digest = hashlib.sha256()
    for dirpath, dirnames, filenames in os.walk(rootfs):
        dirnames.sort()
        for name in sorted(dirnames + filenames):
            path = os.path.join(dirpath, name)
            st = os.lstat(path)
            rel = os.path.relpath(path, rootfs)
            digest.update(f"{rel}\0{st.st_mode:o}\0{st.st_uid}\0{st.st_gid}\0".encode())
            if stat.S_ISREG(st.st_mode):
                with open(path, "rb") as f:
                    digest.update(hashlib.file_digest(f, "sha256").digest())
            elif stat.S_ISLNK(st.st_mode):
                digest.update(os.fsencode(os.readlink(path)))
            elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
                digest.update(f"{os.major(st.st_rdev)}:{os.minor(st.st_rdev)}".encode())
    return "sha256:" + digest.hexdigest()


def directory_size(path) -> int:
    total = 0
    for dirpath, _, filenames in os.walk(path):
        for name in filenames:
            try:
                total += os.lstat(os.path.join(dirpath, name)).st_size
            except OSError:
                pass
    return total


class Templates:
    def __init__(self, state: StateDir):
        self.state = state

    def records(self) -> list[dict]:
        return [self.state.template_record(name) for name in self.state.template_names()]

    def _publish(self, name: str, fill, source: str) -> dict:
        """Build a template in a staging directory with `fill(rootfs)`, then rename it into place."""
        check_name(name, "template name")
        self.state.ensure()
        final = self.state.template_dir(name)
        if final.exists():
            raise TemplateExists(f"Template {name!r} exists already; templates are never changed, pick a new name.")
        staging = self.state.templates / f".{name}.building-{os.getpid()}"
        if staging.exists():
            shutil.rmtree(staging)
        (staging / "rootfs").mkdir(parents=True)
        try:
            fill(staging / "rootfs")
            os.chmod(staging / "rootfs", 0o755)
            devices = forbidden_devices(staging / "rootfs")
            if devices:
                raise InvalidTemplate(
                    f"Refusing a template with host device nodes: {', '.join(devices[:5])}"
                    + (f" and {len(devices) - 5} more" if len(devices) > 5 else "")
                    + ". Remove them from the source; contexts get their own /dev."
                )
            stripped = strip_unusable_file_capabilities(staging / "rootfs")
            record = {
                "name": name,
                "source": source,
                "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "init_style": detect_init_style(staging / "rootfs"),
                "size_bytes": directory_size(staging / "rootfs"),
                "stripped_file_capabilities": stripped,
                "version": detect_version(staging / "rootfs"),
                "checksum": tree_checksum(staging / "rootfs"),
            }
            write_json(staging / "template.json", record)
            os.rename(staging, final)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return record

    def remove(self, name: str) -> None:
        """Delete a template. Contexts built from it keep their own hard-link clone and go on working."""
        record = self.state.template_record(name)
        doomed = self.state.templates / f".{record['name']}.removing-{os.getpid()}"
        os.rename(self.state.template_dir(name), doomed)  # gone from listings at once
        shutil.rmtree(doomed)

    # import NAME SOURCE

    def import_(self, name: str, source: str) -> dict:
        path = Path(source)
        if path.is_dir():
            return self._publish(name, lambda rootfs: _copy_tree(path, rootfs), f"directory {path.resolve()}")
        if path.is_file():
            if not tarfile.is_tarfile(path):
                raise EngineError(f"{source} is neither a directory nor a tar archive (.tar, .tar.gz, .tar.xz).")
            return self._publish(name, lambda rootfs: _extract(path, rootfs), f"archive {path.resolve()}")
        raise EngineError(f"Template source {source} does not exist.")

    # build NAME --busybox

    def build_busybox(self, name: str) -> dict:
        if not os.path.exists(BUSYBOX):
            raise HostUnsupported(f"{BUSYBOX} is missing: apt-get install busybox-static")
        return self._publish(name, _fill_busybox, "busybox-static")

    # build NAME --debootstrap SUITE

    def build_debootstrap(self, name: str, suite: str, mirror: str | None = None, include=()) -> dict:
        if not shutil.which("debootstrap"):
            raise HostUnsupported("debootstrap is missing: apt-get install debootstrap")
        check_name(suite, "suite")
        packages = list(dict.fromkeys([*DEBOOTSTRAP_BASE_PACKAGES, *include]))
        for package in packages:
            check_name(package.replace(".", "-").replace("+", "-"), "package name")

        def fill(rootfs):
            command = [
                "debootstrap",
                "--variant=minbase",
                f"--include={','.join(packages)}",
                suite,
                str(rootfs),
                mirror or DEFAULT_MIRROR,
            ]
            result = subprocess.run(command, capture_output=True, text=True)
            if result.returncode != 0:
                log = (result.stdout + result.stderr).strip().splitlines()[-5:]
                raise EngineError(f"debootstrap {suite} failed: {' | '.join(log)}")
            _make_vps_ready(rootfs)

        return self._publish(
            name, fill, json.dumps({"debootstrap": suite, "mirror": mirror or DEFAULT_MIRROR, "include": packages})
        )


def _copy_tree(source: Path, rootfs: Path) -> None:
    """Copy a root tree with owners, modes, times, devices and extended attributes, via tar."""
    pack = subprocess.Popen(
        ["tar", "-C", str(source), "--numeric-owner", "--xattrs", "--acls", "-cf", "-", "."], stdout=subprocess.PIPE
    )
    unpack = subprocess.run(
        ["tar", "-C", str(rootfs), "--numeric-owner", "--xattrs", "--xattrs-include=*", "--acls", "-xpf", "-"],
        stdin=pack.stdout,
        capture_output=True,
        text=True,
    )
    pack.stdout.close()
    if pack.wait() != 0 or unpack.returncode != 0:
        raise EngineError(f"Copying {source} failed: {unpack.stderr.strip()[-300:]}")


def _extract(archive: Path, rootfs: Path) -> None:
    # GNU tar strips leading '/' and refuses members with '..', so nothing lands outside rootfs.
    result = subprocess.run(
        ["tar", "-C", str(rootfs), "--numeric-owner", "--xattrs", "--xattrs-include=*", "--acls", "-xpf", str(archive)],
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        raise EngineError(f"Extracting {archive} failed: {result.stderr.strip()[-300:]}")


def _fill_busybox(rootfs: Path) -> None:
    for d in (
        "bin",
        "sbin",
        "usr/bin",
        "usr/sbin",
        "etc/init.d",
        "etc/rc.d",
        "proc",
        "sys",
        "dev",
        "run",
        "var/log",
        "var/run",
        "root",
        "home",
    ):
        (rootfs / d).mkdir(parents=True, exist_ok=True)
    for d, mode in (("tmp", 0o1777), ("root", 0o700)):
        (rootfs / d).mkdir(exist_ok=True)
        os.chmod(rootfs / d, mode)
    shutil.copy2(BUSYBOX, rootfs / "bin/busybox")
    applets = subprocess.run([BUSYBOX, "--list-full"], capture_output=True, text=True, check=True).stdout.split()
    for applet in applets:
        link = rootfs / applet
        if applet != "bin/busybox" and not link.exists():
            link.parent.mkdir(parents=True, exist_ok=True)
            os.symlink("/bin/busybox", link)
    files = {
        "etc/inittab": (BUSYBOX_INITTAB, 0o644),
        "etc/init.d/rcS": (BUSYBOX_RCS, 0o755),
        "etc/init.d/rcK": (BUSYBOX_RCK, 0o755),
        "etc/passwd": ("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n", 0o644),
        "etc/group": ("root:x:0:\ntty:x:5:\nnogroup:x:65534:\n", 0o644),
        "etc/shadow": ("root:*:19000:0:99999:7:::\nnobody:*:19000:0:99999:7:::\n", 0o640),
        "etc/hostname": ("localhost\n", 0o644),
        "etc/hosts": ("127.0.0.1\tlocalhost\n::1\tlocalhost\n", 0o644),
        "etc/profile": (
            "export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\nexport PS1='\\h:\\w\\$ '\n",
            0o644,
        ),
    }
    banner = subprocess.run([BUSYBOX], capture_output=True, text=True).stdout.splitlines()[0]
    files["etc/busybox-version"] = (banner + "\n", 0o644)
    for path, (text, mode) in files.items():
        safefile.write_file(rootfs, path, text, mode=mode)


def _make_vps_ready(rootfs: Path) -> None:
    """What every VPS image needs and debootstrap leaves out; the init system itself is untouched."""
    if safefile.read_file(rootfs, "etc/hostname") is None:
        safefile.write_file(rootfs, "etc/hostname", "localhost\n")
    apt_cache = rootfs / "var/cache/apt/archives"
    for deb in apt_cache.glob("*.deb"):
        deb.unlink()
