"""The host CLI over the engine. Plain Python: it runs on hosts that have no panel installed.

Errors are one line on stderr and exit status 1; usage errors exit 2. `--json` output is documented
in the README (engine section) and only ever gains keys.
"""

import argparse
import errno
import json
import os
import shlex
import signal
import sys

from .engine import check as host_check
from .engine import disk as diskimage
from .engine import limits as resources
from .engine import operations
from .engine import unify as unification
from .engine.errors import EngineError, InvalidSpec
from .engine.lifecycle import Lifecycle
from .engine.spec import OperationSpec
from .engine.state import StateDir, state_dir_from
from .engine.templates import Templates


def _add_limit_options(p) -> None:
    g = p.add_argument_group("resource limits")
    g.add_argument("--cpus", type=float, help="hard CPU cap in cores: 0.5 is half of one core")
    g.add_argument("--cpu-weight", type=int, help="share under contention, 1-10000 (100 is normal)")
    g.add_argument("--cpuset", help="pin to these CPUs, e.g. 0-1 (default: as many as --cpus, rounded up)")
    g.add_argument("--memory", help="memory limit, e.g. 512M")
    g.add_argument("--memory-high", help="soft mark above which the guest is reclaimed hard, e.g. 448M")
    g.add_argument("--swap", help="swap the guest may use on top of --memory, e.g. 256M or 0")
    g.add_argument("--pids", type=int, help="most processes and threads at once")
    g.add_argument("--io-weight", type=int, help="block IO share, 1-10000")
    g.add_argument("--io-read-bps", help="read cap on the state directory's disk, e.g. 50M (bytes/s)")
    g.add_argument("--io-write-bps", help="write cap, e.g. 20M (bytes/s)")
    g.add_argument("--io-read-iops", type=int, help="read operations per second")
    g.add_argument("--io-write-iops", type=int, help="write operations per second")
    g.add_argument("--rate", type=int, metavar="MBIT", help="network rate in Mbit/s, each direction")


def _limits_from(args) -> dict:
    def size(value):
        return resources.parse_bytes(value) if value is not None else None

    return {
        "cpus": args.cpus,
        "cpu_weight": args.cpu_weight,
        "cpuset": args.cpuset,
        "memory_bytes": size(args.memory),
        "memory_high_bytes": size(args.memory_high),
        "swap_bytes": size(args.swap),
        "pids": args.pids,
        "io_weight": args.io_weight,
        "io_read_bps": size(args.io_read_bps),
        "io_write_bps": size(args.io_write_bps),
        "io_read_iops": args.io_read_iops,
        "io_write_iops": args.io_write_iops,
        "rate_mbit": args.rate,
    }


def _print_usage(u: dict) -> None:
    if u["state"] != "running":
        print(f"{u['name']} is stopped: nothing in use.")
        return
    mib = lambda n: f"{n / 2**20:.1f} MiB" if n is not None else "-"  # noqa: E731
    print(f"cpu:        {u['cpu_seconds']:.2f} s")
    print(f"memory:     {mib(u['memory_bytes'])} now, {mib(u['memory_peak_bytes'])} peak, {u['oom_kills']} OOM kills")
    print(f"processes:  {u['processes']}")
    print(f"disk IO:    {mib(u['io_read_bytes'])} read, {mib(u['io_write_bytes'])} written")
    print(f"network:    {mib(u['net_out_bytes'])} sent, {mib(u['net_in_bytes'])} received (all runs)")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m contexts", description="Security contexts on this host.")
    parser.add_argument(
        "--state-dir", help="where templates and contexts live (env CONTEXTS_STATE_DIR, default /var/lib/contexts)"
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("check", help="what this host supports, what is missing and how to fix it")
    p.add_argument("--json", action="store_true")
    p.add_argument(
        "--broker",
        metavar="URL",
        help='also check the host agent\'s broker, e.g. --broker "$REDIS_URL": a password, whether it answers '
        "without one (one PING, nothing else), and whether guests could route to it",
    )

    template = sub.add_parser("template", help="import, build and list templates")
    tsub = template.add_subparsers(dest="template_command", required=True, metavar="ACTION")
    p = tsub.add_parser("import", help="a directory or a .tar/.tar.gz/.tar.xz of a root file system")
    p.add_argument("name")
    p.add_argument("source")
    p = tsub.add_parser("build", help="build a template")
    p.add_argument("name")
    how = p.add_mutually_exclusive_group(required=True)
    how.add_argument("--busybox", action="store_true", help="a tiny root fs from Debian's busybox-static")
    how.add_argument("--debootstrap", metavar="SUITE", help="a Debian root fs, e.g. bookworm")
    p.add_argument("--mirror", help="Debian mirror URL for --debootstrap")
    p.add_argument("--include", default="", help="extra packages for --debootstrap, comma-separated")
    p = tsub.add_parser("list", help="the templates on this host")
    p.add_argument("--json", action="store_true")
    p = tsub.add_parser("remove", help="delete a template (contexts built from it keep working)")
    p.add_argument("name")

    p = sub.add_parser("build", help="create a context from a template")
    p.add_argument("name")
    p.add_argument("--template", required=True)
    p.add_argument("--hostname")
    p.add_argument("--init", help='the program to run as PID 1, e.g. "/bin/sleep 1000" (default /sbin/init)')
    p.add_argument("--address", action="append", default=[], metavar="CIDR")
    p.add_argument("--context-id", type=int, help="default: the lowest free id in 2..49151")
    p.add_argument("--disk", help="limit of the guest's private files, e.g. 10G (default: no limit)")
    p.add_argument("--inodes", type=int, help="number of files the guest may have (with --disk)")
    p.add_argument(
        "--host-port",
        action="append",
        default=[],
        metavar="PROTO/PORT",
        help="a port of this host the guest may reach, e.g. tcp/53 (repeatable; default: none, the safe choice)",
    )
    _add_limit_options(p)

    p = sub.add_parser("limits", help="change a context's limits while it runs")
    p.add_argument("name")
    p.add_argument("--disk", help="new disk limit, e.g. 20G (lowering needs the context stopped)")
    p.add_argument("--json", action="store_true")
    _add_limit_options(p)

    p = sub.add_parser("address", help="add or remove an address while the context runs")
    p.add_argument("name")
    p.add_argument("action", choices=("add", "remove"))
    p.add_argument("address", metavar="CIDR")
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("host-ports", help="set the ports of this host the guest may reach, live")
    p.add_argument("name")
    p.add_argument("ports", nargs="*", metavar="PROTO/PORT", help="the whole new list, e.g. tcp/53 udp/53")
    p.add_argument("--none", action="store_true", help="no host port at all (the default)")
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("usage", help="CPU seconds, memory, processes, IO, OOM kills, network bytes")
    p.add_argument("name")
    p.add_argument("--json", action="store_true")

    sub.add_parser("report", help="capacity, templates and every context with its usage, as JSON (for the agent)")
    sub.add_parser(
        "run-operation",
        help="carry out an operation spec read as JSON on stdin; progress and outcome as JSON lines (for the agent)",
    )

    p = sub.add_parser("unify", help="share identical files among templates and stopped contexts")
    p.add_argument("names", nargs="*", metavar="NAME", help="default: every context")
    p.add_argument(
        "--exclude",
        action="append",
        default=[],
        metavar="PATH",
        help="also leave PATH alone (repeatable), in addition to the defaults",
    )
    p.add_argument(
        "--no-default-excludes", action="store_true", help="do not leave /etc, /var, /home, /root, /tmp, ... alone"
    )
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("df", help="disk shared and private per context, and the saving")
    p.add_argument("--json", action="store_true")

    for name, text in (("start", "start a context"), ("restart", "stop, then start"), ("destroy", "stop and remove")):
        p = sub.add_parser(name, help=text)
        p.add_argument("name")
        if name != "start":
            p.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for init to halt")
    p = sub.add_parser("stop", help="ask init to halt, then kill what is left after --timeout")
    p.add_argument("name")
    p.add_argument("--timeout", type=float, default=30.0)

    p = sub.add_parser("status", help="state, context id, init pid, addresses, limits")
    p.add_argument("name")
    p.add_argument("--json", action="store_true")
    p = sub.add_parser("list", help="every context on this host")
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("exec", help="run a command inside: exec NAME -- CMD [ARG...]")
    p.add_argument("name")
    p.add_argument("argv", nargs=argparse.REMAINDER)
    p = sub.add_parser("enter", help="an interactive login shell inside")
    p.add_argument("name")
    return parser


def _print_status(status: dict) -> None:
    rows = [
        ("name", status["name"]),
        ("state", status["state"]),
        ("context id", status["context_id"]),
        ("init pid", status["init_pid"] or "-"),
        ("hostname", status["hostname"]),
        ("template", status["template"]),
        ("init", shlex.join(status["init"])),
        ("addresses", ", ".join(status["addresses"]) or "-"),
        ("host ports", ", ".join(status.get("host_ports") or []) or "-"),
        ("limits", ", ".join(f"{k}={v}" for k, v in (status.get("limits") or {}).items()) or "-"),
    ]
    if status.get("last_exit"):
        rows.append(("last exit", status["last_exit"]["reason"]))
    for key, value in rows:
        print(f"{key + ':':12} {value}")


def _mib(n: int) -> str:
    return f"{n / 2**20:10.1f} MiB"


def _print_df(report: dict) -> None:
    print(f"{'CONTEXT':24} {'SHARED':>14} {'PRIVATE':>14}")
    for row in report["contexts"]:
        print(f"{row['name']:24} {_mib(row['shared_bytes'])} {_mib(row['private_bytes'])}")
    print(
        f"templates {_mib(report['templates_bytes'])}; without sharing {_mib(report['apparent_bytes'])}, "
        f"on disk {_mib(report['actual_bytes'])}: saved {_mib(report['saved_bytes'])} ({report['saved_percent']}%)"
    )


def _emit(data, as_json: bool, text) -> None:
    if as_json:
        json.dump(data, sys.stdout, indent=2, sort_keys=True)
        print()
    else:
        text(data)


def run(args) -> int:
    if args.command == "check":
        report = host_check.run(broker_url=args.broker)
        _emit(report, args.json, host_check.print_report)
        return 0 if report["ok"] else 1

    state = StateDir(state_dir_from(args.state_dir))
    engine = Lifecycle(state)
    templates = Templates(state)

    if args.command == "template":
        if args.template_command == "list":
            _emit(
                templates.records(),
                args.json,
                lambda items: (
                    [
                        print(f"{t['name']:24} {t['init_style']:9} {t['size_bytes'] / 2**20:8.1f} MiB  {t['source']}")
                        for t in items
                    ]
                    or print("No templates.")
                ),
            )
            return 0
        if args.template_command == "remove":
            templates.remove(args.name)
            print(f"Template {args.name} removed.")
            return 0
        if args.template_command == "import":
            record = templates.import_(args.name, args.source)
        elif args.busybox:
            record = templates.build_busybox(args.name)
        else:
            include = [p.strip() for p in args.include.split(",") if p.strip()]
            record = templates.build_debootstrap(args.name, args.debootstrap, args.mirror, include)
        print(f"Template {record['name']} ready ({record['init_style']} init, {record['size_bytes'] / 2**20:.1f} MiB).")
        return 0

    if args.command == "build":
        init = shlex.split(args.init) if args.init else None
        disk = diskimage.parse_size(args.disk) if args.disk else None
        if args.inodes and not disk:
            raise InvalidSpec("--inodes needs --disk: the file count is limited in the guest's own file system.")
        config = engine.build(
            args.name,
            args.template,
            args.hostname,
            init,
            args.address,
            args.context_id,
            disk,
            args.inodes,
            _limits_from(args),
            host_ports=args.host_port,
        )
        print(
            f"Context {config['name']} built (context id {config['context_id']}); start it with: start {config['name']}"
        )
        return 0
    if args.command == "start":
        engine.start(args.name)
        print(f"{args.name} started.")
        return 0
    if args.command == "stop":
        if engine.stop(args.name, args.timeout):
            print(f"{args.name} stopped.")
        else:
            print(f"{args.name} was not running.", file=sys.stderr)
        return 0
    if args.command == "restart":
        engine.restart(args.name, args.timeout)
        print(f"{args.name} restarted.")
        return 0
    if args.command == "destroy":
        engine.destroy(args.name, args.timeout)
        print(f"{args.name} destroyed.")
        return 0
    if args.command == "status":
        _emit(engine.status(args.name), args.json, _print_status)
        return 0
    if args.command == "list":
        _emit(
            engine.statuses(),
            args.json,
            lambda items: (
                [print(f"{s['name']:24} {s['state']:9} {s['context_id']:>6}  {s['hostname']}") for s in items]
                or print("No contexts.")
            ),
        )
        return 0
    if args.command == "limits":
        changes = {k: v for k, v in _limits_from(args).items() if v is not None}
        if args.disk is None and not changes:
            raise InvalidSpec("Give a limit to change, e.g. --cpus 1 or --memory 1G.")
        status = engine.status(args.name)
        if changes:
            status = engine.set_limits(args.name, changes)
        if args.disk is not None:
            status = engine.set_disk_limit(args.name, diskimage.parse_size(args.disk))
        _emit(status, args.json, _print_status)
        return 0
    if args.command == "address":
        _emit(engine.change_address(args.name, args.address, args.action == "add"), args.json, _print_status)
        return 0
    if args.command == "host-ports":
        if bool(args.ports) == args.none:  # an empty list must be asked for, never implied by a typo
            raise InvalidSpec("Give the whole new list, e.g. host-ports NAME tcp/53 udp/53, or --none for none.")
        _emit(engine.set_host_ports(args.name, args.ports), args.json, _print_status)
        return 0
    if args.command == "usage":
        _emit(engine.usage(args.name), args.json, _print_usage)
        return 0
    if args.command == "run-operation":
        return _run_operation(engine)
    if args.command == "report":
        print(json.dumps(operations.host_report(engine)))
        return 0
    if args.command == "unify":
        excludes = (() if args.no_default_excludes else unification.DEFAULT_EXCLUDES) + tuple(
            e.strip("/") for e in args.exclude
        )
        report = engine.unify(args.names, excludes)
        _emit(
            report,
            args.json,
            lambda r: print(
                f"Linked {r['files_linked']} files ({r['moved_from_private']} moved out of private layers), "
                f"reclaimed {r['bytes_reclaimed'] / 2**20:.1f} MiB."
                + (f" Skipped running: {', '.join(r['skipped_running'])}." if r["skipped_running"] else "")
            ),
        )
        return 0
    if args.command == "df":
        _emit(engine.disk_report(), args.json, _print_df)
        return 0
    if args.command == "exec":
        argv = args.argv[1:] if args.argv[:1] == ["--"] else args.argv
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is for the command inside
        return engine.run_inside(args.name, argv)
    if args.command == "enter":
        return engine.enter(args.name)
    raise AssertionError(args.command)


def _run_operation(engine) -> int:
    """One JSON line per progress step, then the outcome line; engine errors are outcomes, not failures."""

    def say(line: dict) -> None:
        sys.stdout.write(json.dumps(line) + "\n")
        sys.stdout.flush()

    try:
        spec = OperationSpec.from_dict(json.loads(sys.stdin.read()))
        facts = operations.run(engine, spec, lambda percent, step: say({"progress": percent, "step": step}))
        say({"ok": True, "facts": facts})
    except (EngineError, ValueError) as exc:
        say({"ok": False, "error": str(exc)})
    except Exception as exc:
        if not _busy(exc):
            raise
        # The host was busy (a lock, a netlink socket): worth another try, and the agent retries it.
        say({"ok": False, "transient": True, "error": str(exc)})
    return 0


def _busy(exc: BaseException | None) -> bool:
    """EAGAIN anywhere in the chain, as an OSError or as pyroute2's NetlinkError (its `code`)."""
    while exc is not None:
        if getattr(exc, "errno", None) == errno.EAGAIN or getattr(exc, "code", None) == errno.EAGAIN:
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    if (
        os.geteuid() != 0
        and args.command not in ("check", "status", "list")
        and not (args.command == "template" and args.template_command == "list")
    ):
        print("contexts: error: this command needs root.", file=sys.stderr)
        return 1
    try:
        return run(args)
    except EngineError as exc:
        print(f"contexts: error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"contexts: error: {exc.strerror or exc}{f': {exc.filename}' if exc.filename else ''}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # netlink, subprocess and other library errors: still one line
        if os.environ.get("CONTEXTS_DEBUG"):
            raise
        print(f"contexts: error: {type(exc).__name__}: {exc} (CONTEXTS_DEBUG=1 shows where)", file=sys.stderr)
        return 1
