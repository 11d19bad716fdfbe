"""A real browser: Playwright driving Debian's Chromium, headless, against a live server whose
operations are carried out by the pipeline's real host agents (the `hosts` fixture, tests/pipeline_world.py)."""

import shutil
from pathlib import Path

import pytest
from django.db import connections

from tests.conftest import require

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


@pytest.fixture
def browser(monkeypatch):
    """Chromium for one test: Playwright's sync API keeps an event loop running in this thread while
    it is open, which pyroute2 (in later tests) and Django's async-safety check must not see."""
    require(shutil.which(CHROMIUM) is not None, "needs Debian's chromium (apt-get install chromium)")
    # The ORM calls the test makes between browser steps are plain synchronous code all the same.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        yield browser
        browser.close()
        # Database connections opened while that loop ran are kept apart from the thread's own
        # (asgiref's Local); close them inside it, or the test database's teardown finds one open.
        connections.close_all()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    page = context.new_page()
    page.set_default_timeout(30_000)
    yield page
    context.close()


@pytest.fixture
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
