"""The API's rate limit per account, which serves rather than fails while the cache (Redis) is down."""

import logging

from rest_framework.throttling import UserRateThrottle

from panel.sessions import CACHE_ERRORS

log = logging.getLogger("panel.api")


class AccountRate(UserRateThrottle):
    def allow_request(self, request, view):
        try:
            return super().allow_request(request, view)
        except CACHE_ERRORS as exc:
            log.warning("API rate limit not checked, the cache is unavailable: %s", exc)
            return True
