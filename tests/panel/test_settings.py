"""Settings from the environment: production mode passes `check --deploy`; the Celery app is set up."""

import os
import secrets
import subprocess
import sys
from pathlib import Path

from django.conf import settings

from panel.celery import app

ROOT = Path(__file__).resolve().parents[2]


def manage(*args, **env):
    base = {k: v for k, v in os.environ.items() if k not in ("PANEL_MODE", "SECRET_KEY", "ALLOWED_HOSTS", "DEBUG")}
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=base | env, capture_output=True, text=True, timeout=120
    )


def test_production_mode_passes_the_deployment_check(tmp_path):
    result = manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        PANEL_MODE="production",
        SECRET_KEY=secrets.token_urlsafe(50),
        ALLOWED_HOSTS="panel.example.com",
        PANEL_DATA_DIR=str(tmp_path),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues (0 silenced)." in result.stdout


def test_development_mode_would_fail_the_deployment_check(tmp_path):
    """The check above can fail: the same command in development mode reports DEBUG and friends."""
    result = manage("check", "--deploy", "--fail-level", "WARNING", PANEL_DATA_DIR=str(tmp_path))
    assert result.returncode != 0
    assert "security.W018" in result.stderr  # DEBUG on


def test_production_mode_refuses_to_start_without_a_secret_key(tmp_path):
    result = manage("check", PANEL_MODE="production", ALLOWED_HOSTS="panel.example.com", PANEL_DATA_DIR=str(tmp_path))
    assert result.returncode != 0
    assert "SECRET_KEY must be set in production mode" in result.stderr


def test_development_secret_key_is_generated_once_and_kept(tmp_path):
    assert manage("check", PANEL_DATA_DIR=str(tmp_path)).returncode == 0
    key = (tmp_path / "secret_key").read_text()
    assert len(key) >= 50 and (tmp_path / "secret_key").stat().st_mode & 0o077 == 0
    manage("check", PANEL_DATA_DIR=str(tmp_path))
    assert (tmp_path / "secret_key").read_text() == key


def test_no_redis_means_a_broker_without_a_server(tmp_path):
    result = manage(
        "shell",
        "-c",
        "from django.conf import settings; print(settings.CELERY_BROKER_URL)",
        PANEL_DATA_DIR=str(tmp_path),
        REDIS_URL="",
    )
    assert result.stdout.strip().splitlines()[-1] == "filesystem://localhost/"
    assert (tmp_path / "broker" / "queue").is_dir()


def test_celery_is_configured_as_the_design_says():
    conf = app.conf
    assert conf.task_acks_late and conf.task_reject_on_worker_lost
    assert conf.worker_prefetch_multiplier == 1
    assert conf.accept_content == ["json"] and conf.task_serializer == "json"
    assert conf.task_default_queue == "panel"
    assert conf.broker_url == settings.CELERY_BROKER_URL
    assert "contexts.record_outcome" in app.tasks
