"""`planning.candidates_for`: the candidates of a model chain, remembered per snapshot."""

from __future__ import annotations

import pytest

from apps.core.errors import ModelNotFound
from apps.gateway.planning import candidates_for
from apps.gateway.snapshot import ProviderInfo, Snapshot
from tests.gateway.routing_factories import mod, opts, prov


def snapshot(*providers, models) -> Snapshot:
    return Snapshot(version="v1", tenants={}, keys={}, providers=list(providers), models=list(models))


def test_a_chain_is_resolved_once_per_snapshot_and_a_new_snapshot_resolves_again():
    openai, anthropic = prov("oai", "openai"), prov("ant", "anthropic")
    models = [mod("gpt-4o"), mod("claude-3-haiku", "anthropic")]
    first = snapshot(openai, anthropic, models=models)
    chain = opts(model="gpt-4o", fallback_models=("claude-3-haiku",))
    candidates, tiers = candidates_for(first, None, chain, mode="chat")
    assert [(c.provider.slug, c.model.model_id) for c in candidates] == [("oai", "gpt-4o"), ("ant", "claude-3-haiku")]
    assert tiers == (1, 3)
    assert candidates_for(first, None, chain, mode="chat") == (candidates, tiers)
    assert candidates_for(first, None, chain, mode="chat")[0] is candidates  # remembered, not resolved again
    assert candidates_for(first, None, opts(model="gpt-4o"), mode="chat")[0] == candidates[:1]  # another chain

    without_openai = snapshot(anthropic, models=models)  # a configuration change makes a new snapshot
    assert [c.provider.slug for c in candidates_for(without_openai, None, opts(model="claude-3-haiku"),
                                                    mode="chat")[0]] == ["ant"]
    with pytest.raises(ModelNotFound):  # a name that does not resolve is an error every time, never remembered
        candidates_for(without_openai, None, chain, mode="chat")
    with pytest.raises(ModelNotFound):
        candidates_for(without_openai, None, chain, mode="chat")


def test_made_up_names_do_not_grow_the_memo_without_end():
    openai = prov("oai", "openai")
    snap = snapshot(openai, models=[mod("gpt-4o")])
    for i in range(5000):  # `provider/anything` resolves to a passthrough model for any name
        candidates_for(snap, None, opts(model=f"oai/made-up-{i}"), mode="chat")
    assert 0 < len(snap.memo) <= 4096


def test_a_tenants_own_provider_is_never_remembered_for_another_tenant():
    """The memo is keyed by tenant: a provider one tenant owns stays out of another's candidates, whichever asks
    first."""
    shared = prov("shared", "openai")
    own = ProviderInfo(9001, "own", 7, "openai", "http://127.0.0.1:9", 0, {}, False, [(1, "sk-own")])
    snap = snapshot(own, shared, models=[mod("gpt-4o")])
    chain = opts(model="gpt-4o")
    for tenant in (8, 7, 8, None, 7):
        slugs = [c.provider.slug for c in candidates_for(snap, tenant, chain, mode="chat")[0]]
        assert slugs == (["own", "shared"] if tenant == 7 else ["shared"]), (tenant, slugs)
