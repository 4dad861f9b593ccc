"""Embedded default: one command, no services. SQLite, in-memory layers, a simulated provider.

Setting DATABASE_URL / REDIS_URL here switches the same mode onto Postgres / Redis, which is how
developers run against real services without production's strictness.
"""

from cbplatform.env import read_or_create_secret
from cbplatform.settings.base import *  # noqa: F403
from cbplatform.settings.base import REDIS_URL, VAR_DIR, cache_settings, channel_layers, database_settings, env

DEBUG = env.bool("DEBUG", default=False)
SECRET_KEY = env.str("SECRET_KEY") or read_or_create_secret(VAR_DIR / "secret_key")
ENCRYPTION_KEYS = env.list("ENCRYPTION_KEY")  # empty: derived from SECRET_KEY (see apps.core.crypto)
API_KEY_REQUIRED = env.bool("OPENAI_API_KEY_REQUIRED", "API_KEY_REQUIRED", default=False)
# Requests without a key act for this tenant (its providers, its dashboard); the first start creates it.
ANONYMOUS_TENANT = env.str("ANONYMOUS_TENANT", default="demo")

DATABASES = database_settings(VAR_DIR / "cbplatform.sqlite3")
CHANNEL_LAYERS = channel_layers(REDIS_URL)
CACHES = cache_settings(REDIS_URL)
EMBEDDED = DATABASES["default"]["ENGINE"].endswith("sqlite3")

# Embedded: first start migrates, seeds a demo tenant/admin/key and the simulated provider.
AUTO_SETUP = env.bool("CB_AUTO_SETUP", default=True)
DEMO_ADMIN_PASSWORD = env.str("CB_DEMO_ADMIN_PASSWORD", default="admin")
SIMULATED_PROVIDER = env.bool("CB_SIMULATED_PROVIDER", default=True)
# Enabled by default here, but only as a fallback: real providers (OPENAI_API_KEY, …) serve `auto` and `cb:*`;
# an operator who sets CB_SIMULATED_PROVIDER=true routes to it like any provider.
SIMULATED_PROVIDER_EXPLICIT = env.raw("CB_SIMULATED_PROVIDER")[1] not in (None, "")

CELERY_BROKER_URL = REDIS_URL or "memory://"
CELERY_TASK_ALWAYS_EAGER = not REDIS_URL
