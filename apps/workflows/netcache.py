"""Nets of saved versions, parsed once per process: versions never change, so the cache never goes stale."""

from __future__ import annotations

import threading
from collections import OrderedDict

from .engine import Net, parse_definition
from .models import WorkflowVersion

_CACHE_SIZE = 1024
_nets: OrderedDict[int, tuple[Net, dict]] = OrderedDict()
_lock = threading.Lock()


def net_for_version(version_id: int, *, version: WorkflowVersion | None = None) -> tuple[Net, dict]:
    """(net, named rules) of a version; one query the first time a process meets it."""
    with _lock:
        hit = _nets.get(version_id)
        if hit is not None:
            _nets.move_to_end(version_id)
            return hit
    if version is None:
        version = WorkflowVersion.objects.only("net", "named_rules").get(pk=version_id)
    problems: list[str] = []
    net = parse_definition(version.net, problems=problems)
    if net is None or problems:  # a saved version passed these checks; failing now is a bug, not bad input
        raise RuntimeError(f"stored workflow version {version_id} does not parse: {problems}")
    entry = (net, version.named_rules or {})
    with _lock:
        _nets[version_id] = entry
        while len(_nets) > _CACHE_SIZE:
            _nets.popitem(last=False)
    return entry
