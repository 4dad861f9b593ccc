"""Production: Postgres and Redis are mandatory; the process refuses to start without them."""

from cbplatform.env import EnvError
from cbplatform.settings.base import *  # noqa: F403
from cbplatform.settings.base import DATABASE_CONFIG, REDIS_URL, cache_settings, channel_layers, env

_missing = [
    name
    for name, present in (
        ("DATABASE_URL", DATABASE_CONFIG is not None),
        ("REDIS_URL", bool(REDIS_URL)),
        ("SECRET_KEY", bool(env.str("SECRET_KEY"))),
        ("ENCRYPTION_KEY", bool(env.list("ENCRYPTION_KEY"))),
    )
    if not present
]
if _missing:
    raise EnvError(f"production settings need {', '.join(_missing)}; see .env.example")
if not DATABASE_CONFIG["ENGINE"].endswith("postgresql"):
    raise EnvError("DATABASE_URL must be a postgres:// URL in production")

DEBUG = False
LOG_FORMAT = env.choice("LOG_FORMAT", default="json", choices=("plain", "json"))
LOGGING["handlers"]["console"]["formatter"] = LOG_FORMAT  # noqa: F405
SECRET_KEY = env.str("SECRET_KEY")
ENCRYPTION_KEYS = env.list("ENCRYPTION_KEY")
API_KEY_REQUIRED = env.bool("OPENAI_API_KEY_REQUIRED", "API_KEY_REQUIRED", default=True)
ALLOW_PRIVATE_UPSTREAMS = env.bool("ALLOW_PRIVATE_UPSTREAMS", default=False)
FUNCTIONS_ALLOW_PRIVATE_URLS = env.bool("FUNCTIONS_ALLOW_PRIVATE_URLS", default=False)

DATABASES = {"default": {**DATABASE_CONFIG, "CONN_MAX_AGE": 0, "CONN_HEALTH_CHECKS": True}}  # see base.py
CHANNEL_LAYERS = channel_layers(REDIS_URL)
CACHES = cache_settings(REDIS_URL)
EMBEDDED = False
AUTO_SETUP = False
SIMULATED_PROVIDER = env.bool("CB_SIMULATED_PROVIDER", default=False)

CELERY_BROKER_URL = REDIS_URL
CELERY_RESULT_BACKEND = None

SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=True)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=True)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_CONTENT_TYPE_NOSNIFF = True
