"""Facts about host processes from /proc: alive or not, and which process a pid really is."""


def parse_stat(text: str) -> tuple[str, int]:
    """(state letter, start time in clock ticks) from the text of /proc/PID/stat."""
    # The command name is in parentheses and may contain spaces or parentheses itself.
    rest = text[text.rindex(")") + 2 :].split()
    return rest[0], int(rest[19])


def read_stat(pid: int) -> tuple[str, int] | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return parse_stat(f.read())
    except (FileNotFoundError, ProcessLookupError, ValueError):
        return None


def is_alive(pid: int, starttime: int | None = None) -> bool:
    """True if `pid` runs and, when given, started at `starttime` (so a reused pid is not mistaken
    for it). A zombie counts as gone: the host's init may reap an exited guest init late."""
    stat = read_stat(pid)
    if stat is None:
        return False
    state, started = stat
    return state not in ("Z", "X") and (starttime is None or started == starttime)
