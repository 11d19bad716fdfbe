"""A guest's read-only lower tree: a hard-link clone of its template.

Directories are recreated with mode, owner, times and extended attributes, regular files are hard
links (no data copied), symlinks and FIFOs recreated: exactly what GNU `cp -a --link` does, so we
use it rather than write it again. The template's device nodes were checked when it was
published, so nothing of the host's devices can arrive this way.
"""

import os
import stat
import subprocess

from .errors import EngineError

# Device nodes a template may carry: the harmless ones every /dev has. Anything else (disks,
# memory, the kernel log) would hand the guest a host device.
ALLOWED_DEVICES = {
    (stat.S_IFCHR, 1, 3),
    (stat.S_IFCHR, 1, 5),
    (stat.S_IFCHR, 1, 7),
    (stat.S_IFCHR, 1, 8),
    (stat.S_IFCHR, 1, 9),
    (stat.S_IFCHR, 5, 0),
    (stat.S_IFCHR, 5, 1),
    (stat.S_IFCHR, 5, 2),
}


class InvalidTemplate(EngineError):
    pass


def forbidden_devices(rootfs) -> list[str]:
    """Device nodes in `rootfs` outside ALLOWED_DEVICES, as paths inside the tree."""
    found = []
    for dirpath, dirnames, filenames in os.walk(rootfs):
        for name in filenames + dirnames:
            path = os.path.join(dirpath, name)
            mode = os.lstat(path).st_mode
            if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
                rdev = os.lstat(path).st_rdev
                if (stat.S_IFMT(mode), os.major(rdev), os.minor(rdev)) not in ALLOWED_DEVICES:
                    found.append("/" + os.path.relpath(path, rootfs))
    return sorted(found)


def same_filesystem(a, b) -> bool:
    return os.stat(a).st_dev == os.stat(b).st_dev


def clone_tree(source, target) -> None:
    """Create `target` as a hard-link clone of `source`; both must be on one file system."""
    parent = os.path.dirname(os.path.abspath(target))
    if not same_filesystem(source, parent):
        raise EngineError(
            f"Cannot hard-link {source} into {parent}: they are on different file systems. "
            "Keep templates and contexts under one state directory on one file system."
        )
    result = subprocess.run(
        ["cp", "-a", "--link", "--no-target-directory", str(source), str(target)], capture_output=True, text=True
    )
    if result.returncode != 0:
        raise EngineError(f"Cloning {source} failed: {result.stderr.strip()[-300:]}")
