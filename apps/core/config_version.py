"""The configuration version: every process's in-memory snapshot reloads when it changes.

Writes of configuration (tenants, keys, providers, credentials, catalogue, budgets, cost rules) bump it after
their transaction commits, so a reader never sees the new version before the new rows: a Redis key shared by
every process, or, without Redis (the embedded default), a file under VAR_DIR that other processes on the host
(`manage.py createapikey`) replace. The gateway checks it before admitting each request (runtime.py).
"""

from __future__ import annotations

import itertools
import logging
import os
import tempfile
import uuid
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.db.models.signals import post_delete, post_save

from apps.core import redis as cb_redis

logger = logging.getLogger(__name__)

REDIS_KEY = "cb:config:version"
_local_counter = itertools.count(1)
_local_version = 0


def version_file() -> Path:
    """Without Redis (the embedded default), where other processes on this host (`manage.py createapikey`, a
    shell) leave the version for the server to see: replaced atomically, so its inode changes on every bump."""
    return Path(settings.VAR_DIR) / "config-version"


def file_version() -> tuple[int, int] | None:
    """The version file's identity (inode, mtime): one stat, no read."""
    try:
        stat = os.stat(version_file())
    except OSError:
        return None
    return stat.st_ino, stat.st_mtime_ns


def _bump_file() -> None:
    path = version_file()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".config-version-")
        with os.fdopen(fd, "w") as handle:
            handle.write(uuid.uuid4().hex)
        os.replace(temporary, path)
    except OSError as exc:  # a read-only disk must not fail an admin save; snapshots also poll on a timer
        logger.warning("could not bump the config version file: %s", type(exc).__name__)


def _bump() -> None:
    global _local_version
    _local_version = next(_local_counter)
    if not cb_redis.configured():
        _bump_file()
        return
    try:
        # A fresh random token, not a counter: after Redis loses the key (restart, flush), a counter can
        # climb back to exactly the value a process's snapshot holds, and that change would be missed.
        cb_redis.sync_client().set(REDIS_KEY, uuid.uuid4().hex)
    except Exception as exc:  # Redis down must not fail an admin save; snapshots also poll on a timer
        logger.warning("could not bump config version in Redis: %s", type(exc).__name__)


def config_changed() -> None:
    transaction.on_commit(_bump)


def local_version() -> int:
    return _local_version


def track(*models) -> None:
    """Bump the version whenever one of these models is saved or deleted (admin, API, shell)."""
    def handler(**kwargs):
        config_changed()

    for model in models:
        post_save.connect(handler, sender=model, weak=False, dispatch_uid=f"cfg-save-{model._meta.label}")
        post_delete.connect(handler, sender=model, weak=False, dispatch_uid=f"cfg-del-{model._meta.label}")
