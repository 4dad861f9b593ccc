"""Settings shared by every mode. Modes (local, production, test) override what differs."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from apps.core.vocabulary import ROUTING_STRATEGIES
from cbplatform.env import STORAGE_BACKENDS, Env, EnvError, env_providers

BASE_DIR = Path(__file__).resolve().parent.parent.parent
VAR_DIR = Path(os.environ.get("CB_VAR_DIR", BASE_DIR / "var"))
VERSION = "0.1.0"

env = Env()


def _decimal_or_none(name: str):
    """A non-negative decimal setting, or None when unset."""
    from decimal import Decimal, InvalidOperation

    value = env.str(name)
    if not value:
        return None
    try:
        number = Decimal(value)
    except InvalidOperation:
        raise EnvError(f"{name} must be a number, got {value!r}") from None
    if not number.is_finite() or number < 0:
        raise EnvError(f"{name} must be a non-negative number, got {value!r}")
    return number


# --- Serving (names from the original server) --------------------------------------------------
OPENAI_HOST = env.str("OPENAI_HOST", default="0.0.0.0")
OPENAI_PORT = env.port("OPENAI_PORT", default=3000)
GRAPHQL_HOST = env.str("GRAPHQL_HOST", default="0.0.0.0")
GRAPHQL_PORT = env.port("GRAPHQL_PORT", default=4000)
WEB_WORKERS = env.int("WEB_CONCURRENCY", "CB_WEB_WORKERS", default=os.cpu_count() or 1, minimum=1, maximum=256)
CORS_ENABLED = env.bool("OPENAI_CORS_ENABLED", "CORS_ENABLED", default=True)
OPENAI_ENABLE_STREAMING = env.bool("OPENAI_ENABLE_STREAMING", default=True)
ENVIRONMENT = env.str("ENVIRONMENT", default="development")
LOG_LEVEL = env.log_level()
ACCESS_LOG = env.bool("ACCESS_LOG", default=False)
# Called by `manage.py serve` before it listens, each as hook(migrate=AUTO_SETUP) -> dict of what it created.
STARTUP_HOOKS = ["cbplatform.bootstrap.startup_setup"]

# --- Storage and shared services ---------------------------------------------------------------
# The original's STORAGE_BACKEND=memory|nats chose its event store. Here the database (DATABASE_URL, else
# SQLite) is always the store; `nats` means workflow events are also published to NATS JetStream (NATS_URL).
STORAGE_BACKEND = env.choice("STORAGE_BACKEND", default="auto", choices=STORAGE_BACKENDS)
DATABASE_CONFIG = env.database("DATABASE_URL")
REDIS_URL = env.url("REDIS_URL", schemes=("redis", "rediss", "unix"))
# When set, relayed workflow events are also published to NATS JetStream (apps/realtime/nats_forward.py).
NATS_URL = env.url("NATS_URL", schemes=("nats", "tls"))
WORKFLOW_EVENTS_TO_NATS = STORAGE_BACKEND == "nats" or NATS_URL is not None
if STORAGE_BACKEND == "nats" and NATS_URL is None:
    raise EnvError("STORAGE_BACKEND=nats needs NATS_URL (nats://host:4222)")
_EVENTS_STREAM = "CB_EVENTS"  # a JetStream stream name, not a variable
NATS_STREAM = env.str("NATS_STREAM", default=_EVENTS_STREAM)
NATS_SUBJECT_PREFIX = env.str("NATS_SUBJECT_PREFIX", default="cb")
# How often each web process (and the beat task) looks for outbox rows no listener published.
REALTIME_RELAY_SWEEP_SECONDS = env.float("REALTIME_RELAY_SWEEP_SECONDS", default=2.0, minimum=0.1)
# Outside the web process (Celery workers, commands), events are relayed by a daemon thread the commits wake
# (`thread`), or before the committing thread goes on (`inline`: what the tests use, so no relay runs behind a
# test's back while it truncates tables).
REALTIME_RELAY_OUTSIDE_WEB = env.choice("REALTIME_RELAY_OUTSIDE_WEB", default="thread", choices=("thread", "inline"))

# --- Routing, limits, resilience ---------------------------------------------------------------
DEFAULT_ROUTING_STRATEGY = env.choice("DEFAULT_ROUTING_STRATEGY", default="balanced", choices=ROUTING_STRATEGIES)
ENABLE_SMART_ROUTING = env.bool("ENABLE_SMART_ROUTING", default=True)
ENABLE_COST_OPTIMIZATION = env.bool("ENABLE_COST_OPTIMIZATION", default=True)
REQUEST_TIMEOUT_SECONDS = env.float("REQUEST_TIMEOUT_SECONDS", default=60.0, minimum=0.1)
MAX_CONCURRENT_REQUESTS = env.int("MAX_CONCURRENT_REQUESTS", default=10000, minimum=1)
# Upstream connections in use at once per worker; by default one per admitted request (no hidden cap).
CONNECTION_POOL_SIZE = env.int("CONNECTION_POOL_SIZE", default=MAX_CONCURRENT_REQUESTS, minimum=1)
RATE_LIMIT_PER_MINUTE = env.int("RATE_LIMIT_PER_MINUTE", default=0, minimum=0)  # 0 = unlimited
BURST_ALLOWANCE = env.int("BURST_ALLOWANCE", default=0, minimum=0)
RATE_LIMIT_GLOBAL_PER_MINUTE = env.int("RATE_LIMIT_GLOBAL_PER_MINUTE", default=0, minimum=0)  # 0 = unlimited
RATE_LIMIT_TOKENS_PER_MINUTE = env.int("RATE_LIMIT_TOKENS_PER_MINUTE", default=0, minimum=0)  # per key
RATE_LIMIT_CONCURRENT_REQUESTS = env.int("RATE_LIMIT_CONCURRENT_REQUESTS", default=0, minimum=0)  # per key
RATE_LIMIT_LEASE_SECONDS = env.float("RATE_LIMIT_LEASE_SECONDS", default=600.0, minimum=1.0)
MAX_REQUEST_BODY_BYTES = env.int("MAX_REQUEST_BODY_BYTES", default=20 * 1024 * 1024, minimum=1024)
# Circuit breaker per deployment (provider × key × model), shared by all processes through Redis.
CIRCUIT_FAILURE_THRESHOLD = env.int("CIRCUIT_FAILURE_THRESHOLD", default=5, minimum=1)
CIRCUIT_ERROR_RATE_THRESHOLD = env.float("CIRCUIT_ERROR_RATE_THRESHOLD", default=0.5, minimum=0.01)
CIRCUIT_MIN_REQUESTS = env.int("CIRCUIT_MIN_REQUESTS", default=10, minimum=1)
CIRCUIT_WINDOW_SECONDS = env.int("CIRCUIT_WINDOW_SECONDS", default=60, minimum=1)
CIRCUIT_COOLDOWN_SECONDS = env.float("CIRCUIT_COOLDOWN_SECONDS", default=30.0, minimum=0.0)
CIRCUIT_HALF_OPEN_PROBES = env.int("CIRCUIT_HALF_OPEN_PROBES", default=1, minimum=1)
CIRCUIT_EWMA_ALPHA = env.float("CIRCUIT_EWMA_ALPHA", default=0.2, minimum=0.01)
CIRCUIT_PROBE_TIMEOUT_SECONDS = env.float("CIRCUIT_PROBE_TIMEOUT_SECONDS", default=120.0, minimum=1.0)
# Retries: exponential backoff with full jitter between attempts, within the request's deadline.
RETRY_BACKOFF_BASE_SECONDS = env.float("RETRY_BACKOFF_BASE_SECONDS", default=0.05, minimum=0.0)
RETRY_BACKOFF_MAX_SECONDS = env.float("RETRY_BACKOFF_MAX_SECONDS", default=2.0, minimum=0.0)
MAX_UPSTREAM_ATTEMPTS = env.int("MAX_UPSTREAM_ATTEMPTS", default=6, minimum=1, maximum=50)
# Check the configuration version before admitting each request (one Redis GET per event-loop turn, or one stat
# of the version file without Redis), so a new key, a revocation, a budget or a limit holds for the very next
# request. Off: processes see changes within the background poll (0.5 s).
CONFIG_CHECK_EVERY_REQUEST = env.bool("CONFIG_CHECK_EVERY_REQUEST", default=True)
# While other deployments remain, one attempt may use at most this share of the time left of the deadline
# (and at most UPSTREAM_FIRST_BYTE_TIMEOUT_SECONDS when set), so a hung upstream leaves time to fail over.
UPSTREAM_ATTEMPT_SHARE = env.float("UPSTREAM_ATTEMPT_SHARE", default=0.5, minimum=0.05)
UPSTREAM_FIRST_BYTE_TIMEOUT_SECONDS = env.float("UPSTREAM_FIRST_BYTE_TIMEOUT_SECONDS", default=0.0, minimum=0.0)
# Balanced strategy weights (normalised cost, latency, error rate).
ROUTING_WEIGHT_COST = env.float("ROUTING_WEIGHT_COST", default=0.4, minimum=0.0)
ROUTING_WEIGHT_LATENCY = env.float("ROUTING_WEIGHT_LATENCY", default=0.4, minimum=0.0)
ROUTING_WEIGHT_ERRORS = env.float("ROUTING_WEIGHT_ERRORS", default=0.2, minimum=0.0)
# Tenant-supplied upstream base URLs may point at private/loopback addresses only when this is on.
ALLOW_PRIVATE_UPSTREAMS = env.bool("ALLOW_PRIVATE_UPSTREAMS", default=True)
# When keys are optional, anonymous requests act for this tenant (slug); blank: they reach global providers only.
ANONYMOUS_TENANT = env.str("ANONYMOUS_TENANT", default="")

# --- Usage ledger and budgets ---------------------------------------------------------------------
# USD per 1,000 tokens for `provider/model` names neither the catalogue nor a catalogued family prices
# (unset: such a model is refused for tenants with a budget rather than counted at 0).
DEFAULT_PRICE_PER_1K_INPUT = _decimal_or_none("DEFAULT_PRICE_PER_1K_INPUT")
DEFAULT_PRICE_PER_1K_OUTPUT = _decimal_or_none("DEFAULT_PRICE_PER_1K_OUTPUT")
# Entries a dead ingester read but never acknowledged are taken over after this long.
USAGE_CLAIM_IDLE_SECONDS = env.float("USAGE_CLAIM_IDLE_SECONDS", default=30.0, minimum=0.0)
# Where a web host keeps usage records while Redis cannot take them (delivered when it answers again).
LEDGER_SPOOL_DIR = env.str("LEDGER_SPOOL_DIR", default="") or str(VAR_DIR / "ledger-spool")
# Request logs (tenants or keys that opt in): each stored body is cut to this many bytes (UTF-8) with a marker;
# these key names are redacted wherever they occur, besides each tenant's own `request_log_redact` rules.
REQUEST_LOG_MAX_BYTES = env.int("REQUEST_LOG_MAX_BYTES", default=65536, minimum=256)
REQUEST_LOG_REDACT_KEYS = env.list("REQUEST_LOG_REDACT_KEYS") or [
    "api_key", "apikey", "api-key", "x-api-key", "authorization", "password", "secret", "client_secret",
    "access_token", "refresh_token", "token"]
BUDGET_RESERVATION_TTL_SECONDS = env.float("BUDGET_RESERVATION_TTL_SECONDS", default=600.0, minimum=1.0)
BUDGET_FAIL_OPEN = env.bool("BUDGET_FAIL_OPEN", default=False)
BUDGET_WEBHOOK_TIMEOUT_SECONDS = env.float("BUDGET_WEBHOOK_TIMEOUT_SECONDS", default=10.0, minimum=0.5)
BUDGET_DEFAULT_MAX_TOKENS = env.int("BUDGET_DEFAULT_MAX_TOKENS", default=4096, minimum=1)
# How long /v1/responses keeps a stored response (`store: true`) for retrieval and `previous_response_id`.
RESPONSES_RETENTION_SECONDS = env.int("RESPONSES_RETENTION_SECONDS", default=30 * 86400, minimum=1)

# --- Functions (docs/architecture.md "Functions") -----------------------------------------------
# Modules whose callables `python` functions may name (apps.functions.builtins is always allowed).
FUNCTIONS_PYTHON_MODULES = ["apps.functions.builtins", *env.list("FUNCTIONS_PYTHON_MODULES")]
# `http` functions may POST to private/loopback addresses only when this is on (off in production).
FUNCTIONS_ALLOW_PRIVATE_URLS = env.bool("FUNCTIONS_ALLOW_PRIVATE_URLS", default=True)
FUNCTIONS_MAX_TIMEOUT_SECONDS = env.float("FUNCTIONS_MAX_TIMEOUT_SECONDS", default=900.0, minimum=1.0)
FUNCTIONS_MAX_ATTEMPTS = env.int("FUNCTIONS_MAX_ATTEMPTS", default=10, minimum=1)
FUNCTIONS_MAX_CHAIN_DEPTH = env.int("FUNCTIONS_MAX_CHAIN_DEPTH", default=10, minimum=1)
FUNCTIONS_LOG_LIMIT_BYTES = env.int("FUNCTIONS_LOG_LIMIT_BYTES", default=65536, minimum=1024)
# POST …/execute/ with wait=true waits at most this long for the run before answering with it as it is.
FUNCTIONS_EXECUTE_WAIT_SECONDS = env.float("FUNCTIONS_EXECUTE_WAIT_SECONDS", default=30.0, minimum=0.0)
# Agents' execute (REST and GraphQL) waits what `wait` asks (true: 30 s, at most 60), never longer than this.
AGENTS_EXECUTE_WAIT_SECONDS = env.float("AGENTS_EXECUTE_WAIT_SECONDS", default=60.0, minimum=0.0)
# `container` functions run only with a container engine (`docker` CLI talking to DOCKER_HOST).
DOCKER_HOST = env.str("DOCKER_HOST", default="")

# --- Providers from the environment (global, read-only, secrets stay in the environment) -------
ENV_PROVIDERS = env_providers(env)

# --- Django ------------------------------------------------------------------------------------
DEBUG = False
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS") or ["*"]
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "corsheaders",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI / ReDoc assets served locally (works offline)
    "channels",
    "graphene_django",
    "apps.core",
    "apps.tenants",
    "apps.rules",
    "apps.providers",
    "apps.gateway",
    "apps.billing",
    "apps.workflows",
    "apps.functions",
    "apps.agents",
    "apps.realtime",
    "apps.dashboard",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "corsheaders.middleware.CorsMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "apps.core.api.RefuseNulInQueryMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "cbplatform.urls"
ASGI_APPLICATION = "cbplatform.asgi.application"
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
            ],
        },
    },
]

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT", VAR_DIR / "static"))
with contextlib.suppress(OSError):  # whitenoise warns about a missing root; finders serve the files anyway
    STATIC_ROOT.mkdir(parents=True, exist_ok=True)
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True

LOGIN_URL = "/admin/login/"

CORS_ALLOW_ALL_ORIGINS = CORS_ENABLED
CORS_URLS_REGEX = r"^/(v1|api|graphql)/.*$"
# Every response header a browser client may need to read (the /v1 gateway sends the same list).
CORS_EXPOSE_HEADERS = [
    "x-ratelimit-limit-requests", "x-ratelimit-remaining-requests", "x-ratelimit-reset-requests",
    "x-ratelimit-limit-tokens", "x-ratelimit-remaining-tokens", "x-ratelimit-reset-tokens",
    "x-cb-request-id", "x-cb-provider", "x-cb-model", "x-cb-route", "x-cb-overhead-ms", "retry-after",
    "request-id", "x-cb-token-count",  # the Anthropic ingress (/v1/messages)
]

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "apps.tenants.api.authentication.ApiKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["apps.tenants.api.permissions.IsTenantAdmin"],
    # JSON only: the schema documents one request content type, and form bodies cannot say null or a list.
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "apps.core.api.StrictLimitOffsetPagination",
    "PAGE_SIZE": 100,
    "EXCEPTION_HANDLER": "apps.core.api.exception_handler",
    # Decimals (prices, money, percents) are JSON numbers both ways, as the schema says (apps/core/api.py).
    "COERCE_DECIMAL_TO_STRING": False,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "cbplatform management API",
    "DESCRIPTION": "Tenants, API keys, providers, credentials and the model catalogue. "
    "Authenticate with the admin session or a tenant API key that has the `admin` scope.",
    "VERSION": VERSION,
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {"ProviderTypeEnum": "apps.providers.models.ProviderType",
                            "WorkflowInstanceStatusEnum": "apps.workflows.models.InstanceStatus",
                            "TokenStatusEnum": "apps.workflows.models.TokenStatus",
                            "ExecutionStatusEnum": "apps.core.models.ExecutionStatus",
                            "RoutingStrategyEnum": "apps.core.vocabulary.ROUTING_STRATEGIES"},
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "POSTPROCESSING_HOOKS": ["drf_spectacular.hooks.postprocess_schema_enums", "apps.core.api.close_request_bodies",
                             "apps.core.api.document_errors", "apps.core.api.document_rules_beyond_schema"],
}

# GraphiQL runs subscriptions over the WebSocket on /graphql (apps/realtime/graphql_ws.py).
GRAPHENE = {"SCHEMA": "cbplatform.schema.schema", "SUBSCRIPTION_PATH": "/graphql"}
# A document nested deeper, or that may touch more fields (list fields counted by their page size), is refused
# before it runs (apps.core.graphql_limits).
GRAPHQL_MAX_DEPTH = env.int("GRAPHQL_MAX_DEPTH", default=10, minimum=2, maximum=100)
GRAPHQL_MAX_COST = env.int("GRAPHQL_MAX_COST", default=20000, minimum=10)

CELERY_IMPORTS = ["apps.billing.ingest", "apps.billing.rollup", "apps.workflows.tasks", "apps.functions.tasks",
                  "apps.agents.tasks", "apps.realtime.tasks"]
CELERY_BEAT_SCHEDULE = {
    "ingest-usage": {"task": "billing.ingest_usage", "schedule": 1.0},
    "reconcile-inflight": {"task": "billing.reconcile_inflight", "schedule": 60.0},  # killed web processes
    "rollup-usage": {"task": "billing.rollup_usage", "schedule": 600.0},  # yesterday and today
    "purge-request-logs": {"task": "billing.purge_request_logs", "schedule": 3600.0},  # past their retention
    # Delayed workflow transitions are scheduled with a countdown; this sweep fires any whose task was lost.
    "workflows-fire-due": {"task": "workflows.fire_due",
                           "schedule": env.float("WORKFLOW_DUE_SWEEP_SECONDS", default=30.0, minimum=0.5)},
    # Function schedules (cron): each due slot is claimed by one row update, so two beats start it once.
    # Agent attempts a dead worker left running: retried or timed out once past their timeout.
    "agents-sweep-lost": {"task": "agents.sweep_lost", "schedule": 60.0},
    "functions-schedules-due": {"task": "functions.schedules_due",
                                "schedule": env.float("FUNCTIONS_SCHEDULE_SWEEP_SECONDS", default=15.0, minimum=0.2)},
    # Workflow events no after-commit listener published (a process killed after its commit).
    "realtime-relay-events": {"task": "realtime.relay_events", "schedule": 5.0},
}
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]

LOG_FORMAT = env.choice("LOG_FORMAT", default="plain", choices=("plain", "json"))
# The gateway's per-request routing decision: every request, only eventful ones (errors, failovers,
# exclusions), or none.
ROUTE_LOG = env.choice("ROUTE_LOG", default="eventful", choices=("all", "eventful", "off"))
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"()": "apps.core.logging.PlainFormatter"},
                   "json": {"()": "apps.core.logging.JSONFormatter"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {"django.db.backends": {"level": "INFO"}},
}


def database_settings(default_sqlite: Path | None) -> dict:
    """DATABASES from DATABASE_URL / STORAGE_BACKEND, falling back to SQLite when allowed."""
    if STORAGE_BACKEND in ("memory", "sqlite") or (STORAGE_BACKEND in ("auto", "nats") and DATABASE_CONFIG is None):
        if default_sqlite is None:
            raise EnvError("DATABASE_URL is required (postgres://user:pass@host:5432/name)")
        default_sqlite.parent.mkdir(parents=True, exist_ok=True)
        return {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": str(default_sqlite),
                            "OPTIONS": {"timeout": 20, "transaction_mode": "IMMEDIATE"}}}
    if DATABASE_CONFIG is None:
        raise EnvError("STORAGE_BACKEND=postgres needs DATABASE_URL (postgres://user:pass@host:5432/name)")
    config = dict(DATABASE_CONFIG)
    # No persistent connections: under ASGI every request's thread would keep its own until garbage collection
    # (Django's docs: "When using ASGI, persistent connections should be disabled"); bench.realtime saw 95 of
    # Postgres' 100 connections taken by 10 clients and then 500s. A pool (psycopg_pool) is the next step.
    config.setdefault("CONN_MAX_AGE", 0)
    config["CONN_HEALTH_CHECKS"] = True
    return {"default": config}


def channel_layers(redis_url: str | None) -> dict:
    if redis_url:
        # channels-redis reads with BZPOPMIN for 5 s at a time; redis-py 8's default 5 s socket timeout would end
        # that read with a TimeoutError (every idle subscriber failing after 5 s), so reads get longer.
        host = {"address": redis_url, "socket_timeout": 30}
        return {"default": {"BACKEND": "channels_redis.core.RedisChannelLayer",
                            "CONFIG": {"hosts": [host], "capacity": CHANNEL_CAPACITY}}}
    return {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer", "CONFIG": {"capacity": CHANNEL_CAPACITY}}}


# Messages a subscriber's channel holds before the layer drops for it (a relay batch is up to 500 events).
CHANNEL_CAPACITY = 1000


def cache_settings(redis_url: str | None) -> dict:
    if redis_url:
        return {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": redis_url}}
    return {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
