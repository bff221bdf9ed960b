"""Warden settings: the one module that reads the environment.

With nothing set, Warden runs in the *embedded default*: SQLite (WAL) under ``var/``, the
in-memory channel layer, Celery tasks run in-process, a signing key generated into
``var/keys/``. Setting ``DATABASE_URL`` / ``REDIS_URL`` switches to production mode
(PostgreSQL via psycopg 3, channels_redis, a Redis Celery broker). See README.md.

Environment variables:
    DATABASE_URL       postgres://user@host:port/db or sqlite:///path (dj-database-url)
    REDIS_URL          redis://host:port/db  (channel layer + Celery broker)
    SECRET_KEY         Django secret; embedded mode keeps a generated one in var/
    ALLOWED_HOSTS      comma-separated host names (default: localhost, 127.0.0.1)
    DEBUG              1/0 (default 0)
    WARDEN_HTTPS       1 when served over HTTPS (secure cookies, HSTS, SSL redirect)
    WARDEN_TRUSTED_PROXIES  comma-separated addresses of reverse proxies whose
                       X-Forwarded-For / -Proto name the client (default: none, so the
                       client is the TCP peer; login throttling and events use it)
    WARDEN_VAR_DIR     where embedded data, exports and keys live (default ./var)
    WARDEN_KEY_DIR     signing keys directory (default $WARDEN_VAR_DIR/keys)
    WARDEN_SIGNING_KEY base64 Ed25519 private key (32-byte seed); overrides the key file
    WARDEN_CELERY_EAGER  1 to run Celery tasks in-process even with REDIS_URL
    WARDEN_CELERY_VISIBILITY_TIMEOUT  seconds before a task taken by a dead worker is
                       delivered again (Redis broker; default 300), with
                       WARDEN_CELERY_RESTORE_INTERVAL / _THROTTLE (how often workers look)
    WARDEN_INTEGRATOR  who appends the log fields after each commit: "thread" (a background
                       thread of the committing process; default on PostgreSQL), "inline"
                       (the committing request itself; default on SQLite) or "process"
                       (a separate `manage.py run_integrator`)
    WARDEN_EXPORT_ASYNC_ROWS  audit exports above this many rows run as a Celery task (50000)
    WARDEN_EXPORT_DIR  where those exports are written (default $WARDEN_VAR_DIR/exports)
    WARDEN_EXPORT_STALE_SECONDS  a task export without progress this long is taken over by
                       the task redelivered after its worker died (default 300)
    OPA_URL            delegate Rego policies to an external OPA server
    WARDEN_DB_POOL_SIZE  PostgreSQL connections pooled per process (default 10; 0: no pool)
    WARDEN_APPROVAL_SLA_SECONDS  approval SLA target (default 300 s; SPEC §4)
"""

from __future__ import annotations

import os
import secrets
from datetime import timedelta
from pathlib import Path

import dj_database_url
from csp.constants import NONCE, NONE, SELF

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: list[str]) -> list[str]:
    value = os.environ.get(name)
    if not value:
        return default
    return [item.strip() for item in value.split(",") if item.strip()]


VAR_DIR = Path(os.environ.get("WARDEN_VAR_DIR") or BASE_DIR / "var")
VAR_DIR.mkdir(parents=True, exist_ok=True)


def _secret_key() -> str:
    if os.environ.get("SECRET_KEY"):
        return os.environ["SECRET_KEY"]
    # Embedded default: generate once and keep it beside the database, so sessions and
    # API key hashes survive restarts without anyone configuring anything.
    path = VAR_DIR / "secret_key"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(64))
        path.chmod(0o600)
    return path.read_text().strip()


SECRET_KEY = _secret_key()
DEBUG = env_bool("DEBUG", False)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

DATABASE_URL = os.environ.get("DATABASE_URL", "")
REDIS_URL = os.environ.get("REDIS_URL", "")
EMBEDDED = not DATABASE_URL

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_htmx",
    "template_partials",
    "csp",
    "axes",
    "audit",
    "console",
    "assessments",
    "trust",
    "approvals",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # WhiteNoise, async-capable, so no middleware pins a thread (console/middleware.py).
    "console.middleware.StaticFilesMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # axes must be last: it turns a locked-out login into its lockout response.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "console.urls"
ASGI_APPLICATION = "console.asgi.application"
WSGI_APPLICATION = None

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
                "csp.context_processors.nonce",
                "console.context_processors.console",
            ],
        },
    }
]

# --- Database -------------------------------------------------------------------------
if EMBEDDED:
    _sqlite_path = VAR_DIR / "warden.sqlite3"
    DATABASES = {"default": dj_database_url.parse(f"sqlite:///{_sqlite_path}")}
else:
    DATABASES = {
        "default": dj_database_url.parse(DATABASE_URL, conn_max_age=600, conn_health_checks=True)
    }

# PostgreSQL: one connection pool per process (psycopg_pool). Under ASGI each concurrent
# request runs on a thread of its own (console.handlers keeps up to 64 idle ones), so
# persistent connections (CONN_MAX_AGE) would hold a connection per thread; the pool
# bounds and reuses them. WARDEN_DB_POOL_SIZE (default 10) is the most one process
# holds; 0 turns it off.
DB_POOL_SIZE = int(os.environ.get("WARDEN_DB_POOL_SIZE") or 10)
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql" and DB_POOL_SIZE > 0:
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": 1,
        "max_size": DB_POOL_SIZE,
        "timeout": 10,
    }
    # psycopg's default, written down: a statement bound on the server is prepared once a
    # connection has run it five times. Only the history prefetch binds on the server
    # (console.authorize.history); Django's cursors bind on the client and are never
    # prepared, so PostgreSQL plans the governed path's other statements on every request.
    DATABASES["default"]["OPTIONS"]["prepare_threshold"] = 5

if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            # WAL lets readers run beside the single writer; IMMEDIATE takes the write lock
            # at BEGIN so two writers queue instead of failing on lock upgrade.
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
        }
    )
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test.sqlite3")}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Channels and Celery --------------------------------------------------------------
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {
                "hosts": [REDIS_URL],
                "prefix": os.environ.get("WARDEN_CHANNEL_PREFIX", "warden"),
                "capacity": 1500,
                "expiry": 30,
            },
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

CELERY_BROKER_URL = REDIS_URL or "memory://localhost/"  # eager tasks still take a producer
CELERY_RESULT_BACKEND = None
CELERY_TASK_ALWAYS_EAGER = env_bool("WARDEN_CELERY_EAGER", default=not REDIS_URL)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_ROUTES = {
    "trust.*": {"queue": "trust"},
    "audit.export_*": {"queue": "exports"},
}
# Redis has no real acknowledgements: a message taken by a worker that dies before acking
# (acks_late) goes back to its queue once it has been unacked for `visibility_timeout`
# seconds, at the next sweep of a live worker (every `unacked_restore_interval` s, scanning
# on every `unacked_restore_throttle`-th sweep). The timeout must exceed the longest task;
# the crash test lowers all three (WARDEN_CELERY_*).
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": int(os.environ.get("WARDEN_CELERY_VISIBILITY_TIMEOUT") or 300),
    "unacked_restore_interval": int(os.environ.get("WARDEN_CELERY_RESTORE_INTERVAL") or 10),
    "unacked_restore_throttle": int(os.environ.get("WARDEN_CELERY_RESTORE_THROTTLE") or 1),
}
CELERY_TIMEZONE = "UTC"
# Periodic jobs: run by Celery beat in production and by the in-process scheduler of
# `manage.py serve` in embedded mode (console/scheduler.py), from this one table.
CELERY_BEAT_SCHEDULE: dict[str, dict] = {
    "audit-checkpoint": {"task": "audit.sign_checkpoint_if_due", "schedule": 15.0},
    "console-purge-idempotency": {
        "task": "console.purge_idempotency_records",
        "schedule": 3600.0,
    },
    # SPEC §4: record the expiry of requests nobody decided in time (reads already treat
    # them as expired the moment they are due).
    "approvals-expire": {"task": "approvals.expire_due_requests", "schedule": 5.0},
    # Trust recovery, upgrades and velocity at day boundaries (trust.reducer), and events
    # whose recompute task was lost.
    "trust-advance-clock": {"task": "trust.advance_trust_clock", "schedule": 300.0},
}
# SPEC §4: the approval SLA target; a card is "at risk" past 80%, "breached" past 100%.
WARDEN_APPROVAL_SLA_SECONDS = int(os.environ.get("WARDEN_APPROVAL_SLA_SECONDS") or 300)

# --- Event log ------------------------------------------------------------------------
WARDEN_KEY_DIR = Path(os.environ.get("WARDEN_KEY_DIR") or VAR_DIR / "keys")
WARDEN_SIGNING_KEY = os.environ.get("WARDEN_SIGNING_KEY", "")
# Who numbers, chains and signs new events (audit.services): a background thread of each
# process on PostgreSQL, the committing request itself on SQLite (one writer anyway).
_SQLITE = DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3"
WARDEN_INTEGRATOR = os.environ.get("WARDEN_INTEGRATOR") or ("inline" if _SQLITE else "thread")
WARDEN_CHECKPOINT_EVERY = 1000  # events (SPEC §6.2)
WARDEN_CHECKPOINT_SECONDS = 60  # seconds (SPEC §6.2)
OPA_URL = os.environ.get("OPA_URL", "")
# Audit log exports (SPEC §7): bigger ones run as the audit.export_events task.
WARDEN_EXPORT_ASYNC_ROWS = int(os.environ.get("WARDEN_EXPORT_ASYNC_ROWS") or 50_000)
WARDEN_EXPORT_DIR = Path(os.environ.get("WARDEN_EXPORT_DIR") or VAR_DIR / "exports")
# A task export silent this long (no progress) is taken to be abandoned by a dead worker,
# and the redelivered task takes it over (audit.tasks.export_events).
WARDEN_EXPORT_STALE_SECONDS = int(os.environ.get("WARDEN_EXPORT_STALE_SECONDS") or 300)

# --- Auth and security ----------------------------------------------------------------
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 12},  # operators govern agents that spend money
    },
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "dashboard"
LOGOUT_REDIRECT_URL = "login"

AXES_FAILURE_LIMIT = 5
AXES_COOLOFF_TIME = timedelta(minutes=15)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
# The client address is REMOTE_ADDR, which uvicorn takes from X-Forwarded-For only when the
# connection comes from one of these proxies (`manage.py serve`); by default from none, so
# a client cannot pick the address its failed logins are counted against.
WARDEN_TRUSTED_PROXIES = env_list("WARDEN_TRUSTED_PROXIES", [])

HTTPS = env_bool("WARDEN_HTTPS", False)
SESSION_COOKIE_HTTPONLY = True
# A console session ends after this long without a request (each request renews it): an
# operator's session can pause or revoke agents, so it should not live for Django's two weeks.
SESSION_COOKIE_AGE = int(os.environ.get("WARDEN_SESSION_IDLE_MINUTES") or 480) * 60
SESSION_SAVE_EVERY_REQUEST = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
if HTTPS:
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_SSL_REDIRECT = env_bool("WARDEN_SSL_REDIRECT", True)
    SECURE_HSTS_SECONDS = 31536000
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF, NONCE],
        "style-src": [SELF, NONCE],
        "img-src": [SELF, "data:"],
        "connect-src": [SELF],
        "font-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    }
}

# --- REST API -------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "console.authentication.OperatorTokenAuthentication",
        "console.authentication.ConsoleSessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["console.roles.IsOperator"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["console.api.parsers.JSONParser"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "console.api.errors.exception_handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Warden API",
    "DESCRIPTION": "Governance API for autonomous AI agents (SPEC §9).",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",  # the default
        "console.api.schema.document_payload_too_large",
    ],
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
    "COMPONENT_SPLIT_REQUEST": True,
    # Swagger UI from the vendored sidecar package: nothing is loaded from a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Several authorization fields share a name (kind, mode, verdict): name their enums.
    "ENUM_NAME_OVERRIDES": {
        "LayerModeEnum": "console.authorize.models.Mode",
        "SeverityEnum": "console.authorize.models.Severity",
        "ActionVerdictEnum": "console.authorize.models.ActionVerdict",
        "RuleKindEnum": "console.authorize.models.Rule.Kind",
        "RuleVerdictEnum": "console.authorize.models.Rule.RuleVerdict",
        "GuardrailKindEnum": "console.authorize.models.Guardrail.Kind",
        "GuardrailModeEnum": "console.authorize.models.Guardrail.Effect",
        "GuardrailStageEnum": "console.authorize.models.Guardrail.Stage",
        "ResultStatusEnum": "console.authorize.models.Action.ResultStatus",
    },
}
# Proposals larger than this are refused with 413 (SPEC §9 bad input).
DATA_UPLOAD_MAX_MEMORY_SIZE = 256 * 1024

# --- i18n / static --------------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True
STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = VAR_DIR / "staticfiles"
STATIC_ROOT.mkdir(exist_ok=True)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True
MEDIA_ROOT = VAR_DIR / "media"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "WARNING")},
    "loggers": {
        "warden": {"level": os.environ.get("WARDEN_LOG_LEVEL", "INFO")},
    },
}
