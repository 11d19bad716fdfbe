"""Unification (like Linux-VServer's vhashify): identical files across read-only layers share one inode.

Read-only layers are the templates and the stopped guests' lower trees; a file that a stopped guest
has privately (in its upper layer) and that exists identically elsewhere first moves into that
guest's lower tree, where overlayfs shows it the same way, and is then shared. Writes inside any
guest still land in its private layer (copy-up), so sharing never lets one guest's write reach
another. Running guests are left alone: overlayfs forbids changing the layers under a mount.

Identical means same content (SHA-256), mode, owner and extended attributes. Right before a file is
replaced, both it and the copy it will share are checked unchanged since they were hashed (inode,
size, modification time, mode, owner), and the replacement is a rename of a fresh hard link, so a
reader never sees a missing file.
"""

import hashlib
import os
import stat
from dataclasses import dataclass, field

DEFAULT_EXCLUDES = ("etc", "var", "home", "root", "tmp", "run", "dev", "proc", "sys", "boot", "usr/local", "srv")
OVERLAY_XATTRS = ("trusted.overlay.opaque", "trusted.overlay.redirect", "trusted.overlay.metacopy")


@dataclass
class Candidate:
    path: str  # where the file is now
    target: str  # where it must end up (differs for a private file moving into its lower tree)
    st: os.stat_result
    device: int = 0  # the file system it ends up on: only files on one can share an inode

    def __post_init__(self):
        self.device = self.device or self.st.st_dev


@dataclass
class Report:
    files_linked: int = 0
    bytes_reclaimed: int = 0
    moved_from_private: int = 0
    skipped_running: list[str] = field(default_factory=list)
    changed_while_running: int = 0

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def excluded(rel: str, excludes) -> bool:
    return any(rel == e or rel.startswith(e + "/") for e in excludes)


def _xattrs(path: str) -> tuple:
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError:
        return ()
    return tuple(sorted((n, os.getxattr(path, n, follow_symlinks=False)) for n in names))


def _is_overlay_special(path: str) -> bool:
    st = os.lstat(path)
    if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
        return True  # a whiteout
    return any(name in OVERLAY_XATTRS for name in _listxattr(path))


def _listxattr(path: str) -> list[str]:
    try:
        return os.listxattr(path, follow_symlinks=False)
    except OSError:
        return []


def regular_files(root: str, excludes):
    """(relative path, stat) of every regular, non-empty file below root, outside the excludes."""
    for dirpath, dirnames, filenames in os.walk(root):
        rel_dir = os.path.relpath(dirpath, root)
        rel_dir = "" if rel_dir == "." else rel_dir
        dirnames[:] = [d for d in dirnames if not excluded(os.path.join(rel_dir, d), excludes)]
        for name in filenames:
            rel = os.path.join(rel_dir, name)
            if excluded(rel, excludes):
                continue
            st = os.lstat(os.path.join(dirpath, name))
            if stat.S_ISREG(st.st_mode) and st.st_size > 0:
                yield rel, st


def private_candidates(upper: str, lower: str, excludes):
    """Private files of a stopped guest that may move into its lower tree: not below an opaque or
    redirected directory (the lower tree is hidden there), and not where the lower has a directory."""
    lower_device = os.stat(lower).st_dev
    if os.stat(upper).st_dev != lower_device:
        return  # the private layer is in the guest's own disk image: its files cannot move into the lower tree
    for rel, st in regular_files(upper, excludes):
        parts = rel.split("/")
        ancestors = [os.path.join(upper, *parts[:i]) for i in range(1, len(parts))]
        if any(_is_overlay_special(a) for a in ancestors) or _is_overlay_special(os.path.join(upper, rel)):
            continue
        if os.path.isdir(os.path.join(lower, rel)) and not os.path.islink(os.path.join(lower, rel)):
            continue
        yield Candidate(os.path.join(upper, rel), os.path.join(lower, rel), st, lower_device)


def _digest(path: str) -> bytes:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").digest()


def _unchanged(path: str, st: os.stat_result) -> bool:
    """Same inode, content stamp, mode and owner as when it was hashed. (Not ctime: linking another
    name of the same inode changes that, and the bytes are compared again anyway.)"""
    try:
        now = os.lstat(path)
    except FileNotFoundError:
        return False
    fields = ("st_ino", "st_size", "st_mtime_ns", "st_mode", "st_uid", "st_gid")
    return all(getattr(now, f) == getattr(st, f) for f in fields)


def _make_parents(target: str, lower_root: str, upper_root: str) -> None:
    """Create the lower tree's missing directories for `target`, copying their metadata from upper."""
    rel_parent = os.path.relpath(os.path.dirname(target), lower_root)
    if rel_parent == ".":
        return
    path = lower_root
    for part in rel_parent.split("/"):
        path = os.path.join(path, part)
        if not os.path.lexists(path):
            source = os.path.join(upper_root, os.path.relpath(path, lower_root))
            st = os.lstat(source)
            os.mkdir(path, stat.S_IMODE(st.st_mode))
            os.chown(path, st.st_uid, st.st_gid)
            os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


def _replace_with_link(canonical: str, target: str) -> None:
    tmp = os.path.join(os.path.dirname(target), f".unify.{os.getpid()}.{os.path.basename(target)}")
    os.link(canonical, tmp)
    os.rename(tmp, target)


def unify(trees: list[str], private: list[tuple[str, str]], excludes=DEFAULT_EXCLUDES) -> Report:
    """Share identical files among the read-only `trees` and the (upper, lower) pairs of stopped guests.

    All paths must be on one file system (hard links cannot cross)."""
    report = Report()
    candidates: list[Candidate] = []
    for tree in trees:
        candidates += [
            Candidate(os.path.join(tree, rel), os.path.join(tree, rel), st) for rel, st in regular_files(tree, excludes)
        ]
    uppers = {}
    for upper, lower in private:
        for c in private_candidates(upper, lower, excludes):
            candidates.append(c)
            uppers[c.path] = (upper, lower)

    # Group cheaply by what must match anyway, then by extended attributes and content.
    by_shape: dict[tuple, list[Candidate]] = {}
    for c in candidates:
        key = (c.st.st_size, stat.S_IMODE(c.st.st_mode), c.st.st_uid, c.st.st_gid, c.device)
        by_shape.setdefault(key, []).append(c)
    digests: dict[tuple, bytes] = {}  # per inode: each is read once
    for group in by_shape.values():
        if len({(c.st.st_dev, c.st.st_ino) for c in group}) < 2 and not any(c.path in uppers for c in group):
            continue
        by_content: dict[tuple, list[Candidate]] = {}
        for c in group:
            inode = (c.st.st_dev, c.st.st_ino)
            if inode not in digests:
                digests[inode] = _digest(c.path)
            by_content.setdefault((_xattrs(c.path), digests[inode]), []).append(c)
        for same in by_content.values():
            if len(same) > 1:
                _share(same, uppers, report)
    return report


def _share(same: list[Candidate], uppers: dict, report: Report) -> None:
    # The canonical copy: one already in a read-only tree with the most links (templates first).
    readonly = [c for c in same if c.path not in uppers]
    canonical = max(readonly or same, key=lambda c: c.st.st_nlink)
    if canonical.path in uppers:  # every copy is private: the first moves into its lower tree
        upper, lower = uppers.pop(canonical.path)
        _make_parents(canonical.target, lower, upper)
        os.rename(canonical.path, canonical.target)
        report.moved_from_private += 1
        canonical = Candidate(canonical.target, canonical.target, os.lstat(canonical.target))
    links_replaced: dict[tuple, int] = {}
    for c in same:
        if c is canonical or (c.st.st_dev, c.st.st_ino) == (canonical.st.st_dev, canonical.st.st_ino):
            continue
        # Both were hashed in this run; unchanged since then means their contents are still equal.
        if not (_unchanged(c.path, c.st) and _unchanged(canonical.path, canonical.st)):
            report.changed_while_running += 1
            continue
        if c.path in uppers:
            upper, lower = uppers[c.path]
            _make_parents(c.target, lower, upper)
            _replace_with_link(canonical.path, c.target)
            os.unlink(c.path)
            report.moved_from_private += 1
        else:
            _replace_with_link(canonical.path, c.path)
        report.files_linked += 1
        canonical.st = os.lstat(canonical.path)  # linking changed its ctime and link count, nothing else
        inode = (c.st.st_dev, c.st.st_ino)
        links_replaced[inode] = links_replaced.get(inode, 0) + 1
        if links_replaced[inode] == c.st.st_nlink:  # its last name is gone: the space is free
            report.bytes_reclaimed += c.st.st_blocks * 512
