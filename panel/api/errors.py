"""Every refusal as JSON with the right status: the services' errors, bad bodies, Django's own checks."""

from django.core.exceptions import RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import JsonResponse
from django.views import defaults
from rest_framework import exceptions, status
from rest_framework.renderers import JSONRenderer
from rest_framework.views import exception_handler

from contexts import lifecycle
from contexts.exceptions import (
    InvalidRequest,
    NoCapacity,
    NotPermitted,
    OperationInProgress,
    PoolExhausted,
    ServiceError,
)

from .parsers import BodyTooLarge


class Conflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_code = "conflict"


class Unprocessable(exceptions.APIException):
    status_code = status.HTTP_422_UNPROCESSABLE_ENTITY
    default_code = "unprocessable"


class NoRoom(exceptions.APIException):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_code = "no_capacity"


def translate(exc):
    """The services' errors, whose messages are written for people, as API errors."""
    message = str(exc)
    if isinstance(exc, NotPermitted):
        return exceptions.PermissionDenied(message)
    if isinstance(exc, OperationInProgress):
        return Conflict(message, code="operation_in_progress")
    if isinstance(exc, lifecycle.IllegalTransition):
        return Conflict(message, code="not_allowed_in_this_state")
    if isinstance(exc, (NoCapacity, PoolExhausted)):
        return NoRoom(message)
    if isinstance(exc, (InvalidRequest, ServiceError)):
        return exceptions.ValidationError({"detail": message}, code="invalid")
    if isinstance(exc, DjangoValidationError):
        return exceptions.ValidationError(exc.message_dict if hasattr(exc, "error_dict") else {"detail": exc.messages})
    if isinstance(exc, RequestDataTooBig):
        return BodyTooLarge("The request body is too large.")
    return exc


def handle(exc, context):
    response = exception_handler(translate(exc), context)
    request = context.get("request")
    if response is not None and request is not None:
        # Refusals are JSON whatever was asked for: a CSV of an error helps no one.
        request.accepted_renderer, request.accepted_media_type = JSONRenderer(), "application/json"
    return response


def not_found(request, exception=None):
    """Django's 404 and 500 pages, as JSON under /api/: a client there never parses HTML."""
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": "Not found."}, status=404)
    return defaults.page_not_found(request, exception)


def server_error(request):
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": "The panel failed to answer; the error is logged. Try again later."}, status=500)
    return defaults.server_error(request)
