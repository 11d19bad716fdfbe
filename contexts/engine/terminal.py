"""A terminal of the guest's own, relayed to ours (`enter`, and `exec` from a terminal).

The pseudo-terminal is opened inside the guest (its own devpts instance, see entryhelper), so the
guest never holds a host descriptor; only the master side comes back to us, over a socket pair.
"""

import array
import fcntl
import os
import select
import signal
import sys
import termios
import tty

from . import safefile


def login_shell() -> str:
    """root's shell from the guest's /etc/passwd, read after joining its mount namespace."""
    passwd = safefile.read_file("/", "etc/passwd") or b""
    for line in passwd.decode(errors="replace").splitlines():
        fields = line.split(":")
        if len(fields) >= 7 and fields[0] == "root" and fields[6].startswith("/"):
            return fields[6]
    return "/bin/sh"


def copy_window_size(source_fd: int, target_fd: int) -> None:
    try:
        size = array.array("h", [0, 0, 0, 0])
        fcntl.ioctl(source_fd, termios.TIOCGWINSZ, size, True)
        fcntl.ioctl(target_fd, termios.TIOCSWINSZ, size)
    except OSError:
        pass


def relay(master: int, stdin: int = 0, stdout: int = 1) -> None:
    """Copy our terminal to the guest's and back until the guest side closes."""
    is_tty = os.isatty(stdin)
    saved = termios.tcgetattr(stdin) if is_tty else None
    if is_tty:
        tty.setraw(stdin, termios.TCSADRAIN)  # TCSAFLUSH would drop what was typed before we got here
        copy_window_size(stdin, master)
        signal.signal(signal.SIGWINCH, lambda *_: copy_window_size(stdin, master))
    try:
        sources = [master, stdin]
        while True:
            readable, _, _ = select.select(sources, [], [])
            if master in readable:
                try:
                    data = os.read(master, 65536)
                except OSError:  # EIO: the shell and everything on its terminal has gone
                    data = b""
                if not data:
                    return
                os.write(stdout, data)
            if stdin in readable:
                data = os.read(stdin, 65536)
                if not data:
                    sources.remove(stdin)  # end of our input: let the shell finish
                    os.write(master, b"\x04")
                    continue
                os.write(master, data)
    finally:
        if saved is not None:
            # TCSAFLUSH: answers our terminal gave to queries the guest printed last are dropped, not
            # left as typed input for the admin's shell.
            termios.tcsetattr(stdin, termios.TCSAFLUSH, saved)
            signal.signal(signal.SIGWINCH, signal.SIG_DFL)
        sys.stdout.flush()
