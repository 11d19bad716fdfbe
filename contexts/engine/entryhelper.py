"""The program that enters a running guest: `python -S -E -s -m contexts.engine.entryhelper --control FD`.

`entry.run` execs it afresh for every `exec`, `enter` and host operation that runs a program inside
(halting a SysV guest), with an empty environment and no descriptor of the caller but three pipes
and a control socket: whatever the guest could ever observe of it holds nothing of the host.

The order, and why:
1. non-dumpable at once: a non-dumpable process can be traced or read through /proc only with
   CAP_SYS_PTRACE, which guests do not have;
2. the caller's request (marshal) from the control socket; the init it names is checked by its
   start time, so a recycled pid never sends us into another process's namespaces;
3. the guests' cgroup files are opened from the host's view, then every namespace of the guest is
   joined, the mount namespace last (the guest's cgroup namespace included, so everything entered
   sees its cgroups as the guest does);
4. a session keyring of its own, the guest's capability bounding set, the system call filter (it
   needs CAP_SYS_ADMIN, so before the capabilities go), then the guest's capability set;
5. only then a fork: the child is the first process of ours in the guest's PID namespace, already
   unprivileged, filtered and non-dumpable. It waits while we move it into the guest's cgroup in
   every hierarchy from out here: moving is never refused by pids.max (a guest at its process
   limit can still be entered, forking there would fail) and needs the host's cgroup view;
6. the child gets its stdio (the pipes, or a pseudo-terminal it opens inside the guest's own devpts,
   whose master goes back to the caller), a new session, no other descriptor, and execs.
We stay outside the PID namespace, forward signals to the child and exit with its status.
"""

import fcntl
import marshal
import os
import resource
import signal
import socket
import sys
import termios

# Everything is imported before the guest's mount namespace is joined: after that the host's files,
# this package included, are out of reach.
from . import capabilities, libc, seccomp
from .guestproc import become_guest_process
from .namespaces import wait_status
from .procinfo import parse_stat
from .terminal import login_shell

NAMESPACES = ("cgroup", "ipc", "uts", "net", "pid", "mnt")  # mnt last: it takes the host's /proc away
FORWARDED_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT)


def _receive(control: socket.socket) -> dict:
    chunks = []
    while chunk := control.recv(65536):
        chunks.append(chunk)
    return marshal.loads(b"".join(chunks))


def _open_guest(pid: int, starttime: int) -> list[int]:
    """Descriptors of the namespaces of init `pid`, refused unless it is still that init."""
    proc = os.open(f"/proc/{pid}", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        fds = [os.open(f"ns/{ns}", os.O_RDONLY | os.O_CLOEXEC, dir_fd=proc) for ns in NAMESPACES]
        with open(os.open("stat", os.O_RDONLY | os.O_CLOEXEC, dir_fd=proc)) as f:
            state, started = parse_stat(f.read())
    finally:
        os.close(proc)
    if started != starttime or state in ("Z", "X"):
        raise RuntimeError("the guest's init has gone")
    return fds


def _child(request: dict, control: socket.socket, go: int) -> None:
    libc.prctl(libc.PR_SET_PDEATHSIG, signal.SIGKILL)  # the caller gave up (a timeout): so do we
    if os.read(go, 1) != b"1":  # not moved into the guest's cgroups: never run anything
        os._exit(126)
    os.close(go)
    os.setsid()
    os.chdir("/")
    mode = request["mode"]
    if mode == "pty":
        master, slave = os.openpty()  # /dev/ptmx of the guest's own devpts instance
        socket.send_fds(control, [b"pty"], [master])
        os.close(master)
        fcntl.ioctl(slave, termios.TIOCSCTTY, 0)
        for fd in (0, 1, 2):
            os.dup2(slave, fd)
        if slave > 2:
            os.close(slave)
    elif mode == "null":
        null = os.open("/dev/null", os.O_RDWR)  # the guest's
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        if null > 2:
            os.close(null)
    argv = request["argv"]
    if argv is None:  # a login shell, as root's entry in the guest's /etc/passwd says
        shell = login_shell()
        path, argv = shell, ["-" + os.path.basename(shell)]
    else:
        path = argv[0]
    become_guest_process(drop_capabilities=False)  # closes the control socket and anything else
    os.execvpe(path, argv, request["env"])


def _like_the_guests_init(pid: int) -> None:
    """Process attributes as the guest's own processes have them, not as our caller had them (an
    agent whose unit file made it unkillable by the OOM killer, or gave it a large umask)."""
    for name in dir(resource):
        if name.startswith("RLIMIT_"):
            number = getattr(resource, name)
            resource.setrlimit(number, resource.prlimit(pid, number))
    with open(f"/proc/{pid}/oom_score_adj") as source, open("/proc/self/oom_score_adj", "w") as target:
        target.write(source.read())
    os.umask(0o022)


def main(argv: list[str]) -> int:
    libc.prctl(libc.PR_SET_DUMPABLE, 0)
    control = socket.socket(fileno=int(argv[argv.index("--control") + 1]))
    request = _receive(control)
    ns_fds = _open_guest(request["pid"], request["starttime"])
    cgroup_fds = [os.open(path, os.O_WRONLY | os.O_CLOEXEC) for path in request["procs_files"]]
    _like_the_guests_init(request["pid"])
    dropped = capabilities.to_drop()  # from the host's /proc, before the guest's is ours
    # From here on nothing may be imported: after the guest's mount namespace is joined, an import
    # would load the guest's files into this privileged process.
    sys.path.clear()
    for fd in ns_fds:
        libc.setns(fd, 0)
        os.close(fd)
    libc.join_new_session_keyring()
    os.setgroups([])
    capabilities.drop_for_guest(dropped)
    if request["seccomp"]:
        seccomp.install(request["seccomp"])
    capabilities.become_guest_now()
    go_read, go_write = os.pipe()
    child = os.fork()
    if child == 0:
        try:
            os.close(go_write)
            for fd in cgroup_fds:
                os.close(fd)
            _child(request, control, go_read)
        except BaseException as exc:  # the child must never return into our code
            print(f"contexts: {exc}", file=sys.stderr, flush=True)
        os._exit(126)
    os.close(go_read)
    for fd in cgroup_fds:
        os.write(fd, str(child).encode())
        os.close(fd)
    os.write(go_write, b"1")
    os.close(go_write)
    control.close()
    for sig in FORWARDED_SIGNALS:
        signal.signal(sig, lambda number, _frame: _forward(child, number))
    return wait_status(child)


def _forward(child: int, number: int) -> None:
    try:
        os.kill(child, number)
    except ProcessLookupError:
        pass


if __name__ == "__main__":
    try:
        status = main(sys.argv[1:])
    except BaseException as exc:
        print(f"contexts: cannot enter the guest: {exc}", file=sys.stderr, flush=True)
        status = 126
    sys.stdout.flush()
    os._exit(status)
