"""The one Celery app, configured from Django settings (the CELERY_* names)."""

import os
import sys

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "panel.settings")

app = Celery("panel")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


def worker_command(queue: str, node: str, concurrency: int = 2, loglevel: str = "INFO", *extra: str) -> list[str]:
    """The command line of a worker of this app consuming only `queue`, named `node` (name@host)."""
    return [
        sys.executable,
        "-m",
        "celery",
        "--app",
        "panel",
        "worker",
        "--queues",
        queue,
        "--hostname",
        node,
        "--concurrency",
        str(concurrency),
        "--loglevel",
        loglevel,
        "--without-gossip",
        "--without-mingle",
        *extra,
    ]
