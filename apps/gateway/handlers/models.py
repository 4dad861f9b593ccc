"""GET /v1/models and GET /v1/models/{id}: what the caller's tenant can reach, with the built-in and the
tenant's virtual models."""

from __future__ import annotations

import orjson

from apps.core.errors import ApiError, ModelNotFound

from ..admission.authentication import authenticate
from ..resolve import reachable_models, resolve
from ..runtime import GatewayRuntime
from ..snapshot import VIRTUAL_MODELS, Snapshot
from . import Call


def _virtual_entry(name: str, strategy: str, **extra) -> dict:
    return {"id": name, "object": "model", "created": 0, "owned_by": "cbplatform", "provider": "cbplatform",
            "virtual": True, "routing_strategy": strategy, **extra, "supports_streaming": True}


def model_listing(rt: GatewayRuntime, snapshot: Snapshot, tenant_id: int | None) -> dict[str, dict]:
    """Cached per tenant until the next snapshot."""
    cached = rt.models_cache.get(tenant_id)
    if cached is not None:
        return cached
    listing: dict[str, dict] = {}
    for candidate in reachable_models(snapshot, tenant_id):
        m = candidate.model
        listing[m.model_id] = {
            "id": m.model_id, "object": "model", "created": m.created, "owned_by": m.provider_type,
            "provider": candidate.provider.type, "provider_slug": candidate.provider.slug, "mode": m.mode,
            "context_window": m.context_window, "max_output_tokens": m.max_output_tokens,
            "supports_streaming": "streaming" in m.capabilities,
            "cost_per_input_token": float(m.input_price), "cost_per_output_token": float(m.output_price),
            "capabilities": sorted(m.capabilities), "aliases": list(m.aliases), "tags": list(m.tags),
        }
    if listing:
        for name, strategy in VIRTUAL_MODELS.items():
            listing[name] = _virtual_entry(name, strategy)
        for (owner, name), virtual in snapshot.virtual_models.items():
            if owner is None or owner == tenant_id:
                if owner is None and (tenant_id, name) in snapshot.virtual_models:
                    continue  # the tenant's own definition wins
                listing[name] = _virtual_entry(name, virtual.strategy, candidates=list(virtual.candidates))
    rt.models_cache[tenant_id] = listing
    return listing


async def list_models(rt: GatewayRuntime, call: Call) -> None:
    tenant_id, _ = authenticate(call.scope, call.snapshot)
    data = list(model_listing(rt, call.snapshot, tenant_id).values())
    await call.respond.json(200, orjson.dumps({"object": "list", "data": data}))


async def get_model(rt: GatewayRuntime, call: Call) -> None:
    tenant_id, _ = authenticate(call.scope, call.snapshot)
    model_id = call.path[len("/v1/models/"):]
    listing = model_listing(rt, call.snapshot, tenant_id)
    entry = listing.get(model_id)
    if entry is None:
        try:
            candidate = resolve(call.snapshot, tenant_id, model_id, mode="chat")[0]
            entry = listing.get(candidate.model.model_id)
        except ApiError:
            entry = None
    if entry is None:
        raise ModelNotFound(f"The model `{model_id}` does not exist or you do not have access to it.", param="model")
    await call.respond.json(200, orjson.dumps(entry))
