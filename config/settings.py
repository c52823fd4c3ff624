"""Closeloop settings, read from environment variables.

Every variable goes through a typed helper that fails loudly on a bad value, so a
typo in a deployment shows at start-up instead of as odd behaviour later.
"""

import datetime as dt
import os
import tempfile
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def env_str(name: str, default: str) -> str:
    # An empty variable counts as unset, like the other helpers.
    return os.environ.get(name) or default


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (1/0, true/false), got {raw!r}")


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} must be an integer, got {raw!r}") from exc


def env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None:
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


DEBUG = env_bool("CLOSELOOP_DEBUG", True)
SECRET_KEY = env_str("CLOSELOOP_SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("CLOSELOOP_SECRET_KEY is required when CLOSELOOP_DEBUG is off")
    SECRET_KEY = "dev-only-insecure-key-do-not-use-in-production"  # noqa: S105

ALLOWED_HOSTS = env_list("CLOSELOOP_ALLOWED_HOSTS", ["127.0.0.1", "localhost", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list("CLOSELOOP_CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_htmx",
    "django_q",
    "axes",
    "complaints",
    "channels",
    "sla",
    "kb",
    "dashboard",
    "triage",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # Last, as django-axes requires: turns a locked-out login into its lockout response.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

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
                "django.template.context_processors.i18n",
            ],
        },
    },
]

# SQLite file by default (fresh machine, demo, tests); PostgreSQL through DATABASE_URL.
DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL", f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
        conn_max_age=env_int("CLOSELOOP_DB_CONN_MAX_AGE", 0),
        conn_health_checks=True,
    )
}
# Optional read replica: reports run on it inside config.db_routers.reports_on_replica();
# everything else (and every write) stays on the primary.
DATABASE_REPLICA_URL = env_str("DATABASE_REPLICA_URL", "")
if DATABASE_REPLICA_URL:
    DATABASES["replica"] = dj_database_url.parse(
        DATABASE_REPLICA_URL,
        conn_max_age=env_int("CLOSELOOP_DB_CONN_MAX_AGE", 0),
        conn_health_checks=True,
        test_options={"MIRROR": "default"},
    )
DATABASE_ROUTERS = ["config.db_routers.ReplicaRouter"]
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # IMMEDIATE takes the write lock when a transaction starts, so two writers
    # serialize instead of both reading a ticket and then racing to update it
    # (SQLite ignores SELECT ... FOR UPDATE).
    DATABASES["default"]["OPTIONS"] = {"transaction_mode": "IMMEDIATE", "timeout": 20}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

LANGUAGE_CODE = "zh-hans"
LANGUAGES = [("zh-hans", "简体中文"), ("en", "English")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "Asia/Shanghai"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(env_str("CLOSELOOP_STATIC_ROOT", str(BASE_DIR / "staticfiles")))
if not DEBUG:
    # Hashed, compressed file names served by whitenoise (run collectstatic when deploying).
    STORAGES = {
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
        "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
    }
MEDIA_URL = "/media/"
MEDIA_ROOT = Path(env_str("CLOSELOOP_MEDIA_ROOT", str(BASE_DIR / "media")))

LOGIN_URL = "login"
AUTHENTICATION_BACKENDS = [
    # First: refuses to authenticate a username+address that is locked out.
    "axes.backends.AxesStandaloneBackend",
    "complaints.auth.ProfileModelBackend",
]

# Password guessing (django-axes): after 5 failures for one username from one address,
# that pair is locked for 15 minutes (pages, admin and the API token endpoint alike).
AXES_FAILURE_LIMIT = env_int("CLOSELOOP_LOGIN_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = dt.timedelta(minutes=env_int("CLOSELOOP_LOGIN_COOLOFF_MINUTES", 15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_VERBOSE = False
LOGIN_REDIRECT_URL = "workspace:queue"
LOGOUT_REDIRECT_URL = "login"

# Uploaded evidence: size and type are checked by complaints.services.attachment_add.
CLOSELOOP_MAX_ATTACHMENT_BYTES = env_int("CLOSELOOP_MAX_ATTACHMENT_MB", 10) * 1024 * 1024
DATA_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024

# Public self-service status link, told to the customer in the first response.
CLOSELOOP_SITE_URL = env_str("CLOSELOOP_SITE_URL", "http://127.0.0.1:8000").rstrip("/")
CLOSELOOP_DEMO_PASSWORD = env_str("CLOSELOOP_DEMO_PASSWORD", "closeloop-demo")

# Closing the loop: the survey link sent on resolution stays valid this many days, and
# the agent owes the customer call-backs on these days after resolution.
CLOSELOOP_SURVEY_VALID_DAYS = env_int("CLOSELOOP_SURVEY_VALID_DAYS", 14)
# Management dashboard: the django-q2 schedule rebuilds the rollups of this many recent
# days every 10 minutes (surveys, call-backs and SLA clocks still change them).
CLOSELOOP_DASHBOARD_REFRESH_DAYS = env_int("CLOSELOOP_DASHBOARD_REFRESH_DAYS", 35)
# Today's figures are computed live and reused for this many seconds (0: every request).
CLOSELOOP_DASHBOARD_LIVE_SECONDS = env_int("CLOSELOOP_DASHBOARD_LIVE_SECONDS", 60)
# Sums read from the stored rollups are cached under the rollup version (a refresh makes
# a new key) for at most this many seconds (0: read them on every request).
CLOSELOOP_DASHBOARD_STORED_CACHE_SECONDS = env_int("CLOSELOOP_DASHBOARD_STORED_CACHE_SECONDS", 900)
CLOSELOOP_FOLLOWUP_DAYS = [int(day) for day in env_list("CLOSELOOP_FOLLOWUP_DAYS", ["3", "7"])]
# An unanswered survey is recalled to the customer once, this many days after it was sent
# (0: never).
CLOSELOOP_SURVEY_REMINDER_DAYS = env_int("CLOSELOOP_SURVEY_REMINDER_DAYS", 3)

# Outbound delivery (channels/outbox.py): attempts before a message is dead-lettered,
# the first retry delay (doubling, with jitter, up to the cap), the webhook timeout and
# the SMS provider (a class with send(phone=, text=, message_id=) -> provider id).
CLOSELOOP_OUTBOX_MAX_ATTEMPTS = env_int("CLOSELOOP_OUTBOX_MAX_ATTEMPTS", 6)
CLOSELOOP_OUTBOX_BACKOFF_SECONDS = env_int("CLOSELOOP_OUTBOX_BACKOFF_SECONDS", 30)
CLOSELOOP_OUTBOX_BACKOFF_MAX_SECONDS = env_int("CLOSELOOP_OUTBOX_BACKOFF_MAX_SECONDS", 3600)
CLOSELOOP_OUTBOX_TIMEOUT_SECONDS = env_int("CLOSELOOP_OUTBOX_TIMEOUT_SECONDS", 10)
# How often the ticket page asks for the delivery state of a message still on its way.
CLOSELOOP_DELIVERY_POLL_SECONDS = env_int("CLOSELOOP_DELIVERY_POLL_SECONDS", 5)
CLOSELOOP_SMS_PROVIDER = env_str("CLOSELOOP_SMS_PROVIDER", "channels.outbox.ConsoleSmsProvider")

# Signed channel intake (POST /api/v1/intake/): body limit, the ± clock window a
# signature stays valid, and the request rate per channel key ("N/second|minute|hour").
CLOSELOOP_INTAKE_MAX_BYTES = env_int("CLOSELOOP_INTAKE_MAX_KB", 64) * 1024
CLOSELOOP_INTAKE_REPLAY_WINDOW_SECONDS = env_int("CLOSELOOP_INTAKE_REPLAY_WINDOW_SECONDS", 300)
CLOSELOOP_INTAKE_RATE = env_str("CLOSELOOP_INTAKE_RATE", "60000/minute")

# Public complaint form (/complain/): submissions per client address per window.
CLOSELOOP_WEB_FORM_LIMIT = env_int("CLOSELOOP_WEB_FORM_LIMIT", 5)
CLOSELOOP_WEB_FORM_WINDOW_SECONDS = env_int("CLOSELOOP_WEB_FORM_WINDOW_SECONDS", 3600)

# Knowledge base review cycle (days): fast-moving categories (kb.CategoryReviewPolicy)
# are reviewed weekly, the rest monthly.
CLOSELOOP_KB_REVIEW_DAYS = env_int("CLOSELOOP_KB_REVIEW_DAYS", 30)
CLOSELOOP_KB_FAST_REVIEW_DAYS = env_int("CLOSELOOP_KB_FAST_REVIEW_DAYS", 7)

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
        "rest_framework.authentication.TokenAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 25,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "complaints.api.exception_handler",
    "DEFAULT_THROTTLE_RATES": {"token": "20/minute"},
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Closeloop API",
    "DESCRIPTION": "Complaint management: tickets, the closed-loop lifecycle, channels.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    # Swagger UI is served from our own static files: no CDN, and the CSP stays strict.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "complaints.schema.document_unsupported_media_type",
    ],
    "ENUM_NAME_OVERRIDES": {
        "StatusEnum": "complaints.models.Status.choices",
        "ReceiptStatusEnum": ["delivered", "failed"],
    },
}

CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
    # Progress of long background jobs (store-register imports), written by a q2 worker
    # and read by the web process: shared between processes (files here, Redis below).
    "progress": {
        "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
        "LOCATION": env_str(
            "CLOSELOOP_PROGRESS_DIR", str(Path(tempfile.gettempdir()) / "closeloop-progress")
        ),
    },
}

# Background work: the ORM broker by default, Redis when REDIS_URL is set.
REDIS_URL = env_str("REDIS_URL", "")
Q_CLUSTER = {
    "name": "closeloop",
    "workers": env_int("CLOSELOOP_Q_WORKERS", 2),
    "timeout": 60,
    "retry": 120,
    "catch_up": False,
    "orm": "default",
}
if REDIS_URL:
    Q_CLUSTER.pop("orm")
    Q_CLUSTER["redis"] = REDIS_URL
    # Shared by every web node: rate limits and throttles count across the cluster.
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
        },
        "progress": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "progress",
        },
    }

# --- security ------------------------------------------------------------------------

SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = True  # pages send the token from the template, never from JS cookies
if env_bool("CLOSELOOP_BEHIND_PROXY", False):
    # Only behind a proxy that sets this header itself (and strips it from clients).
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
if not DEBUG:
    SECURE_SSL_REDIRECT = env_bool("CLOSELOOP_SSL_REDIRECT", True)
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env_int("CLOSELOOP_HSTS_SECONDS", 31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("CLOSELOOP_HSTS_INCLUDE_SUBDOMAINS", True)
    SECURE_HSTS_PRELOAD = env_bool("CLOSELOOP_HSTS_PRELOAD", True)

# Content Security Policy (django-csp): only our own scripts; no inline or eval'd code.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        # htmx and the admin set a few inline style attributes.
        "style-src": ["'self'", "'unsafe-inline'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'", "data:"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}

EMAIL_BACKEND = env_str("CLOSELOOP_EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env_str("CLOSELOOP_LOG_LEVEL", "INFO")},
    # django-axes logs every successful log-in at INFO; lockouts are warnings.
    "loggers": {"axes": {"level": "WARNING"}},
}
