"""Idempotency-Key: a client that retries a request after a timeout gets the first answer again
instead of a second server. Keys belong to a token and are kept IDEMPOTENCY_KEEP_HOURS."""

import datetime
import functools
import hashlib
import hmac
import json

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError, transaction
from django.utils import timezone
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from panel.models import IdempotencyRecord

from .errors import Conflict, Unprocessable

HEADER = "Idempotency-Key"
# Secrets appear in an answer once; a replay says where they went instead of keeping them.
SECRETS = {"password", "root_password"}
# Headers of the first answer a replay must repeat: a billing system that retried has to know where
# to poll the operation.
REPLAYED_HEADERS = ("Location", "Retry-After")
# A first request that never finished (its process died) stops blocking its key after this long.
ABANDONED_AFTER = datetime.timedelta(minutes=5)


def fingerprint(request) -> str:
    # Keyed: the body may hold a chosen root password, which a plain hash would let be guessed offline.
    body = json.dumps(request.data, sort_keys=True, default=str) if request.data else ""
    message = f"{request.method} {request.path}\n{body}".encode()
    return hmac.new(settings.SECRET_KEY.encode(), message, hashlib.sha256).hexdigest()


def without_secrets(data):
    if isinstance(data, dict):
        return {
            k: ("(shown once, in the first answer)" if k in SECRETS and v else without_secrets(v))
            for k, v in data.items()
        }
    if isinstance(data, list):
        return [without_secrets(v) for v in data]
    return data


def storable(data):
    return json.loads(json.dumps(data, cls=DjangoJSONEncoder))


def _begin(token, key: str, print_: str) -> IdempotencyRecord | None:
    """The stored answer to replay, or None after claiming the key for this request."""
    now = timezone.now()
    try:
        with transaction.atomic():
            IdempotencyRecord.objects.create(token=token, key=key, fingerprint=print_)
        return None
    except IntegrityError:
        pass
    with transaction.atomic():
        record = IdempotencyRecord.objects.select_for_update().filter(token=token, key=key).first()
        if record is None:  # the first request was refused meanwhile and freed the key: take it
            IdempotencyRecord.objects.create(token=token, key=key, fingerprint=print_)
            return None
        if record.fingerprint != print_:
            raise Unprocessable(
                f"The {HEADER} {key!r} was used for a different request; use a new key for a new request.",
                code="idempotency_key_reused",
            )
        if record.status_code is not None:
            return record
        if now - record.created_at < ABANDONED_AFTER:
            raise Conflict(f"A request with the {HEADER} {key!r} is still being processed; retry shortly.")
        record.created_at = now  # the first one died: this request takes the key over
        record.save(update_fields=["created_at"])
        return None


def idempotent(view_method):
    """For a verb of a viewset: with an Idempotency-Key, the same request gets the same answer."""

    @functools.wraps(view_method)
    def wrapper(self, request, *args, **kwargs):
        key = request.headers.get(HEADER)
        if key is None:
            return view_method(self, request, *args, **kwargs)
        if not key.strip() or len(key) > 200 or not key.isprintable():
            raise ValidationError({HEADER: "Use 1 to 200 printable characters, e.g. a UUID."})
        stored = _begin(request.auth, key, fingerprint(request))
        if stored is not None:
            headers = (stored.headers or {}) | {"Idempotent-Replayed": "true"}
            return Response(stored.body, status=stored.status_code, headers=headers)
        try:
            response = view_method(self, request, *args, **kwargs)
        except Exception:
            # Refused or failed: nothing was done, so a retry with the same key may try again.
            IdempotencyRecord.objects.filter(token=request.auth, key=key).delete()
            raise
        if response.status_code >= 500:
            IdempotencyRecord.objects.filter(token=request.auth, key=key).delete()
        else:
            IdempotencyRecord.objects.filter(token=request.auth, key=key).update(
                status_code=response.status_code,
                body=storable(without_secrets(response.data)),
                headers={name: response[name] for name in REPLAYED_HEADERS if response.has_header(name)},
            )
        return response

    return wrapper


def prune() -> int:
    limit = timezone.now() - datetime.timedelta(hours=settings.IDEMPOTENCY_KEEP_HOURS)
    return IdempotencyRecord.objects.filter(created_at__lt=limit).delete()[0]
