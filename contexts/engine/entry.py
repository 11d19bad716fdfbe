"""Running a program inside a running guest from the host: `exec`, `enter`, and host operations
that need a program of the guest's (halting a SysV guest).

What enters is `entryhelper`, exec'd afresh with an empty environment; this side keeps the caller's
terminal, descriptors and environment and relays bytes. The guest gets, as its stdio, one of:
- `pty`: a pseudo-terminal opened inside the guest (its own devpts), when our stdin and stdout are
  terminals: interactive programs work, and TIOCSTI from the guest only ever types into the guest's
  own terminal;
- `pipes`: three fresh pipes, relayed to and from ours: the guest never holds a host file, socket or
  terminal, which it could reopen through /proc/self/fd with guest root's permissions;
- `null`: the guest's own /dev/null, for host operations.
"""

import errno
import marshal
import os
import select
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from . import terminal

PROJECT_ROOT = str(Path(__file__).resolve().parents[2])  # where the `contexts` package lives
HELPER_ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
FORWARDED_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT)


def choose_mode(stdin: int = 0, stdout: int = 1) -> str:
    return "pty" if _isatty(stdin) and _isatty(stdout) else "pipes"


def _isatty(fd: int) -> bool:
    try:
        return os.isatty(fd)
    except OSError:
        return False


def run(
    init_pid: int,
    starttime: int,
    procs_files: list[str],
    argv: list[str] | None,
    env: dict[str, str],
    mode: str,
    seccomp_program: bytes | None,
    timeout: float | None = None,
) -> int | None:
    """Run `argv` (None: root's login shell) in the guest of `init_pid`; its exit status (128+N when
    killed by signal N), or None if it ran past `timeout` and was killed."""
    ours, theirs = socket.socketpair()
    with ours:
        helper = subprocess.Popen(
            [sys.executable, "-S", "-E", "-s", "-m", "contexts.engine.entryhelper", "--control", str(theirs.fileno())],
            stdin=subprocess.PIPE if mode == "pipes" else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            pass_fds=(theirs.fileno(),),
            cwd=PROJECT_ROOT,
            env=HELPER_ENV,
            start_new_session=True,  # our terminal's signals reach it only as we forward them
        )
        theirs.close()
        request = {
            "pid": init_pid,
            "starttime": starttime,
            "procs_files": procs_files,
            "argv": argv,
            "env": env,
            "mode": mode,
            "seccomp": seccomp_program,
        }
        ours.sendall(marshal.dumps(request))
        ours.shutdown(socket.SHUT_WR)
        deadline = None if timeout is None else time.monotonic() + timeout
        previous = _forward_signals(helper)
        try:
            if mode == "pty":
                _, fds, _, _ = socket.recv_fds(ours, 16, 1)
                if fds:
                    try:
                        terminal.relay(fds[0])
                    finally:
                        os.close(fds[0])
                _copy_all(helper.stdout.fileno(), 1)
                _copy_all(helper.stderr.fileno(), 2)
            else:
                stdin = helper.stdin.fileno() if helper.stdin else None
                if not _relay(helper, stdin, deadline):
                    helper.kill()  # the child dies with it (its parent-death signal)
                    helper.wait()
                    return None
            return _wait(helper, deadline)
        finally:
            _restore_signals(previous)
            for stream in (helper.stdin, helper.stdout, helper.stderr):
                if stream:
                    stream.close()


def _wait(helper: subprocess.Popen, deadline: float | None) -> int | None:
    try:
        status = helper.wait(None if deadline is None else max(0.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        helper.kill()
        helper.wait()
        return None
    return 128 - status if status < 0 else status


def _relay(helper: subprocess.Popen, to_guest: int | None, deadline: float | None) -> bool:
    """Copy our stdin to the guest and its stdout and stderr to ours until the program has ended
    (what it left running in the background may keep the pipes open: we do not wait for that).
    False if the deadline passed first."""
    outputs = {helper.stdout.fileno(): 1, helper.stderr.fileno(): 2}
    for fd in outputs:
        os.set_blocking(fd, False)
    source = 0 if to_guest is not None and _readable_fd(0) else None
    if source is None and to_guest is not None:
        helper.stdin.close()
        to_guest = None
    pending = b""
    while True:
        if helper.poll() is not None:
            for fd, target in outputs.items():
                _copy_available(fd, target)
            return True
        if deadline is not None and time.monotonic() > deadline:
            return False
        readers = list(outputs) + ([source] if source is not None and not pending else [])
        writers = [to_guest] if pending and to_guest is not None else []
        readable, writable, _ = select.select(readers, writers, [], 0.05)
        for fd in readable:
            if fd == source:
                data = _read(source)
                if data:
                    pending = data
                else:
                    source = None
                    helper.stdin.close()  # end of our input: the guest sees end of file
                    to_guest = None
            elif not _copy_available(fd, outputs[fd]):
                del outputs[fd]
        if writable:
            try:
                pending = pending[os.write(to_guest, pending) :]
            except BrokenPipeError:  # the program stopped reading its input
                pending, source, to_guest = b"", None, None
                helper.stdin.close()


def _readable_fd(fd: int) -> bool:
    try:
        os.fstat(fd)
        return True
    except OSError:
        return False


def _read(fd: int) -> bytes:
    try:
        return os.read(fd, 65536)
    except OSError:
        return b""


def _copy_available(source: int, target: int, most: int = 1 << 20) -> bool:
    """Copy what can be read now, at most `most` bytes (a background writer never keeps us here);
    False at end of file."""
    while most > 0:
        try:
            data = os.read(source, 65536)
        except BlockingIOError:
            return True
        if not data:
            return False
        _write_all(target, data)
        most -= len(data)
    return True


def _copy_all(source: int, target: int) -> None:
    while data := _read(source):
        _write_all(target, data)


def _write_all(fd: int, data: bytes) -> None:
    try:
        while data:
            data = data[os.write(fd, data) :]
    except BlockingIOError:
        select.select([], [fd], [])
        _write_all(fd, data)
    except OSError as exc:
        if exc.errno not in (errno.EPIPE, errno.EBADF):
            raise


def _forward_signals(helper: subprocess.Popen) -> dict:
    """Ctrl-C and friends go to the program inside (through the helper), not to us."""
    previous = {}
    try:
        for sig in FORWARDED_SIGNALS:
            previous[sig] = signal.signal(sig, lambda number, _frame: _send(helper, number))
    except ValueError:  # not the main thread: leave signals alone
        pass
    return previous


def _send(helper: subprocess.Popen, number: int) -> None:
    try:
        helper.send_signal(number)
    except ProcessLookupError:
        pass


def _restore_signals(previous: dict) -> None:
    for sig, handler in previous.items():
        signal.signal(sig, handler)
