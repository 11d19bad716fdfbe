"""The Django project: settings, URLs, the Celery app, the site shell and the audit log."""

from .celery import app as celery_app

__all__ = ("celery_app",)
