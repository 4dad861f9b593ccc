"""What /v1/embeddings and /v1/completions share: candidates whose adapter supports the endpoint."""

from __future__ import annotations

from apps.core.errors import InvalidRequest
from apps.providers.adapters import registry

from ..resolve import Candidate, resolve
from ..snapshot import Snapshot


def plain_candidates(snapshot: Snapshot, tenant_id, body: dict, *, mode: str, capability: str) -> list[Candidate]:
    candidates = [c for c in resolve(snapshot, tenant_id, body["model"], mode=mode)
                  if getattr(registry.get(c.provider.type), capability)]
    if not candidates:
        kind = "embeddings" if mode == "embedding" else "the legacy completions endpoint"
        raise InvalidRequest(f"The model `{body['model']}` does not support {kind} here.", param="model",
                             code="model_not_supported")
    return candidates
