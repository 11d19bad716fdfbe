"""Account files inside a guest: the root password in /etc/shadow and root's SSH keys.

Pure text edits plus safe writes (safefile: no guest symlink is followed). The panel sends only a
crypt hash, never the password, so the hash is checked to be one line of crypt's alphabet before it
can reach the shadow file.
"""

import os
import re
import stat
import time

from . import safefile
from .errors import InvalidSpec

# $6$ (SHA-512), $5$ (SHA-256), $y$ (yescrypt), $2b$ (bcrypt): what glibc's crypt and libxcrypt verify.
CRYPT_HASH = re.compile(r"^\$(?:6|5|y|2b)\$[./A-Za-z0-9$]{8,200}$")
SSH_KEY = re.compile(
    r"^(?:ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(?:256|384|521)|sk-ssh-ed25519@openssh\.com|"
    r"sk-ecdsa-sha2-nistp256@openssh\.com) [A-Za-z0-9+/]+={0,3}(?: [^\r\n]{0,200})?$"
)


def check_password_hash(value: str) -> str:
    if not isinstance(value, str) or not CRYPT_HASH.match(value):
        raise InvalidSpec("The root password must arrive as a crypt hash ($6$, $5$, $y$ or $2b$).")
    return value


def check_ssh_keys(keys) -> list[str]:
    if not isinstance(keys, (list, tuple)):
        raise InvalidSpec("SSH keys must be a list of public keys.")
    out = []
    for key in keys:
        key = key.strip() if isinstance(key, str) else key
        if not isinstance(key, str) or not SSH_KEY.match(key):
            raise InvalidSpec(f"Not an OpenSSH public key: {str(key)[:40]!r}.")
        out.append(key)
    return out


def with_root_password(shadow: str, password_hash: str) -> str:
    """The shadow file with root's password field replaced (a root line added if there is none)."""
    check_password_hash(password_hash)
    days = str(int(time.time() // 86400))  # last change today (0 would force a change at next login)
    lines = shadow.splitlines()
    for i, line in enumerate(lines):
        fields = line.split(":")
        if fields[0] == "root" and len(fields) >= 2:
            fields[1] = password_hash
            if len(fields) >= 3:
                fields[2] = days
            lines[i] = ":".join(fields)
            break
    else:
        lines.insert(0, f"root:{password_hash}:{days}:0:99999:7:::")
    return "\n".join(lines) + "\n"


def _owner_and_mode(root, relpath: str, default_mode: int) -> tuple[int, int, int]:
    """(uid, gid, mode) of an existing guest file, for keeping them when it is replaced."""
    parts = [p for p in relpath.split("/") if p]
    try:
        dir_fd = safefile.open_dir(root, parts[:-1], create=False)
    except (FileNotFoundError, safefile.UnsafePath):
        return 0, 0, default_mode
    try:
        st = os.stat(parts[-1], dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return 0, 0, default_mode
    finally:
        os.close(dir_fd)
    if not stat.S_ISREG(st.st_mode):
        return 0, 0, default_mode
    return st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)


def set_root_password(root, password_hash: str) -> None:
    shadow = (safefile.read_file(root, "etc/shadow") or b"").decode("utf-8", "replace")
    uid, gid, mode = _owner_and_mode(root, "etc/shadow", 0o600)
    safefile.write_file(root, "etc/shadow", with_root_password(shadow, password_hash), mode=mode, uid=uid, gid=gid)


def set_root_ssh_keys(root, keys: list[str]) -> None:
    keys = check_ssh_keys(keys)
    safefile.write_file(root, "root/.ssh/authorized_keys", "".join(k + "\n" for k in keys), mode=0o600)
    # safefile creates missing directories 0755; sshd wants ~/.ssh private. The fd was opened without
    # following symlinks, so chmod through /proc/self/fd reaches that very directory (O_PATH has no fchmod).
    fd = safefile.open_dir(root, ["root", ".ssh"], create=False)
    try:
        os.chmod(f"/proc/self/fd/{fd}", 0o700)
    finally:
        os.close(fd)
