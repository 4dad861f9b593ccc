"""Nets for the tests: hypothesis strategies for random ones and a few with known behaviour."""

from __future__ import annotations

from hypothesis import strategies as st

from apps.workflows.engine import Arc, Net, Place, Transition, parse_definition


def net_from(raw: dict) -> Net:
    problems: list[str] = []
    net = parse_definition(raw, problems=problems)
    assert not problems, problems
    return net


@st.composite
def random_nets(draw, *, max_places=6, max_transitions=6, max_weight=3, state_machine=False):
    n_places = draw(st.integers(1, max_places))
    places = [f"p{i}" for i in range(n_places)]
    transitions = []
    for k in range(draw(st.integers(1, max_transitions))):
        if state_machine:
            inputs = (Arc(draw(st.sampled_from(places)), 1),)
            outputs = (Arc(draw(st.sampled_from(places)), 1),)
        else:
            ins = draw(st.lists(st.sampled_from(places), min_size=1, max_size=3, unique=True))
            outs = draw(st.lists(st.sampled_from(places), min_size=0, max_size=3, unique=True))
            inputs = tuple(Arc(p, draw(st.integers(1, max_weight))) for p in ins)
            outputs = tuple(Arc(p, draw(st.integers(1, max_weight))) for p in outs)
        transitions.append(Transition(f"t{k}", inputs, outputs))
    marking = tuple((p, n) for p in places if (n := draw(st.integers(0, 4))))
    return Net("random", "random", tuple(Place(p) for p in places), tuple(transitions), marking or (("p0", 1),),
               (places[-1],))


def markings_for(net: Net):
    return st.fixed_dictionaries({p.id: st.integers(0, 6) for p in net.places})


DOCUMENT_REVIEW = {
    "id": "document_review",
    "name": "Document review",
    "places": ["draft", "pending_review", "reviewed", "approved", "rejected"],
    "transitions": [
        {"id": "submit", "from_places": ["draft"], "to_place": "pending_review", "conditions": []},
        {"id": "review", "from_places": ["pending_review"], "to_place": "reviewed", "conditions": []},
        {"id": "approve", "from_places": ["reviewed"], "to_place": "approved", "conditions": []},
        {"id": "reject", "from_places": ["reviewed"], "to_place": "rejected", "conditions": []},
        {"id": "revise", "from_places": ["rejected"], "to_place": "draft", "conditions": []},
    ],
    "initial_place": "draft",
}

PARALLEL_REVIEW = {
    "id": "parallel_review",
    "places": [{"id": "submitted", "kind": "initial"}, "legal", "technical", "legal_done", "technical_done",
               {"id": "merged", "kind": "terminal"}],
    "transitions": [
        {"id": "split", "inputs": ["submitted"], "to_places": ["legal", "technical"]},
        {"id": "legal_ok", "inputs": ["legal"], "outputs": ["legal_done"]},
        {"id": "tech_ok", "inputs": ["technical"], "outputs": ["technical_done"]},
        {"id": "merge", "from_places": ["legal_done", "technical_done"], "to_place": "merged"},
    ],
}


def chain(n: int, *, prefix="s") -> dict:
    """A sequential net of n places (n-1 transitions), the bench's shape."""
    places = [f"{prefix}{i}" for i in range(n)]
    return {"id": f"chain{n}", "places": places, "initial_place": places[0], "final_places": [places[-1]],
            "transitions": [{"id": f"t{i}", "from_places": [places[i]], "to_place": places[i + 1]}
                            for i in range(n - 1)]}
