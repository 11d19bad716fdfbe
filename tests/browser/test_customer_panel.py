"""A customer manages their VPS in a real browser, with a real host agent doing the work."""

import re

import pytest
from playwright.sync_api import expect

from tests.pipeline.test_pipeline import provision, succeeded

pytestmark = pytest.mark.django_db(transaction=True)


def test_customer_stops_starts_and_resets_the_password_live(page, live_server, hosts, artifacts):
    alice = provision(hosts, email="alice@example.com", hostname="www.alice.example")
    bob = provision(hosts, email="bob@example.com", hostname="www.bob.example")
    succeeded(alice.operation)
    succeeded(bob.operation)

    page.goto(f"{live_server.url}/login/")
    page.get_by_label("Email or username").fill("alice@example.com")
    page.get_by_label("Password").fill(alice.password)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="My servers")).to_be_visible()
    expect(page.get_by_role("row", name=re.compile("www.alice.example"))).to_contain_text("Running")
    expect(page.get_by_text("www.bob.example")).to_have_count(0)

    page.get_by_role("link", name="www.alice.example").click()
    state = page.locator("#server-state")
    expect(state).to_have_text("Running")
    page.get_by_role("button", name="Stop", exact=True).click()
    # No reload from here: htmx polls the live part until the host has stopped it.
    expect(state).to_have_text("Stopped", timeout=60_000)
    expect(page.get_by_role("button", name="Start", exact=True)).to_be_enabled()
    expect(page.get_by_role("button", name="Stop", exact=True)).to_be_disabled()
    page.get_by_role("button", name="Start", exact=True).click()
    expect(state).to_have_text("Running", timeout=60_000)

    page.get_by_role("button", name="Reset root password").click()
    password = page.locator("#new-password").inner_text()
    assert len(password) >= 16
    page.go_back()
    page.reload()
    assert password not in page.content(), "the password is shown once"
    # The host's reports (every second here) feed the graphs: the guest's memory is known.
    expect(page.get_by_role("img", name=re.compile(r"^Memory used: now"))).to_be_visible()
    expect(page.get_by_text(re.compile(r"GiB of \d+ GiB used"))).to_be_visible()
    page.get_by_role("link", name="Last day").click()  # htmx swaps the graphs alone
    expect(page.get_by_text("24 h ago").first).to_be_visible()
    expect(state).to_have_text("Running")
    page.screenshot(path=str(artifacts / "server-page.png"), full_page=True)
    page.set_viewport_size({"width": 390, "height": 844})  # a phone: one column, nothing cut off
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    page.screenshot(path=str(artifacts / "server-page-phone.png"), full_page=True)

    response = page.goto(f"{live_server.url}/servers/{bob.server.pk}/")
    assert response.status == 404
