"""Two-factor sign-in with TOTP (django-otp): enrolment, the second step after the password, and the
middleware that asks for it. Staff must enrol when STAFF_REQUIRE_2FA is on."""

import base64
import io

import qrcode
import qrcode.image.svg
from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.cache import cache
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver
from django.shortcuts import redirect, render, resolve_url
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django_otp import devices_for_user, user_has_device
from django_otp import login as otp_login
from django_otp.plugins.otp_totp.models import TOTPDevice

from . import audit, sessions

# Pages reachable before the second step: signing out, the step itself, enrolment, static files.
DEVICE_CACHE_SECONDS = 300
OPEN_PATHS = ("/logout/", "/login/verify/", "/account/2fa/setup/", "/static/")


class TokenForm(forms.Form):
    token = forms.CharField(
        label="Code from your authenticator app",
        max_length=8,
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric", "autofocus": True}),
    )

    def clean_token(self):
        token = self.cleaned_data["token"].replace(" ", "")
        if not token.isdigit():
            raise forms.ValidationError("Enter the 6 digits your app shows.")
        return token


def _device_key(user) -> str:
    # date_joined too: a user id can come back (a rolled-back test, a restored dump), a person cannot.
    return f"2fa-device:{user.pk}:{user.date_joined.timestamp():.0f}"


def has_confirmed_device(user) -> bool:
    """Whether the user must give a code: asked on every page, so cached, and cleared when a device changes."""
    key = _device_key(user)
    cached = sessions.MissOnOutage(cache)  # Redis down: ask the database
    found = cached.get(key)
    if found is None:
        found = user_has_device(user, confirmed=True)
        cached.set(key, found, DEVICE_CACHE_SECONDS)
    return found


@receiver([post_save, post_delete], sender=TOTPDevice)  # the one kind of device installed
def _forget_devices(sender, instance, **kwargs):
    if instance.user_id:
        # Not guarded: an entry that could not be cleared must not outlive the change unnoticed.
        cache.delete(_device_key(instance.user))


class TwoFactorMiddleware:
    """Signed in with a password only: users with a device are sent to the second step; staff without
    one, when it is required, to enrolment."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = request.user
        if user.is_authenticated and not request.path.startswith(OPEN_PATHS) and not user.is_verified():
            if has_confirmed_device(user):
                return redirect(f"{reverse('login-verify')}?next={request.get_full_path()}")
            if user.is_staff and settings.STAFF_REQUIRE_2FA:
                messages.info(request, "Staff accounts need two-factor sign-in: set it up to continue.")
                return redirect("twofactor-setup")
        return self.get_response(request)


def _next(request) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if url_has_allowed_host_and_scheme(target, {request.get_host()}, require_https=request.is_secure()):
        return target
    return resolve_url(settings.LOGIN_REDIRECT_URL)


@never_cache
@login_required
def verify(request):
    """The second step: a code from the user's authenticator app."""
    form = TokenForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        for device in devices_for_user(request.user, confirmed=True):
            if device.verify_token(form.cleaned_data["token"]):
                otp_login(request, device)
                return redirect(_next(request))
        form.add_error("token", "That code is not right, or has expired. Try the current one.")
    return render(request, "registration/verify.html", {"form": form, "next": _next(request)})


def _qr_svg(uri: str) -> str:
    image = qrcode.make(uri, image_factory=qrcode.image.svg.SvgPathImage, box_size=8)
    out = io.BytesIO()
    image.save(out)
    return out.getvalue().decode()


@never_cache
@login_required
def setup(request):
    """Enrol a TOTP device: scan the code, type the number it shows; only then is it used."""
    if user_has_device(request.user, confirmed=True):
        messages.info(request, "Two-factor sign-in is already on for your account.")
        return redirect("account")
    device = TOTPDevice.objects.filter(user=request.user, confirmed=False).first() or TOTPDevice.objects.create(
        user=request.user, name="Authenticator app", confirmed=False
    )
    form = TokenForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        if device.verify_token(form.cleaned_data["token"]):
            device.confirmed = True
            device.save(update_fields=["confirmed"])
            otp_login(request, device)
            audit.record(request.user, "login.2fa_enabled", request.user)
            messages.success(request, "Two-factor sign-in is on. You will be asked for a code at each sign-in.")
            return redirect("account")
        form.add_error("token", "That code does not match. Check the time on your phone and try the current one.")
    return render(
        request,
        "registration/twofactor_setup.html",
        {"form": form, "qr": _qr_svg(device.config_url), "secret": device_secret(device)},
    )


def device_secret(device) -> str:
    """The key in base32, grouped, for apps that cannot scan."""
    key = base64.b32encode(device.bin_key).decode().rstrip("=")
    return " ".join(key[i : i + 4] for i in range(0, len(key), 4))


@never_cache
@login_required
def account(request):
    if request.method == "POST" and request.POST.get("disable_2fa"):
        if request.user.is_staff and settings.STAFF_REQUIRE_2FA:
            messages.error(request, "Staff accounts must keep two-factor sign-in on.")
        else:
            TOTPDevice.objects.filter(user=request.user).delete()
            audit.record(request.user, "login.2fa_disabled", request.user)
            messages.success(request, "Two-factor sign-in is off.")
        return redirect("account")
    return render(request, "registration/account.html", {"has_2fa": user_has_device(request.user, confirmed=True)})
