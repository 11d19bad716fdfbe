"""Settings, all read from the environment (django-environ).

Two modes, chosen by PANEL_MODE:
- ``development`` (default): DEBUG on unless told otherwise, a generated secret key kept in the
  data directory, SQLite unless DATABASE_URL says otherwise, and a broker that needs no server
  unless REDIS_URL is set.
- ``production``: DEBUG off, SECRET_KEY and ALLOWED_HOSTS required, HTTPS-only cookies and HSTS;
  ``manage.py check --deploy`` reports nothing.
"""

import datetime
import secrets
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()

PANEL_MODE = env.str("PANEL_MODE", default="development")
if PANEL_MODE not in ("development", "production"):
    raise ImproperlyConfigured(f"PANEL_MODE must be 'development' or 'production', not {PANEL_MODE!r}")
PRODUCTION = PANEL_MODE == "production"

DATA_DIR = Path(env.str("PANEL_DATA_DIR", default=str(BASE_DIR / "var")))


def _development_secret_key() -> str:
    """A per-installation key, made once and kept beside the SQLite file, never committed."""
    path = DATA_DIR / "secret_key"
    if not path.exists():
        DATA_DIR.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_text(secrets.token_urlsafe(50))
    return path.read_text().strip()


if PRODUCTION:
    SECRET_KEY = env.str("SECRET_KEY", default="")
    if not SECRET_KEY:
        raise ImproperlyConfigured("SECRET_KEY must be set in production mode (50 or more random characters).")
    DEBUG = env.bool("DEBUG", default=False)
    ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=[])
    if not ALLOWED_HOSTS:
        raise ImproperlyConfigured("ALLOWED_HOSTS must be set in production mode, e.g. ALLOWED_HOSTS=panel.example.com")
else:
    SECRET_KEY = env.str("SECRET_KEY", default="") or _development_secret_key()
    DEBUG = env.bool("DEBUG", default=True)
    ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])

CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django_htmx",
    "template_partials",
    "axes",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "panel",
    "customers",
    "contexts",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "panel.twofactor.TwoFactorMiddleware",
    "axes.middleware.AxesMiddleware",  # last, as django-axes asks
]

ROOT_URLCONF = "panel.urls"
WSGI_APPLICATION = "panel.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": env.db_url("DATABASE_URL", default=f"sqlite:///{DATA_DIR / 'panel.sqlite3'}"),
}
DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60 if PRODUCTION else 0)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
# `manage.py hostagent` runs its worker with PANEL_ROLE=host: no database at all, so a compromised
# host cannot read other customers' data; any query there fails loudly instead.
PANEL_ROLE = env.str("PANEL_ROLE", default="panel")
if PANEL_ROLE == "host":
    DATABASES = {"default": {"ENGINE": "django.db.backends.dummy"}}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_USER_MODEL = "customers.User"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# Sign-in: django-axes locks a username from one address out after AXES_FAILURE_LIMIT wrong
# passwords for LOGIN_LOCKOUT_MINUTES; django-otp adds TOTP, which staff must use when
# STAFF_REQUIRE_2FA (on in production).
AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend", "django.contrib.auth.backends.ModelBackend"]
AXES_FAILURE_LIMIT = env.int("LOGIN_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = datetime.timedelta(minutes=env.int("LOGIN_LOCKOUT_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_VERBOSE = False
OTP_TOTP_ISSUER = env.str("OTP_TOTP_ISSUER", default="VPS panel")
STAFF_REQUIRE_2FA = env.bool("STAFF_REQUIRE_2FA", default=PRODUCTION)
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(env.str("STATIC_ROOT", default=str(DATA_DIR / "static")))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if PRODUCTION
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}

# Outside production, WhiteNoise serves straight from the source folders (no collectstatic needed).
WHITENOISE_USE_FINDERS = not PRODUCTION
WHITENOISE_AUTOREFRESH = not PRODUCTION

EMAIL_BACKEND = env.str("EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="panel@localhost")

# Security. Production mode turns on everything `check --deploy` asks for; a TLS-terminating
# proxy in front sets SECURE_PROXY_SSL_HEADER through the environment.
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
if PRODUCTION:
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
    SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=True)
    if env.bool("BEHIND_TLS_PROXY", default=False):
        SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# Celery: one app (panel/celery.py) configured from the CELERY_* names below.
# Without REDIS_URL the demo runs on kombu's filesystem transport, which needs no server.
REDIS_URL = env.str("REDIS_URL", default="")
CELERY_BROKER_URL = REDIS_URL or "filesystem://localhost/"
if not REDIS_URL:
    _broker_dir = DATA_DIR / "broker"
    for _sub in ("queue", "processed", "control"):
        (_broker_dir / _sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "processed_folder": str(_broker_dir / "processed"),
        "control_folder": str(_broker_dir / "control"),  # else kombu writes ./control wherever it runs
        "store_processed": False,
    }
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = "panel"
CELERY_TASK_TIME_LIMIT = 30 * 60
CELERY_TASK_SOFT_TIME_LIMIT = 25 * 60
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Host tasks are sent by name to `host.<hostname>`; panel tasks go to `panel`.
PANEL_QUEUE = "panel"
HOST_QUEUE_PREFIX = "host."
if REDIS_URL:
    # Sessions and the two-factor check are read on every page: from Redis they cost a fraction of
    # a database query. Sessions stay in the database too (cached_db), so a Redis restart logs no one
    # out, and while Redis is unreachable they are read from the database (panel/sessions.py).
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "panel",
        }
    }
    SESSION_ENGINE = "panel.sessions"
    # A message a dead worker held comes back after this long; a restarted host agent takes its own
    # back at once (hostagent), so this only has to outlast the longest task.
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 2 * 60 * 60}
# Host agents report (heartbeat, contexts, usage) this often; silent this long, a host is offline.
HOST_HEARTBEAT_SECONDS = env.int("HOST_HEARTBEAT_SECONDS", default=30)
HOST_SILENT_AFTER_SECONDS = env.int("HOST_SILENT_AFTER_SECONDS", default=120)
# An operation without news from its host this long is sent again once (host tasks are idempotent),
# then failed with a readable error after OPERATION_GIVE_UP_SECONDS.
OPERATION_STALL_SECONDS = env.int("OPERATION_STALL_SECONDS", default=120)
OPERATION_GIVE_UP_SECONDS = env.int("OPERATION_GIVE_UP_SECONDS", default=45 * 60)
# Usage samples feed the servers' graphs (last hour by minute, last day by hour); billing keeps its own.
USAGE_MINUTES_KEPT_HOURS = env.int("USAGE_MINUTES_KEPT_HOURS", default=3)
USAGE_HOURS_KEPT_DAYS = env.int("USAGE_HOURS_KEPT_DAYS", default=8)
CELERY_BEAT_SCHEDULE = {
    "check-hosts": {"task": "contexts.check_hosts", "schedule": env.float("CHECK_HOSTS_EVERY", default=30.0)},
    "watch-operations": {"task": "contexts.watch_operations", "schedule": env.float("WATCH_EVERY", default=30.0)},
    "prune-usage-samples": {"task": "contexts.prune_usage_samples", "schedule": 3600.0},
    "prune-idempotency-keys": {"task": "panel.prune_idempotency_keys", "schedule": 3600.0},
    "send-due-webhooks": {"task": "panel.send_due_webhooks", "schedule": 60.0},
    "renew-traffic": {"task": "contexts.renew_traffic", "schedule": 3600.0},
}

# The REST API for billing systems (panel/api): bearer tokens only, JSON in, JSON or CSV out.
API_MAX_BODY_BYTES = env.int("API_MAX_BODY_BYTES", default=64 * 1024)
# Proxies in front of the panel whose X-Forwarded-For is believed (API tokens' source addresses).
TRUSTED_PROXIES = env.list("TRUSTED_PROXIES", default=[])
IDEMPOTENCY_KEEP_HOURS = env.int("IDEMPOTENCY_KEEP_HOURS", default=24)
# A webhook delivery whose first attempt never happened (the broker was down) is sent by beat after this.
WEBHOOK_SWEEP_AFTER_SECONDS = env.int("WEBHOOK_SWEEP_AFTER_SECONDS", default=120)
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["panel.api.authentication.BearerTokenAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["panel.api.permissions.TokenScope"],
    "DEFAULT_PARSER_CLASSES": ["panel.api.parsers.LimitedJSONParser"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_CONTENT_NEGOTIATION_CLASS": "panel.api.renderers.Negotiation",
    "DEFAULT_PAGINATION_CLASS": "panel.api.pagination.Pages",
    "PAGE_SIZE": 100,
    "EXCEPTION_HANDLER": "panel.api.errors.handle",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": None,
    "DEFAULT_THROTTLE_CLASSES": ["panel.api.throttling.AccountRate"],
    "DEFAULT_THROTTLE_RATES": {"user": env.str("API_RATE", default="1200/minute")},
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Hosting panel API",
    "DESCRIPTION": (
        "Provisioning and usage for billing systems. Authenticate with `Authorization: Bearer <token>`; "
        "send an `Idempotency-Key` with every verb; long work answers 202 with an operation to poll."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "panel.api.schema.add_common_responses",
    ],
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {"axes": {"level": "WARNING"}},  # it logs every successful sign-in at INFO
}
CELERY_BEAT_SCHEDULE_FILENAME = str(DATA_DIR / "celerybeat-schedule")
