"""Crowdmint settings: one module, driven by the environment.

Every backend has an embedded default so that ``make demo`` and ``make test`` need nothing installed:
SQLite, eager Celery and an in-process EVM. Real backends are chosen by environment variables
(``DATABASE_URL``, ``REDIS_URL``, ``CHAIN_RPC_URL`` + ``CHAIN_PRIVATE_KEY``); see ``deploy/env.example``.
With ``CROWDMINT_ENV=production`` a missing secret or backend fails loudly at start-up.
"""

from __future__ import annotations

import ipaddress
import os
import re
from datetime import timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import dj_database_url
import django_stubs_ext
from django.core.exceptions import ImproperlyConfigured

# Lets the type parameters the type checker needs (``ModelAdmin[User]``) exist at run time too.
django_stubs_ext.monkeypatch()

BASE_DIR = Path(__file__).resolve().parent.parent


def env(name: str, default: str = "") -> str:
    """An environment variable, or the contents of the file named by ``<name>_FILE``."""
    file_name = os.environ.get(f"{name}_FILE")
    if file_name:
        try:
            return Path(file_name).read_text().strip()
        except OSError as exc:
            raise ImproperlyConfigured(
                f"{name}_FILE={file_name}: can't read it ({exc.strerror or exc})"
            ) from exc
    return os.environ.get(name, default)


# A wrong value fails at start-up with ImproperlyConfigured naming the variable, not later in a
# request (a malformed rate was a 500 on every call) or a settlement (a malformed cap).
_TRUE, _FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off"}


def _bad(name: str, value: str, expected: str) -> ImproperlyConfigured:
    return ImproperlyConfigured(f"{name}={value[:60]!r}: expected {expected}")


def env_bool(name: str, default: bool = False) -> bool:
    value = env(name).strip().lower()
    if not value:
        return default
    if value not in _TRUE | _FALSE:
        raise _bad(name, value, "one of 1, true, yes, on, 0, false, no, off")
    return value in _TRUE


def env_int(name: str, default: str, *, minimum: int = 0) -> int:
    value = env(name, default).strip()
    if not (value.lstrip("-").isascii() and value.lstrip("-").isdigit()) or int(value) < minimum:
        raise _bad(name, value, f"a whole number of at least {minimum}")
    return int(value)


def env_float(name: str, default: str, *, low: float = 0.0, high: float = float("inf")) -> float:
    value = env(name, default).strip()
    try:
        number = float(value) if value.isascii() else float("nan")
    except ValueError:
        number = float("nan")
    if not low <= number <= high:  # NaN fails too
        raise _bad(name, value, f"a number from {low:g} to {high:g}")
    return number


def env_decimal(name: str, default: str) -> str:
    """A non-negative decimal amount (whole units of an asset, ``2.5``), kept as its text."""
    value = env(name, default).strip()
    try:
        valid = value.isascii() and 0 <= Decimal(value) < 10**30  # NaN: InvalidOperation
    except InvalidOperation:
        valid = False
    if not valid:
        raise _bad(name, value, "whole units such as 10 or 2.5")
    return value


_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")


def env_address(name: str) -> str:
    """An Ethereum address (``0x`` and 40 hex digits), or empty for none."""
    value = env(name).strip()
    if value and not _ADDRESS.fullmatch(value):
        raise _bad(name, value, "an Ethereum address: 0x and 40 hexadecimal digits")
    return value


def env_url(name: str, default: str, schemes: tuple[str, ...]) -> str:
    """A URL with one of ``schemes``, or empty for none."""
    value = env(name, default).strip()
    if value and urlsplit(value).scheme not in schemes:
        # Not echoed: a URL may hold a password or an API key.
        raise ImproperlyConfigured(
            f"{name}: expected a URL starting {' or '.join(f'{s}://' for s in schemes)}"
        )
    return value


def env_choice(name: str, default: str, choices: tuple[str, ...]) -> str:
    value = env(name, default).strip()
    if value not in choices:
        raise _bad(name, value, f"one of {', '.join(choices)}")
    return value


def env_rate(name: str, default: str) -> str:
    """A rate limit as DRF reads it: ``<requests>/<second|minute|hour|day>`` (only the period's
    first letter counts: ``30/min`` is 30 a minute)."""
    value = env(name, default).strip()
    count, _, period = value.partition("/")
    if not (count.isascii() and count.isdigit() and period[:1] in ("s", "m", "h", "d")):
        raise _bad(
            name, value, "requests per period, such as 60/minute (second, minute, hour, day)"
        )
    return value


CROWDMINT_ENV = env_choice("CROWDMINT_ENV", "development", ("development", "production"))
PRODUCTION = CROWDMINT_ENV == "production"


def required(name: str, dev_default: str) -> str:
    """A setting production must provide; development falls back to ``dev_default``."""
    value = env(name)
    if value:
        return value
    if PRODUCTION:
        raise ImproperlyConfigured(f"{name} must be set when CROWDMINT_ENV=production")
    return dev_default


DEBUG = env_bool("DJANGO_DEBUG", default=not PRODUCTION)
# The demo offers server-side signing with seeded demo wallets; never on in production.
DEMO_MODE = env_bool("CROWDMINT_DEMO") and not PRODUCTION

SECRET_KEY = required("DJANGO_SECRET_KEY", "insecure-development-key-do-not-use-in-production")
ALLOWED_HOSTS = [
    h for h in env("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost,testserver").split(",") if h
]
CSRF_TRUSTED_ORIGINS = [o for o in env("DJANGO_CSRF_TRUSTED_ORIGINS").split(",") if o]

INSTALLED_APPS = [
    "accounts.apps.CrowdmintAdminConfig",  # django.contrib.admin, closed to banned accounts
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Redoc's files for /api/v1/docs, served from here (no CDN)
    "django_prometheus",  # request, response and database metrics at /metrics (config/metrics.py)
    "accounts",
    "labeling",
    "market",
    "rewards",
    "moderation",
    "frontend",
]

MIDDLEWARE = [
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "config.request_id.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "config.middleware.ContentSecurityPolicyMiddleware",
    "config.middleware.ApiErrorMiddleware",
    "config.middleware.NulCharacterMiddleware",
    "config.middleware.PrivateCacheMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "accounts.middleware.SignInTokenSessionMiddleware",
    "config.middleware.PageMessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
]
if PRODUCTION:
    # Serves the collected static files (admin, the contributor pages' JS and CSS) from the app
    # server itself, compressed and with cache-busting names: no separate web server needed.
    # Elsewhere runserver and the test servers serve them from the apps.
    MIDDLEWARE.insert(3, "whitenoise.middleware.WhiteNoiseMiddleware")

# One-time notices live in the session (server-side, in the database), not in the default
# cookie: a cookie is signed, not encrypted, and the admin shows a new API key's secret once, in
# a notice. Sessions are on in every mode (django.contrib.sessions and its middleware above).
MESSAGE_STORAGE = "django.contrib.messages.storage.session.SessionStorage"

ROOT_URLCONF = "config.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "frontend" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "frontend.context_processors.crowdmint",
            ],
        },
    },
]

WSGI_APPLICATION = "config.wsgi.application"

_default_db = f"sqlite:///{BASE_DIR / 'var' / 'crowdmint.sqlite3'}"
if not env("DATABASE_URL") and not PRODUCTION:
    (BASE_DIR / "var").mkdir(exist_ok=True)  # `manage.py migrate` on a fresh clone just works
_database_url = required("DATABASE_URL", _default_db)
try:
    dj_database_url.parse(_database_url)
except (ValueError, dj_database_url.UnknownSchemeError):
    # Not echoed: it may hold a password.
    raise ImproperlyConfigured(
        "DATABASE_URL: expected a database URL such as postgres://user@host:5432/name or "
        "sqlite:////path/to/file.sqlite3"
    ) from None
DATABASES = {
    "default": dj_database_url.parse(
        _database_url,
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", "60"),
        # No `SELECT 1` before each request's first query (it was a seventh of the submit path's
        # statements). A connection the server dropped fails one request, and Django then
        # replaces it (it closes connections that errored at the end of the request).
        conn_health_checks=env_bool("DATABASE_CONN_HEALTH_CHECKS"),
    )
}
# The submit statement (PostgreSQL) is prepared once per connection and executed by name, so the
# server doesn't parse and plan it for every answer. Off behind a pooler that moves a session's
# statements between server connections (PgBouncer in transaction mode).
DATABASE_PREPARED_STATEMENTS = env_bool("DATABASE_PREPARED_STATEMENTS", True)
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Several threads of the demo server share one file. A deferred transaction that reads, then
    # writes, can't wait for the write lock ("database is locked" at once, whatever the timeout):
    # every transaction takes the write lock when it begins (IMMEDIATE) and waits up to `timeout`
    # seconds for it; WAL lets readers go on while one thread writes.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "timeout": 20,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["TEST"] = {"NAME": ""}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "accounts.User"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "frontend" / "static"]
STATIC_ROOT = Path(env("STATIC_ROOT", str(BASE_DIR / "staticfiles")))
STORAGES: dict[str, dict[str, Any]] = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    # Production serves `collectstatic` output with hashed names (cache them forever); elsewhere
    # files come straight from the apps, no collectstatic needed.
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if PRODUCTION
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
MEDIA_ROOT = Path(env("MEDIA_ROOT", str(BASE_DIR / "var" / "media")))
MEDIA_URL = "media/"
# Uploaded images are shared by every web process and worker: MEDIA_ROOT on a shared filesystem,
# or S3-compatible object storage (AWS S3, MinIO, Ceph, R2...) when MEDIA_S3_BUCKET is set, through
# django-storages (`pip install "django-storages[s3]"`: not installed by default). Files stay
# private (no public ACL): the app streams each image to the users allowed to see it.
MEDIA_S3_BUCKET = env("MEDIA_S3_BUCKET")
if MEDIA_S3_BUCKET:
    import importlib.util

    if importlib.util.find_spec("storages") is None or importlib.util.find_spec("boto3") is None:
        raise ImproperlyConfigured(
            'MEDIA_S3_BUCKET is set: install django-storages with S3 ("django-storages[s3]")'
        )
    STORAGES["default"] = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": MEDIA_S3_BUCKET,
            "endpoint_url": env("MEDIA_S3_ENDPOINT_URL") or None,
            "region_name": env("MEDIA_S3_REGION") or None,
            "access_key": env("MEDIA_S3_ACCESS_KEY_ID") or None,
            "secret_key": env("MEDIA_S3_SECRET_ACCESS_KEY") or None,
            "location": env("MEDIA_S3_PREFIX"),
            "default_acl": None,
            "querystring_auth": True,
            "file_overwrite": False,
        },
    }

LOGIN_URL = "frontend:login"

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.authentication.BearerTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "EXCEPTION_HANDLER": "config.exceptions.api_exception_handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    # `?format=` names an export format (datasets/{id}/export), not a DRF renderer.
    "URL_FORMAT_OVERRIDE": None,
    "DEFAULT_PARSER_CLASSES": [
        "config.parsers.BoundedJSONParser",
        "config.parsers.BoundedFormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    # Every endpoint is rate-limited: per token or API key when authenticated, per client address
    # otherwise (see NUM_PROXIES). Counters live in the cache: Redis when REDIS_URL is set, so the
    # limits hold across processes and hosts.
    "DEFAULT_THROTTLE_CLASSES": ["config.throttling.ApiRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {
        "sign_in": env_rate("SIGN_IN_RATE", "60/minute"),
        # Per contributor, on top of API_RATE: answers and uploads.
        "labels": env_rate("LABEL_RATE", "120/minute"),
        "uploads": env_rate("UPLOAD_RATE", "30/minute"),
        "user": env_rate("API_RATE", "1200/minute"),
        "anon": env_rate("ANON_RATE", "300/minute"),
        # Per API key, on top of API_RATE: dataset reads (records pages, downloads), and export
        # requests (each one reads the whole dataset in a worker).
        "dataset": env_rate("DATASET_RATE", "600/minute"),
        "export": env_rate("EXPORT_RATE", "30/hour"),
    },
    # The client address is REMOTE_ADDR unless NUM_PROXIES proxies in front of the app append to
    # X-Forwarded-For: then it is the address the outermost trusted proxy saw. Never trust a
    # client-sent X-Forwarded-For by default (it would reset every rate limit).
    "NUM_PROXIES": env_int("NUM_PROXIES", "0"),
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}

# The OpenAPI 3 description of the API, served at /api/v1/schema (drf-spectacular).
SPECTACULAR_SETTINGS = {
    # Several components have a "status" (and a "reason") of their own.
    "ENUM_NAME_OVERRIDES": {
        "ItemStatusEnum": "labeling.models.Item.Status",
        "ItemWithdrawnReasonEnum": "labeling.models.Item.WithdrawnReason",
        "LedgerEntryReasonEnum": "rewards.models.LedgerEntry.Reason",
        "PayoutBatchStatusEnum": "rewards.models.PayoutBatch.Status",
        "ProjectTaskEnum": "labeling.models.Project.Task",
    },
    "TITLE": "Crowdmint API",
    "DESCRIPTION": (
        "Contribute and label data, read your rewards, and buy accepted datasets. Authenticate "
        "with `Authorization: Bearer <token or API key>`. Token amounts are strings of integer "
        "base units; every 4xx has a `detail` message."
    ),
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": "/api/v1",
    "COMPONENT_SPLIT_REQUEST": True,
    "REDOC_DIST": "SIDECAR",
    # Enum components as usual, then every error each endpoint can return (401/403/404/429).
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "config.openapi.document_common_errors",
    ],
}

# --- Sign-In with Ethereum -----------------------------------------------------------------------
# The domain a SIWE message must name. Empty: the request's own host (checked against
# ALLOWED_HOSTS), which is what a browser wallet puts there.
SIWE_DOMAIN = env("SIWE_DOMAIN")
SIWE_CHAIN_ID = env_int("SIWE_CHAIN_ID", "1", minimum=1)
SIWE_NONCE_TTL = timedelta(minutes=10)
ACCESS_TOKEN_TTL = timedelta(days=env_int("ACCESS_TOKEN_TTL_DAYS", "7", minimum=1))
# A browser session lasts no longer than the sign-in token it goes with (it ends with the token:
# accounts.middleware), staff's password sessions as long.
SESSION_COOKIE_AGE = int(ACCESS_TOKEN_TTL.total_seconds())
# Each process reuses a bearer token's lookup this long (accounts/authentication.py): a revocation,
# ban or role change made elsewhere reaches it within this many seconds. 0: look up every request.
AUTH_CACHE_SECONDS = env_float("AUTH_CACHE_SECONDS", "5")

# --- Uploads -------------------------------------------------------------------------------------
UPLOAD_MAX_BYTES = env_int("UPLOAD_MAX_BYTES", str(10 * 1024 * 1024), minimum=1)
UPLOAD_MAX_PIXELS = env_int("UPLOAD_MAX_PIXELS", str(40_000_000), minimum=1)
UPLOAD_MAX_TEXT_CHARS = env_int("UPLOAD_MAX_TEXT_CHARS", "20000", minimum=1)
# JSON request bodies: at most this many bytes and this much nesting (a deeply nested body would
# otherwise exhaust the parser's stack).
API_JSON_MAX_BYTES = env_int("API_JSON_MAX_BYTES", str(2 * 1024 * 1024), minimum=1024)
API_JSON_MAX_DEPTH = env_int("API_JSON_MAX_DEPTH", "64", minimum=8)
DATA_UPLOAD_MAX_MEMORY_SIZE = UPLOAD_MAX_BYTES + 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = UPLOAD_MAX_BYTES + 1024 * 1024

# --- Cache -------------------------------------------------------------------------------------
# Rate-limit counters and the health report. With Redis they are shared by every process; the
# embedded default keeps them per process. Production needs Redis (the broker of the workers and
# beat, shared rate limits): without it Celery would run its tasks inside the web processes.
REDIS_URL = required("REDIS_URL", "")
if REDIS_URL:
    env_url("REDIS_URL", "", ("redis", "rediss", "unix"))
CACHES = {
    "default": (
        {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "crowdmint",
            "OPTIONS": {"socket_connect_timeout": 2, "socket_timeout": 2},
        }
        if REDIS_URL
        else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    )
}
# The health report is cached this long, so probes can't be used to load the backends.
HEALTH_CACHE_SECONDS = env_int("HEALTH_CACHE_SECONDS", "5")

# --- Celery --------------------------------------------------------------------------------------
if REDIS_URL:
    CELERY_BROKER_URL = REDIS_URL
    CELERY_RESULT_BACKEND = REDIS_URL
    CELERY_TASK_ALWAYS_EAGER = False
else:
    # Embedded mode: tasks run in the calling process, after the transaction commits.
    CELERY_BROKER_URL = "memory://"
    CELERY_RESULT_BACKEND = "cache+memory://"
    CELERY_TASK_ALWAYS_EAGER = True
    CELERY_TASK_EAGER_PROPAGATES = True
# A task is acknowledged when it ends, not when it starts: if its process dies (SIGKILL, OOM,
# a lost host) it runs again. A pool process killed mid-task: the worker puts the message back at
# once (reject on worker lost). A whole worker killed: its unacknowledged messages go back to
# their queue after CELERY_VISIBILITY_TIMEOUT seconds, which must exceed the longest task (a
# refit may take an hour), or a slow task would also be started a second time. Every task is
# idempotent, so running twice does its work once.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", "3900")
}
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TIME_LIMIT = 300
CELERY_TASK_SOFT_TIME_LIMIT = 240
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Workers log through LOGGING below (JSON with the request id when LOG_FORMAT=json).
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
SETTLE_INTERVAL_SECONDS = env_int("SETTLE_INTERVAL_SECONDS", "600", minimum=1)
CELERY_TASK_DEFAULT_QUEUE = "celery"
# Payouts have their own queue, served by one worker with concurrency 1 (`-Q payouts -c 1`): one
# signer, so batches never race for the minter's nonce, and a backlog of decisions can't delay
# them. Decisions and their credits have the `decisions` queue; refits of large projects go to
# `consensus`.
# The fraud checks (scans of whole projects, rechecks after a ban) have a queue of their own,
# `moderation`, so that a long scan never delays decisions.
CELERY_TASK_ROUTES = {
    # Decisions and their credits have workers of their own: a refit or an export build that
    # takes minutes never holds them back.
    "labeling.tasks.decide_due": {"queue": "decisions"},
    "labeling.tasks.decide_item": {"queue": "decisions"},
    "rewards.tasks.credit_decisions": {"queue": "decisions"},
    "rewards.tasks.credit_decision": {"queue": "decisions"},
    "rewards.tasks.settle_rewards": {"queue": "payouts"},
    "moderation.tasks.*": {"queue": "moderation"},
}
CELERY_BEAT_SCHEDULE = {
    "settle-rewards": {
        "task": "rewards.tasks.settle_rewards",
        "schedule": SETTLE_INTERVAL_SECONDS,
    },
    "credit-pending-decisions": {
        "task": "rewards.tasks.credit_pending_decisions",
        "schedule": 300,
    },
    "fraud-scan": {
        "task": "moderation.tasks.fraud_scan",
        "schedule": env_int("FRAUD_SCAN_SECONDS", "900", minimum=1),
    },
    "reconcile-payouts": {
        "task": "rewards.tasks.reconcile_payouts",
        "schedule": env_int("RECONCILE_INTERVAL_SECONDS", "3600", minimum=1),
    },
    "expire-exports": {
        "task": "market.tasks.expire_exports",
        "schedule": 900,
    },
    # An import whose worker died past the time limit (or out of memory) is marked failed.
    "fail-abandoned-imports": {
        "task": "market.tasks.fail_abandoned_imports",
        "schedule": 900,
    },
    "refit-projects": {
        "task": "labeling.tasks.refit_projects",
        "schedule": env_int("CONSENSUS_REFIT_SECONDS", "3600", minimum=1),
    },
    # The decisions' queue, drained by the task each submit wakes; this run catches a wake-up
    # lost with a broker outage or a killed worker.
    "decide-due-items": {
        "task": "labeling.tasks.decide_due",
        "schedule": 60,
    },
    # Items that can't get their next label go to review (CONSENSUS_LABEL_WAIT_SECONDS).
    "review-stalled-items": {
        "task": "labeling.tasks.review_stalled_items",
        "schedule": 600,
    },
}

# --- Consensus -----------------------------------------------------------------------------------
# A labeler no fit has seen yet is assumed this accurate (errors spread evenly over classes); it
# is also the weak prior every fitted labeler's confusion is shrunk toward. Above 1/2, so that an
# unseen labeler's answer is evidence for its class whatever the number of classes.
CONSENSUS_DEFAULT_ACCURACY = env_float("CONSENSUS_DEFAULT_ACCURACY", "0.8")
if not 0.5 < CONSENSUS_DEFAULT_ACCURACY < 1.0:
    raise ImproperlyConfigured("CONSENSUS_DEFAULT_ACCURACY must be above 0.5 and below 1")
# An open item still waiting for a label this long after its last one (or its upload) goes to the
# moderators' review queue; 0 turns the rule off. An item no eligible contributor is left to label
# goes there at once, whatever this says.
CONSENSUS_LABEL_WAIT_SECONDS = env_int("CONSENSUS_LABEL_WAIT_SECONDS", "86400")
if CONSENSUS_LABEL_WAIT_SECONDS < 0:
    raise ImproperlyConfigured("CONSENSUS_LABEL_WAIT_SECONDS must be 0 (off) or positive")
# Decisions are made in batches of up to DECISIONS_BATCH items per transaction (the queue's
# items, a refit's waiting ones). A submit that queues a decision wakes a `decide_due` task unless
# one is already queued: at most one queued wake-up per DECISIONS_WAKE_SECONDS. The woken task
# starts DECISIONS_GATHER_MS after the wake-up, so that the items queued meanwhile share its batch
# (under load a batch of a few items costs several times a batch of dozens per item).
DECISIONS_BATCH = env_int("DECISIONS_BATCH", "100", minimum=1)
DECISIONS_WAKE_SECONDS = env_int("DECISIONS_WAKE_SECONDS", "30", minimum=1)
DECISIONS_GATHER_MS = env_int("DECISIONS_GATHER_MS", "200")
if DECISIONS_BATCH < 1 or DECISIONS_WAKE_SECONDS < 1:
    raise ImproperlyConfigured("DECISIONS_BATCH and DECISIONS_WAKE_SECONDS must be at least 1")
if not 0 <= DECISIONS_GATHER_MS <= 1000 * DECISIONS_WAKE_SECONDS:
    raise ImproperlyConfigured("DECISIONS_GATHER_MS must be 0 to DECISIONS_WAKE_SECONDS × 1000")
# Projects with at least this many labels are refitted on the `consensus` queue, or on
# `consensus-gpu` (torch on CUDA) when CONSENSUS_GPU_WORKERS is on.
CONSENSUS_LARGE_PROJECT_LABELS = env_int("CONSENSUS_LARGE_PROJECT_LABELS", "100000")
CONSENSUS_GPU_WORKERS = env_bool("CONSENSUS_GPU_WORKERS")
# A contributor may withdraw an answer this long after giving it, while its item is undecided.
UNDO_SECONDS = env_int("UNDO_SECONDS", "60")

# --- Datasets for buyers (market) -----------------------------------------------------------------
# Where buyers pay for datasets on-chain, in the payout asset (POST /api/v1/datasets/{id}/purchase).
# Empty: nothing is sold on-chain; moderators give grants in admin.
DATASET_TREASURY_ADDRESS = env_address("DATASET_TREASURY_ADDRESS")
# A purchase counts once its transaction is this many blocks deep (1: mined).
DATASET_PURCHASE_CONFIRMATIONS = env_int("DATASET_PURCHASE_CONFIRMATIONS", "1", minimum=1)
# A purchase meets the price in force this long before its transfer was mined (or the current one
# if lower): a price raised less than this before the block still lets the old one count. A
# transfer sent when the old price was shown may be mined a while later, and block timestamps (a
# node mining quickly runs ahead, one second a block) are not our clock.
DATASET_PRICE_GRACE_SECONDS = env_int("DATASET_PRICE_GRACE_SECONDS", "120")
# An export's files are deleted this long after it is built.
DATASET_EXPORT_TTL_HOURS = env_int("DATASET_EXPORT_TTL_HOURS", "24", minimum=1)
# Exports and imports run in Celery tasks with this time limit (a crashed build or import is
# taken over after it by its task delivered again; Celery beat marks an abandoned import failed).
DATASET_EXPORT_TIME_LIMIT_SECONDS = env_int(
    "DATASET_EXPORT_TIME_LIMIT_SECONDS", "3600", minimum=120
)
# Imports: rows per bulk insert, and at most this many rejected rows are listed in the report.
IMPORT_BATCH_SIZE = env_int("IMPORT_BATCH_SIZE", "5000", minimum=1)
IMPORT_REPORT_MAX_ROWS = env_int("IMPORT_REPORT_MAX_ROWS", "1000")

# --- Moderation and fraud -------------------------------------------------------------------------
# Hashed sign-in fingerprints (network, browser) are kept this long, for the Sybil check.
FINGERPRINT_RETENTION_DAYS = env_int("FINGERPRINT_RETENTION_DAYS", "30", minimum=1)
# How often Celery beat runs every fraud check (manage.py fraud_scan runs them at once).
FRAUD_SCAN_SECONDS = env_int("FRAUD_SCAN_SECONDS", "900", minimum=1)
# New wallets are on probation until they have this many answers and this many days, and a gold
# record of PROBATION_GOLD_ACCURACY (if they have 5 gold answers): their labels weigh as a
# labeler of CONSENSUS_PROBATION_ACCURACY, and at most PROBATION_PAYOUT_CAP (whole units of the
# payout asset) is paid to them in all, the rest waiting in the ledger.
PROBATION_LABELS = env_int("PROBATION_LABELS", "50")
PROBATION_DAYS = env_int("PROBATION_DAYS", "3")
PROBATION_GOLD_ACCURACY = env_float("PROBATION_GOLD_ACCURACY", "0.8", high=1.0)
CONSENSUS_PROBATION_ACCURACY = env_float("CONSENSUS_PROBATION_ACCURACY", "0.75", high=1.0)
PROBATION_PAYOUT_CAP = env_decimal("PROBATION_PAYOUT_CAP", "10")
# After answers, a contributor's latest ones are checked (speed, spam) this many seconds later,
# once per window (eager Celery: at once).
ANSWER_CHECK_SECONDS = env_int("ANSWER_CHECK_SECONDS", "20")
# Wallet links read from the chain (funded from or paying out to one address): at most this many
# blocks are read per fraud scan.
FRAUD_CHAIN_SCAN_BLOCKS = env_int("FRAUD_CHAIN_SCAN_BLOCKS", "5000", minimum=1)

# --- Chain ---------------------------------------------------------------------------------------
# Empty CHAIN_RPC_URL: an in-process EVM (eth-tester), fresh in every process.
CHAIN_RPC_URL = env_url("CHAIN_RPC_URL", "", ("http", "https"))
CHAIN_PRIVATE_KEY = env("CHAIN_PRIVATE_KEY")
CHAIN_TOKEN_ADDRESS = env_address("CHAIN_TOKEN_ADDRESS")
CHAIN_EXPLORER_TX_URL = env("CHAIN_EXPLORER_TX_URL")  # e.g. https://etherscan.io/tx/{tx_hash}
PAYOUT_BATCH_MAX_RECIPIENTS = env_int("PAYOUT_BATCH_MAX_RECIPIENTS", "500", minimum=1)
# What contributors are paid in: "mint" the platform's RewardToken (CHAIN_TOKEN_ADDRESS), or
# "erc20": an existing ERC-20 such as a stablecoin, paid by the RewardDistributor at
# CHAIN_DISTRIBUTOR_ADDRESS from its treasury (which approves the distributor). Amounts everywhere
# are in the asset's base units and shown with PAYOUT_ASSET_SYMBOL and PAYOUT_ASSET_DECIMALS.
PAYOUT_ASSET = env("PAYOUT_ASSET", "mint")
if PAYOUT_ASSET not in ("mint", "erc20"):
    raise ImproperlyConfigured("PAYOUT_ASSET must be mint or erc20")
CHAIN_DISTRIBUTOR_ADDRESS = env_address("CHAIN_DISTRIBUTOR_ADDRESS")
_asset_defaults = ("CMT", "18") if PAYOUT_ASSET == "mint" else ("tUSD", "6")
PAYOUT_ASSET_SYMBOL = env("PAYOUT_ASSET_SYMBOL", _asset_defaults[0])
PAYOUT_ASSET_DECIMALS = env_int("PAYOUT_ASSET_DECIMALS", _asset_defaults[1])
if PRODUCTION and PAYOUT_ASSET == "erc20":
    for _name in ("CHAIN_DISTRIBUTOR_ADDRESS", "PAYOUT_ASSET_SYMBOL", "PAYOUT_ASSET_DECIMALS"):
        if not env(_name):
            raise ImproperlyConfigured(f"{_name} must be set when PAYOUT_ASSET=erc20")
# Reward policies' epoch budgets count credits per epoch of this many hours (UTC, from 1970).
REWARD_EPOCH_HOURS = env_int("REWARD_EPOCH_HOURS", "24", minimum=1)
# A wallet is paid once its unpaid net reaches this (base units); smaller sums wait.
PAYOUT_MINIMUM = env_int("PAYOUT_MINIMUM", "0")
# A new credit waits this long before it is paid, so that a fraud scan has looked at its labeler
# first (a ring paid before the scan that would have flagged it kept the money: paid items are
# never decided again). Twice the scan period in production; 0 in development, where no beat
# runs the scans (the demo, the tests).
PAYOUT_HOLD_SECONDS = env_int(
    "PAYOUT_HOLD_SECONDS", str(2 * FRAUD_SCAN_SECONDS) if PRODUCTION else "0"
)
# On: settlement prepares batches and a moderator approves each in admin before it is broadcast.
PAYOUT_REQUIRE_APPROVAL = env_bool("PAYOUT_REQUIRE_APPROVAL")
PAYOUT_RECEIPT_TIMEOUT_SECONDS = env_int("PAYOUT_RECEIPT_TIMEOUT_SECONDS", "120", minimum=1)
# A read of the chain a web request waits on (a purchase's verification) waits at most this
# long per call, and is not retried: a hanging node fails the request with a 503 in seconds.
CHAIN_REQUEST_TIMEOUT_SECONDS = env_int("CHAIN_REQUEST_TIMEOUT_SECONDS", "10", minimum=1)
# Reconciliation (rewards.reconcile): how often Celery beat checks the payout invariants against
# the chain, over the batches of the last RECONCILE_WINDOW_DAYS (and every unfinished one), reading
# payment events from CHAIN_START_BLOCK (the block the payout contract was deployed in).
RECONCILE_INTERVAL_SECONDS = env_int("RECONCILE_INTERVAL_SECONDS", "3600", minimum=1)
RECONCILE_WINDOW_DAYS = env_int("RECONCILE_WINDOW_DAYS", "7", minimum=1)
CHAIN_START_BLOCK = env_int("CHAIN_START_BLOCK", "0")
if CHAIN_RPC_URL and not CHAIN_PRIVATE_KEY:
    raise ImproperlyConfigured(
        "CHAIN_RPC_URL is set: CHAIN_PRIVATE_KEY (or CHAIN_PRIVATE_KEY_FILE) is required"
    )
if PRODUCTION and not CHAIN_RPC_URL:
    raise ImproperlyConfigured("CHAIN_RPC_URL must be set when CROWDMINT_ENV=production")

if PRODUCTION:
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    # HTTPS only. HSTS starts at an hour: raise it once the site is known to work over HTTPS
    # (browsers remember it, so a mistake can't be taken back quickly).
    SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", True)
    SECURE_HSTS_SECONDS = env_int("DJANGO_SECURE_HSTS_SECONDS", "3600")
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS")
    # Probes and the metrics scraper talk plain HTTP to the process itself, behind the proxy.
    SECURE_REDIRECT_EXEMPT = [r"^api/v1/health", r"^metrics$"]

# --- Metrics and logs ----------------------------------------------------------------------------
# GET /metrics (config/metrics.py): for a bearer METRICS_TOKEN, or from an address in
# METRICS_ALLOWED_NETWORKS (comma-separated CIDRs; the address as the rate limits see it).
METRICS_TOKEN = env("METRICS_TOKEN")
# prometheus_client's multi-process mode writes to this directory from any process that has it set
# (web, workers, even manage.py): it must exist before the first metric is touched.
if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    Path(os.environ["PROMETHEUS_MULTIPROC_DIR"]).mkdir(parents=True, exist_ok=True)
METRICS_ALLOWED_NETWORKS = env("METRICS_ALLOWED_NETWORKS", "" if PRODUCTION else "127.0.0.0/8,::1")
for _network in filter(None, (n.strip() for n in METRICS_ALLOWED_NETWORKS.split(","))):
    try:
        ipaddress.ip_network(_network, strict=False)
    except ValueError:
        raise _bad(
            "METRICS_ALLOWED_NETWORKS", _network, "comma-separated addresses or CIDRs"
        ) from None

# LOG_FORMAT=json: one JSON object per line (config/request_id.py), with the request id that the
# response's X-Request-ID shows, in the web processes and in the Celery tasks the request enqueued.
LOG_FORMAT = env_choice("LOG_FORMAT", "plain", ("plain", "json"))
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "config.request_id.RequestIdFilter"}},
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"},
        "json": {"()": "config.request_id.JsonFormatter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "filters": ["request_id"],
            "formatter": "json" if LOG_FORMAT == "json" else "plain",
        }
    },
    "root": {
        "handlers": ["console"],
        "level": env_choice("LOG_LEVEL", "INFO", ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")),
    },
    "loggers": {
        "web3": {"level": "WARNING"},
        "eth": {"level": "WARNING"},
        # Eager Celery would log every task inline with the request log.
        "celery.app.trace": {"level": "INFO" if REDIS_URL else "WARNING"},
        "crowdmint.tasks": {"level": "INFO" if REDIS_URL else "WARNING"},
    },
}
