"""Signing in: throttling against guessing, two-factor with TOTP, password change and reset."""

import re

import pytest
from django.core import mail
from django.urls import reverse
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from panel.models import AuditEvent

PASSWORD = "correct-horse-battery"


def log_in(client, username, password=PASSWORD):
    return client.post(reverse("login"), {"username": username, "password": password})


def code(device, ahead: int = 0) -> str:
    """The device's code now, or `ahead` time steps later (a code once used is never taken again)."""
    t0 = device.t0 - ahead * device.step
    return f"{totp(device.bin_key, step=device.step, t0=t0, digits=device.digits):06d}"


def test_guessing_locks_the_login_out_even_for_the_right_password(client, world, settings):
    settings.AXES_FAILURE_LIMIT = 3
    for _ in range(3):
        assert log_in(client, "admin", "wrong-guess").status_code in (200, 429)
    locked = log_in(client, "admin")
    assert locked.status_code == 429 and "Too many attempts" in locked.content.decode()
    assert "_auth_user_id" not in client.session


def test_a_right_password_resets_the_count(client, world, settings):
    settings.AXES_FAILURE_LIMIT = 3
    log_in(client, "admin", "wrong-guess")
    log_in(client, "admin", "wrong-guess")
    assert log_in(client, "admin").status_code == 302
    client.post(reverse("logout"))
    log_in(client, "admin", "wrong-guess")
    assert log_in(client, "admin").status_code == 302


def test_staff_must_enrol_when_required_and_then_give_a_code_at_each_sign_in(client, world, settings):
    settings.STAFF_REQUIRE_2FA = True
    assert log_in(client, "admin").status_code == 302
    response = client.get(reverse("dashboard"))
    assert response.status_code == 302 and response["Location"] == reverse("twofactor-setup")
    page = client.get(reverse("twofactor-setup")).content.decode()
    assert "<svg" in page
    device = TOTPDevice.objects.get(user=world.staff, confirmed=False)
    assert client.post(reverse("twofactor-setup"), {"token": "000000"}).status_code == 200  # wrong: stays
    assert not client.post(reverse("twofactor-setup"), {"token": code(device)}).status_code == 302, "throttled"
    device.refresh_from_db()
    device.throttle_reset()  # as if the throttle's delay had passed
    assert client.post(reverse("twofactor-setup"), {"token": code(device)}).status_code == 302
    assert client.get(reverse("dashboard")).status_code == 200
    assert AuditEvent.objects.filter(action="login.2fa_enabled").exists()

    client.post(reverse("logout"))
    log_in(client, "admin")
    response = client.get(reverse("dashboard"))
    assert response.status_code == 302 and response["Location"].startswith(reverse("login-verify"))
    assert client.post(reverse("login-verify"), {"token": "123456", "next": "/staff/"}).status_code == 200
    device.refresh_from_db()
    device.throttle_reset()
    assert client.post(reverse("login-verify"), {"token": code(device), "next": "/staff/"}).status_code == 200, (
        "the code used at enrolment is not taken twice"
    )
    device.refresh_from_db()
    device.throttle_reset()
    response = client.post(reverse("login-verify"), {"token": code(device, ahead=1), "next": "/staff/"})
    assert response.status_code == 302 and response["Location"] == "/staff/"
    assert client.get(reverse("dashboard")).status_code == 200


def test_staff_cannot_turn_required_two_factor_off(client, world, settings):
    settings.STAFF_REQUIRE_2FA = True
    device = TOTPDevice.objects.create(user=world.staff, name="app", confirmed=True)
    log_in(client, "admin")
    client.post(reverse("login-verify"), {"token": code(device)})
    client.post(reverse("account"), {"disable_2fa": "1"})
    assert TOTPDevice.objects.filter(user=world.staff).exists()


def test_a_device_added_while_signed_in_is_asked_for_at_once(client, customer_login):
    """Whether a user has a device is cached (every page asks); adding or removing one clears it."""
    _, login = customer_login()
    log_in(client, login.username)
    assert client.get(reverse("server-list")).status_code == 200
    assert client.get(reverse("server-list")).status_code == 200  # from the cache now
    device = TOTPDevice.objects.create(user=login, name="app", confirmed=True)
    response = client.get(reverse("server-list"))
    assert response.status_code == 302 and response["Location"].startswith(reverse("login-verify"))
    device.delete()
    assert client.get(reverse("server-list")).status_code == 200


def test_password_change_and_reset_by_email(client, world, customer_login):
    _, login = customer_login("Carol")
    assert log_in(client, login.username).status_code == 302
    response = client.post(
        reverse("password_change"),
        {"old_password": PASSWORD, "new_password1": "a-new-Secret-42", "new_password2": "a-new-Secret-42"},
    )
    assert response.status_code == 302
    client.post(reverse("logout"))
    assert log_in(client, login.username, "a-new-Secret-42").status_code == 302
    client.post(reverse("logout"))

    client.post(reverse("password_reset"), {"email": login.email})
    assert len(mail.outbox) == 1
    link = re.search(r"http://testserver(/password-reset/\S+/)", mail.outbox[0].body).group(1)
    form = client.get(link, follow=True)
    assert form.status_code == 200 and "Set a new password" in form.content.decode()
    done = client.post(
        form.redirect_chain[-1][0], {"new_password1": "another-Secret-77", "new_password2": "another-Secret-77"}
    )
    assert done.status_code == 302
    assert log_in(client, login.username, "another-Secret-77").status_code == 302


@pytest.mark.parametrize("name", ["account", "twofactor-setup", "login-verify", "password_change"])
def test_account_pages_need_a_login(client, name):
    response = client.get(reverse(name))
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))
