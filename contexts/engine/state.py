"""The engine's records on disk: one directory per template and per context under the state directory.

Every record is JSON written to a temporary file and renamed into place, so a reader (a second CLI,
a restarted worker, the guest's supervisor) sees the old record or the new one, never half of one.
"""

import fcntl
import json
import os
import re
from contextlib import contextmanager
from pathlib import Path

from .errors import ContextNotFound, InvalidSpec, TemplateNotFound
from .spec import NAME_PATTERN, check_name

DEFAULT_STATE_DIR = "/var/lib/contexts"
# Overlay mount options are comma-separated and use ':' between lower layers: paths must have neither.
_SAFE_PATH = re.compile(r"^/[A-Za-z0-9._/+-]*$")


def state_dir_from(option: str | None) -> Path:
    # realpath: mount points in /proc are resolved paths, and the disk images are found by them.
    path = os.path.realpath(option or os.environ.get("CONTEXTS_STATE_DIR") or DEFAULT_STATE_DIR)
    if not _SAFE_PATH.match(path):
        raise InvalidSpec(f"State directory {path!r} may only contain letters, digits and . _ / + -")
    return Path(path)


def write_json(path: Path, data: dict) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w") as f:
        json.dump(data, f, indent=2, sort_keys=True)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def read_json(path: Path) -> dict | None:
    try:
        with open(path) as f:
            return json.load(f)
    except FileNotFoundError:
        return None


class StateDir:
    def __init__(self, root: Path):
        self.root = Path(root)
        self.templates = self.root / "templates"
        self.contexts = self.root / "contexts"

    def ensure(self) -> None:
        # Guests' private layers hold files their root made, setuid ones included: no host user but
        # root may reach them, so the state directory is closed even if it existed before.
        for d in (self.root, self.templates, self.contexts):
            d.mkdir(mode=0o700, parents=True, exist_ok=True)
            os.chmod(d, 0o700)

    # Templates

    def template_dir(self, name: str) -> Path:
        return self.templates / check_name(name, "template name")

    def template_rootfs(self, name: str) -> Path:
        return self.template_dir(name) / "rootfs"

    def template_record(self, name: str) -> dict:
        record = read_json(self.template_dir(name) / "template.json")
        if record is None:
            known = ", ".join(self.template_names()) or "none"
            raise TemplateNotFound(f"No template named {name!r} (templates here: {known}).")
        return record

    def template_names(self) -> list[str]:
        if not self.templates.is_dir():
            return []
        # Only real names: staging and doomed directories start with a dot.
        return sorted(
            p.name for p in self.templates.iterdir() if NAME_PATTERN.match(p.name) and (p / "template.json").exists()
        )

    # Contexts

    def context_dir(self, name: str) -> Path:
        return self.contexts / check_name(name)

    def context_names(self) -> list[str]:
        if not self.contexts.is_dir():
            return []
        return sorted(
            p.name for p in self.contexts.iterdir() if NAME_PATTERN.match(p.name) and (p / "config.json").exists()
        )

    def config(self, name: str) -> dict:
        config = read_json(self.context_dir(name) / "config.json")
        if config is None:
            raise ContextNotFound(f"No context named {name!r}.")
        return config

    def run_record(self, name: str) -> dict:
        return read_json(self.context_dir(name) / "run.json") or {}

    def write_run_record(self, name: str, record: dict) -> None:
        write_json(self.context_dir(name) / "run.json", record)

    @contextmanager
    def locked(self, name: str):
        """Serialise lifecycle changes of one context across processes (CLI, workers, supervisor)."""
        try:
            lock = _flocked(self.context_dir(name) / "lock")
            lock.__enter__()
        except FileNotFoundError:
            raise ContextNotFound(f"No context named {name!r}.") from None
        try:
            yield
        finally:
            lock.__exit__(None, None, None)

    def host_locked(self):
        """Serialise what must be unique on the host, such as context names and ids."""
        return _flocked(self.root / ".lock")


@contextmanager
def _flocked(path: Path):
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)
