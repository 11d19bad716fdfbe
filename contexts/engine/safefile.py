"""Reading and writing files inside a guest's root without following the guest's symlinks.

A guest controls every name below its root: /etc may be a symlink to /, /etc/hostname a symlink to
/etc/shadow. Each path component is opened relative to the one before with O_NOFOLLOW, and files
are replaced by rename, which replaces a planted symlink instead of writing through it.
"""

import os
import stat

from .errors import EngineError


class UnsafePath(EngineError):
    pass


_DIR_FLAGS = os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def _parts(relpath: str) -> tuple[str, ...]:
    parts = tuple(p for p in relpath.split("/") if p)
    if not parts or any(p in ("..", ".") for p in parts):
        raise UnsafePath(f"Refusing guest path {relpath!r}.")
    return parts


def open_dir(root: str | os.PathLike, parts, create: bool) -> int:
    fd = os.open(root, _DIR_FLAGS)
    try:
        for part in parts:
            try:
                next_fd = os.open(part, _DIR_FLAGS, dir_fd=fd)
            except FileNotFoundError:
                if not create:
                    raise
                os.mkdir(part, 0o755, dir_fd=fd)
                next_fd = os.open(part, _DIR_FLAGS, dir_fd=fd)
            except NotADirectoryError as exc:
                raise UnsafePath(
                    f"Refusing to write below {'/'.join(parts)}: {part!r} is a symlink or a file."
                ) from exc
            os.close(fd)
            fd = next_fd
        return fd
    except BaseException:
        os.close(fd)
        raise


def write_file(root, relpath: str, data: bytes | str, mode: int = 0o644, uid: int = 0, gid: int = 0) -> None:
    """Atomically create or replace ROOT/RELPATH with `data`, creating missing directories."""
    parts = _parts(relpath)
    if isinstance(data, str):
        data = data.encode()
    dir_fd = open_dir(root, parts[:-1], create=True)
    tmp = f".{parts[-1]}.{os.urandom(6).hex()}"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, mode, dir_fd=dir_fd)
        try:
            os.write(fd, data)
            os.fchown(fd, uid, gid)
            os.fchmod(fd, mode)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.rename(tmp, parts[-1], src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    except BaseException:
        try:
            os.unlink(tmp, dir_fd=dir_fd)
        except FileNotFoundError:
            pass
        raise
    finally:
        os.close(dir_fd)


def read_file(root, relpath: str, limit: int = 1 << 20) -> bytes | None:
    """ROOT/RELPATH's contents, or None if it does not exist or is not a regular file."""
    parts = _parts(relpath)
    try:
        dir_fd = open_dir(root, parts[:-1], create=False)
    except (FileNotFoundError, UnsafePath):
        return None
    try:
        fd = os.open(parts[-1], os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=dir_fd)
    except OSError:
        return None
    finally:
        os.close(dir_fd)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        return os.read(fd, limit)
    finally:
        os.close(fd)
