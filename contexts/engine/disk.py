"""Per-guest disk limits: the guest's private layer lives in an ext4 image of its own, loop-mounted
on the host, so the kernel itself answers ENOSPC at the limit and nothing else on the host fills up.

The image is mounted while the context exists (built, running or stopped) at DIR/private, and holds
`upper/` and `work/` for the overlay. Growing works live (resize2fs on the mounted file system);
shrinking needs the guest stopped and never goes below what it already uses.
"""

import glob
import os
import shutil
import subprocess
import time

from .errors import EngineError, InvalidSpec, InvalidState
from .limits import parse_bytes

IMAGE = "private.img"
MOUNT = "private"
MIN_BYTES = 16 * 2**20


def parse_size(text) -> int:
    """A disk limit in bytes from '64M', '10G' or a plain number of bytes."""
    size = parse_bytes(text)
    if size < MIN_BYTES:
        raise InvalidSpec(f"A disk limit below {MIN_BYTES // 2**20} MiB leaves no room for a guest.")
    return size


def _run(*command: str) -> str:
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise EngineError(f"{command[0]} failed: {(result.stderr or result.stdout).strip()[-300:]}")
    return result.stdout


def _mounted_source(mountpoint) -> str | None:
    """The device mounted on `mountpoint` (compared resolved, as /proc shows it), or None."""
    mountpoint = os.path.realpath(mountpoint)
    if not os.path.ismount(mountpoint):
        return None
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            if fields[4] == mountpoint:
                return fields[fields.index("-") + 2]
    return None


def layers(directory, limited: bool) -> tuple[str, str]:
    """(upper, work) of a context: inside its image when it has a disk limit."""
    base = os.path.join(directory, MOUNT) if limited else str(directory)
    return os.path.join(base, "upper"), os.path.join(base, "work")


def create(directory, size: int, inodes: int | None = None) -> None:
    """Make the image (sparse) with its file system, mount it and create the overlay's directories."""
    if not shutil.which("mkfs.ext4"):
        raise EngineError("mkfs.ext4 is missing: apt-get install e2fsprogs")
    image = os.path.join(directory, IMAGE)
    with open(image, "wb") as f:
        f.truncate(size)
    # No reserved blocks (the guest owns the whole limit); inode count from the plan when given.
    files = ["-N", str(inodes)] if inodes else ["-i", "16384"]
    _run("mkfs.ext4", "-q", "-F", "-m", "0", "-L", "context", *files, image)
    _fit(directory, size, running=False)
    for sub in ("upper", "work"):
        os.makedirs(os.path.join(directory, MOUNT, sub), mode=0o755, exist_ok=True)


def ensure_mounted(directory) -> None:
    mountpoint = os.path.join(directory, MOUNT)
    if _mounted_source(mountpoint):
        return
    os.makedirs(mountpoint, mode=0o700, exist_ok=True)
    _run("mount", "-o", "loop,nodev", "-t", "ext4", os.path.join(directory, IMAGE), mountpoint)


def device(directory) -> str | None:
    """MAJ:MIN of the loop device holding the guest's image while it is mounted: only this guest's
    IO passes through it, so IO caps on it limit exactly this guest."""
    source = _mounted_source(os.path.join(directory, MOUNT))
    if not source or not source.startswith("/dev/loop"):
        return None
    st = os.stat(source)
    return f"{os.major(st.st_rdev)}:{os.minor(st.st_rdev)}"


def unmount(directory) -> None:
    mountpoint = os.path.join(directory, MOUNT)
    if _mounted_source(mountpoint):
        # A running guest's overlay keeps the file system alive; the loop device is released
        # (autoclear) once that goes too.
        _run("umount", mountpoint)


def _used_and_size(mountpoint) -> tuple[int, int]:
    st = os.statvfs(mountpoint)
    return (st.f_blocks - st.f_bfree) * st.f_frsize, st.f_blocks * st.f_frsize


def usage(directory) -> tuple[int, int]:
    """(bytes used, bytes in all) of the guest's private file system."""
    ensure_mounted(directory)
    return _used_and_size(os.path.join(directory, MOUNT))


def used_if_mounted(directory) -> int | None:
    """Bytes used, read only while the image is mounted anyway: a reporter must never mount it (an
    offline resize may be running)."""
    mountpoint = os.path.join(directory, MOUNT)
    # Mounted or not is all it needs: no read of the host's whole mount table on every report.
    return _used_and_size(mountpoint)[0] if os.path.ismount(os.path.realpath(mountpoint)) else None


def capacity(directory) -> int:
    """What the guest can store in all: the file system's size less its own metadata."""
    return _used_and_size(os.path.join(directory, MOUNT))[1]


def _wait_released(image: str, timeout: float = 10.0) -> None:
    """Wait until no loop device holds `image` any more. A guest starting at the moment the image
    was mounted got a copy of that mount in its new namespace, which it drops right after pivot_root;
    until then the loop device stays attached and e2fsck would call the image mounted."""
    deadline = time.monotonic() + timeout
    target = os.path.realpath(image)
    while time.monotonic() < deadline:
        if not any(_backs(backing, target) for backing in glob.glob("/sys/block/loop*/loop/backing_file")):
            return
        time.sleep(0.05)
    raise EngineError(f"{image} is still in use by a loop device after unmounting; try again in a moment.")


def _backs(backing_file: str, target: str) -> bool:
    try:
        with open(backing_file) as f:
            return f.read().strip() == target
    except OSError:
        return False  # the loop device went away while we looked


def _resize_offline(image: str, image_size: int) -> None:
    check = subprocess.run(["e2fsck", "-f", "-p", image], capture_output=True, text=True)
    if check.returncode > 1:  # 1 means it fixed something and all is well
        raise EngineError(f"e2fsck found errors in {image}: {check.stdout.strip()[-300:]}")
    if image_size > os.path.getsize(image):
        with open(image, "r+b") as f:
            f.truncate(image_size)
    _run("resize2fs", image, f"{image_size // 1024}K")
    with open(image, "r+b") as f:
        f.truncate(image_size)


def _resize_online(directory, image_size: int) -> None:
    with open(os.path.join(directory, IMAGE), "r+b") as f:
        f.truncate(image_size)
    source = _mounted_source(os.path.join(directory, MOUNT))
    _run("losetup", "--set-capacity", source)
    result = subprocess.run(["resize2fs", source], capture_output=True, text=True)
    if result.returncode != 0:
        raise InvalidState(
            "The kernel refused to grow the mounted file system"
            + (" (this host's root lacks CAP_SYS_RESOURCE)" if "Permission denied" in result.stderr else "")
            + ": stop the context and set the limit again, which resizes it offline."
        )


def _fit(directory, size: int, running: bool) -> None:
    """Resize the image so the guest can store `size` bytes: the limit is what the guest gets, the
    journal and inode tables come on top."""
    image = os.path.join(directory, IMAGE)
    ensure_mounted(directory)
    for _ in range(4):
        missing = size - capacity(directory)
        if 0 <= -missing < 2**20 + 2**20 // 2 or (missing <= 0 and running):
            return
        image_size = os.path.getsize(image) + missing + 2**20
        if running:
            _resize_online(directory, image_size)
        else:
            unmount(directory)
            _wait_released(image)
            _resize_offline(image, image_size)
            ensure_mounted(directory)
    if capacity(directory) < size:
        raise EngineError(f"Could not give {directory} a capacity of {size} bytes.")


def resize(directory, size: int, running: bool) -> None:
    ensure_mounted(directory)
    current = capacity(directory)
    if abs(size - current) < 2**20:
        return
    if size > current:
        _fit(directory, size, running)
        return
    if running:
        raise InvalidState("Lowering a disk limit needs the context stopped; raising works while it runs.")
    used, _ = usage(directory)
    if size < used * 1.05 + MIN_BYTES // 4:
        raise InvalidSpec(f"The guest uses {used // 2**20} MiB: a limit of {size // 2**20} MiB would not hold it.")
    _fit(directory, size, running=False)
