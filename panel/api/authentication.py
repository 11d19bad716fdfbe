"""`Authorization: Bearer <token>` for the API, and how the OpenAPI document describes it."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.exceptions import AuthenticationFailed, PermissionDenied

from . import tokens


class BearerTokenAuthentication(BaseAuthentication):
    def authenticate(self, request):
        header = get_authorization_header(request).split()
        if not header or header[0].lower() != b"bearer":
            return None
        if len(header) != 2:
            raise AuthenticationFailed("Send the token as 'Authorization: Bearer <token>'.")
        token = tokens.find(header[1].decode("ascii", errors="replace"))
        if token is None:
            raise AuthenticationFailed("This API token is not known.")
        if token.is_revoked:
            raise AuthenticationFailed("This API token was revoked.")
        if not token.user.is_active:
            raise AuthenticationFailed("The account this API token acts for is disabled.")
        address = tokens.client_address(request)
        if not tokens.allows(token, address):
            raise PermissionDenied(f"This API token may not be used from {address}.")
        tokens.touch(token)
        user = token.user
        user.api_token = token  # the audit log names the token beside the account
        return user, token

    def authenticate_header(self, request):
        return 'Bearer realm="api"'


class BearerTokenScheme(OpenApiAuthenticationExtension):
    target_class = BearerTokenAuthentication
    name = "apiToken"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "An API token made by staff under Staff > API tokens (shown once).",
        }
