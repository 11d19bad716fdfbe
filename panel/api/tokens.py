"""API tokens: made with a random secret shown once, kept as a SHA-256, found by their prefix."""

import hashlib
import hmac
import ipaddress
import secrets
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from panel import audit
from panel.models import ApiToken, ApiTokenScope

MARK = "vps"
# last_used_at is written at most this often: not a database write on every call.
TOUCH_EVERY = timedelta(minutes=1)


def digest(text: str) -> str:
    # The secret is 256 random bits: a plain hash is enough, no slow password hash needed.
    return hashlib.sha256(text.encode()).hexdigest()


def parse_networks(text: str) -> list:
    """One address or network per line; blank lines and # comments ignored."""
    networks = []
    for number, line in enumerate((text or "").splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        try:
            networks.append(ipaddress.ip_network(line, strict=False))
        except ValueError as exc:
            raise ValidationError(f"Line {number}: {line!r} is not an address or network ({exc}).") from exc
    return networks


def issue(*, name: str, user, scope: str, allowed_networks: str = "", created_by) -> tuple[ApiToken, str]:
    """A new token for `user`; returns it and its text, which is never stored and cannot be shown again."""
    if scope not in ApiTokenScope.values:
        raise ValidationError(f"Unknown scope {scope!r}.")
    networks = parse_networks(allowed_networks)
    prefix = secrets.token_hex(6)
    text = f"{MARK}_{prefix}_{secrets.token_urlsafe(32)}"
    with transaction.atomic():
        token = ApiToken.objects.create(
            name=name.strip()[:100],
            user=user,
            scope=scope,
            allowed_networks="\n".join(map(str, networks)),
            prefix=prefix,
            key_hash=digest(text),
            created_by=created_by,
        )
        audit.record(created_by, "api_token.created", token, **{"scope": scope, "acts_as": user.get_username()})
    return token, text


def find(text: str) -> ApiToken | None:
    mark, _, rest = text.partition("_")
    prefix, _, secret = rest.partition("_")
    if mark != MARK or not prefix or not secret:
        return None
    token = ApiToken.objects.select_related("user").filter(prefix=prefix).first()
    if token is None or not hmac.compare_digest(token.key_hash, digest(text)):
        return None
    return token


def _ip(text: str):
    try:
        ip = ipaddress.ip_address(text.strip())
    except ValueError:
        return None
    return ip.ipv4_mapped or ip if ip.version == 6 else ip  # ::ffff:192.0.2.1 is 192.0.2.1


def client_address(request) -> str:
    """The caller's address: REMOTE_ADDR, unless that is one of TRUSTED_PROXIES, in which case the
    nearest address in X-Forwarded-For that is not a trusted proxy (proxies append what they saw)."""
    remote = _ip(request.META.get("REMOTE_ADDR", ""))
    trusted = [_ip(p) for p in settings.TRUSTED_PROXIES]
    if remote is None or remote not in trusted:
        return str(remote or "")
    for hop in reversed(request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")):
        ip = _ip(hop)
        if ip is None:
            return ""  # a garbled chain: match no network rather than guess
        if ip not in trusted:
            return str(ip)
    return str(remote)


def allows(token: ApiToken, address: str) -> bool:
    networks = parse_networks(token.allowed_networks)
    if not networks:
        return True
    ip = _ip(address)
    if ip is None:
        return False
    return any(ip in network for network in networks if network.version == ip.version)


def touch(token: ApiToken) -> None:
    now = timezone.now()
    if token.last_used_at is None or now - token.last_used_at > TOUCH_EVERY:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)


def revoke(token: ApiToken, actor) -> None:
    with transaction.atomic():
        if ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(revoked_at=timezone.now()):
            audit.record(actor, "api_token.revoked", token)
