"""Tests: the real Postgres and Redis of this machine kind, never SQLite or fakes."""

from cbplatform.settings.base import *  # noqa: F403
from cbplatform.settings.base import Env, cache_settings, channel_layers

env = Env()
REDIS_URL = env.url("REDIS_URL", default="redis://127.0.0.1:6379/15", schemes=("redis", "rediss", "unix"))
_db = env.database("DATABASE_URL") or Env({"DATABASE_URL": "postgres://postgres@127.0.0.1:5432/cbplatform"}).database()
DATABASES = {"default": {**_db, "CONN_MAX_AGE": 0}}

DEBUG = False
SECRET_KEY = "test-secret-key-not-for-production-0123456789abcdefghijklmnop"  # noqa: S105
ENCRYPTION_KEYS = ["mX1v3cC0b8c1bqkqfQ0dTqfH4J3z7Q1C3n4Ykq0q2e8="]
API_KEY_REQUIRED = True
CHANNEL_LAYERS = channel_layers(REDIS_URL)
CACHES = cache_settings(REDIS_URL)
EMBEDDED = False
AUTO_SETUP = False
SIMULATED_PROVIDER = True
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
CELERY_BROKER_URL = REDIS_URL
REALTIME_RELAY_OUTSIDE_WEB = "inline"  # see base.py
