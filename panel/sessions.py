"""Sessions read from Redis and kept in the database (cached_db), going on from the database alone
while Redis is unreachable. Deleting on logout is not forgiven: a session that could not be removed
from the cache must not quietly come back with it. Signing in replaces the visitor's session, which
holds no login, so that one may stay behind in the cache."""

from django.contrib.sessions.backends import cached_db
from redis.exceptions import RedisError

CACHE_ERRORS = (RedisError, OSError)


class MissOnOutage:
    """A cache whose reads miss and whose writes are skipped while it is unreachable."""

    def __init__(self, cache):
        self._cache = cache

    def get(self, key, default=None):
        try:
            return self._cache.get(key, default)
        except CACHE_ERRORS:
            return default

    def set(self, *args, **kwargs):
        try:
            self._cache.set(*args, **kwargs)
        except CACHE_ERRORS:
            pass

    def __contains__(self, key):
        try:
            return key in self._cache
        except CACHE_ERRORS:
            return False

    def __getattr__(self, name):  # delete and the rest: as they are
        return getattr(self._cache, name)


class SessionStore(cached_db.SessionStore):
    def __init__(self, session_key=None):
        super().__init__(session_key)
        self._cache = MissOnOutage(self._cache)
        self._signing_in = False

    def cycle_key(self):
        self._signing_in = True
        try:
            super().cycle_key()
        finally:
            self._signing_in = False

    def delete(self, session_key=None):
        try:
            super().delete(session_key)
        except CACHE_ERRORS:
            if not self._signing_in:
                raise
