"""`enter`: an interactive login shell on a terminal of the guest's own."""

import os
import pty
import subprocess
import sys

from tests.engine.conftest import ROOT, read_until


def test_enter_gives_a_login_shell_on_a_guest_terminal(engine, make_context):
    name = make_context(hostname="tty.example.com")
    master, slave = pty.openpty()
    env = os.environ | {
        "CONTEXTS_HOST_NETNS": engine.host_netns,
        "CONTEXTS_STATE_DIR": str(engine.state.root),
        "CONTEXTS_CGROUP_PARENT": engine.cgroup_parent,
        "TERM": "xterm",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "contexts", "enter", name],
        cwd=ROOT,
        env=env,
        stdin=slave,
        stdout=slave,
        stderr=slave,
        start_new_session=True,
    )
    os.close(slave)
    try:
        banner = read_until(master, lambda seen: b"# " in seen, 10)
        if b"\x1b[6n" in banner + read_until(master, lambda seen: b"\x1b[6n" in seen, 1):
            os.write(master, b"\x1b[24;1R")  # answer the line editor's cursor position query as a terminal would
        os.write(master, b"echo host=$(hostname) tty=$(tty) pid1=$(cat /proc/1/comm)\n")
        output = read_until(master, lambda seen: b"pid1=init" in seen, 10)
        assert b"host=tty.example.com" in output
        assert b"tty=/dev/pts/0" in output  # the guest's own devpts instance
        os.write(master, b"exit 3\n")
        assert process.wait(timeout=10) == 3
    finally:
        if process.poll() is None:
            process.kill()
        os.close(master)
