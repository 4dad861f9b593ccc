"""Behavioural analysis over the reachability graph: deadlocks, dead transitions, unbounded places, soundness.

Guards are data-dependent, so they are taken as "may hold": the graph is the net's own. Exploration stops at
`cap` markings (reported). A final marking is where a case ends, so it is not explored further. A place is
unbounded when a marking strictly covers one of its ancestors (the Karp-Miller test along the path that
reached it); such a marking is reported and not expanded. Every finding comes with a firing sequence that
reaches it from the initial marking.

Soundness (van der Aalst): option to complete (a final marking stays reachable from every reachable marking),
proper completion (no marking puts tokens in a final place while others remain elsewhere), no dead transitions
— and, for a verdict at all, a bounded net explored in full.
"""

from __future__ import annotations

from collections import deque
from dataclasses import asdict, dataclass, field

from .net import Net

DEFAULT_CAP = 10_000
MAX_FINDINGS_PER_KIND = 20

Marking = tuple[int, ...]


@dataclass(frozen=True)
class Finding:
    kind: str  # deadlock | dead_transition | unbounded_place | no_option_to_complete | improper_completion | cap
    message: str
    path: list[str] = field(default_factory=list, hash=False)  # transitions fired from the initial marking
    marking: dict[str, int] = field(default_factory=dict, hash=False)
    subject: str | None = None  # the transition or place concerned


@dataclass
class Analysis:
    explored: int
    cap: int
    cap_hit: bool
    bounded: bool
    option_to_complete: bool | None  # None: not decided (cap hit or unbounded)
    proper_completion: bool | None
    no_dead_transitions: bool | None
    sound: bool
    findings: list[Finding]

    @property
    def deadlocks(self) -> list[Finding]:
        return [f for f in self.findings if f.kind == "deadlock"]

    @property
    def dead_transitions(self) -> list[str]:
        return [f.subject for f in self.findings if f.kind == "dead_transition"]

    @property
    def unbounded_places(self) -> list[str]:
        return [f.subject for f in self.findings if f.kind == "unbounded_place"]

    def as_dict(self) -> dict:
        out = asdict(self)
        out["summary"] = summary(self)
        return out


def summary(analysis: Analysis) -> str:
    if analysis.sound:
        return f"Sound ({analysis.explored} reachable markings)."
    kinds = sorted({f.kind for f in analysis.findings})
    return f"Not sound: {', '.join(kinds) or 'undecided'} ({analysis.explored} markings explored)."


def analyse(net: Net, *, cap: int = DEFAULT_CAP) -> Analysis:
    places = [p.id for p in net.places]
    index = {p: i for i, p in enumerate(places)}
    finals = [index[p] for p in net.final_places if p in index]
    final_set = set(finals)
    non_final = [i for i in range(len(places)) if i not in final_set]
    capacity = [p.capacity for p in net.places]
    pre = [[(index[a.place], a.weight) for a in t.inputs] for t in net.transitions]
    post = [[(index[a.place], a.weight) for a in t.outputs] for t in net.transitions]

    def is_final(m: Marking) -> bool:
        return any(m[i] for i in finals) and not any(m[i] for i in non_final)

    def successor(m: Marking, k: int) -> Marking | None:
        for i, w in pre[k]:
            if m[i] < w:
                return None
        after = list(m)
        for i, w in pre[k]:
            after[i] -= w
        for i, w in post[k]:
            after[i] += w
            if capacity[i] is not None and after[i] > capacity[i]:
                return None
        return tuple(after)

    start = tuple(dict(net.initial_marking).get(p, 0) for p in places)
    parent: dict[Marking, tuple[Marking, int] | None] = {start: None}
    edges: dict[Marking, list[Marking]] = {}
    fired: set[int] = set()
    findings: list[Finding] = []
    unbounded: set[int] = set()
    queue = deque([start])
    cap_hit = False

    def path_to(m: Marking) -> list[str]:
        steps = []
        while parent[m] is not None:
            m, k = parent[m]
            steps.append(net.transitions[k].id)
        return steps[::-1]

    def as_marking(m: Marking) -> dict[str, int]:
        return {places[i]: n for i, n in enumerate(m) if n}

    while queue:
        m = queue.popleft()
        if is_final(m):
            continue
        successors = edges.setdefault(m, [])
        for k in range(len(net.transitions)):
            after = successor(m, k)
            if after is None:
                continue
            fired.add(k)
            if after in parent:
                successors.append(after)
                continue
            grown = _covers_ancestor(after, m, parent)
            if grown:
                new = [i for i in grown if i not in unbounded]
                unbounded.update(grown)
                for i in new:
                    findings.append(Finding("unbounded_place", f"Place {places[i]!r} is unbounded: firing "
                                            f"{net.transitions[k].id!r} repeats a cycle that adds tokens to it.",
                                            [*path_to(m), net.transitions[k].id], as_marking(after), places[i]))
                continue
            if len(parent) >= cap:
                cap_hit = True
                continue
            parent[after] = (m, k)
            successors.append(after)
            queue.append(after)

    complete = not cap_hit and not unbounded
    deadlocks = [m for m, succ in edges.items() if not succ and not is_final(m)
                 and not any(successor(m, k) for k in range(len(net.transitions)))]
    for m in deadlocks[:MAX_FINDINGS_PER_KIND]:
        findings.append(Finding("deadlock", f"Dead marking {as_marking(m)} is not final: no transition is enabled.",
                                path_to(m), as_marking(m)))
    dead = [k for k in range(len(net.transitions)) if k not in fired]
    for k in dead:
        t = net.transitions[k]
        findings.append(Finding("dead_transition", f"Transition {t.id!r} can never fire"
                                + ("" if complete else " in the explored part of the graph") + ".", [], {}, t.id))
    # Option to complete: markings from which no final marking can be reached (deadlocks and livelocks alike).
    can_finish = {m for m in parent if is_final(m)}
    predecessors: dict[Marking, list[Marking]] = {}
    for m, succ in edges.items():
        for s in succ:
            predecessors.setdefault(s, []).append(m)
    todo = list(can_finish)
    while todo:
        for p in predecessors.get(todo.pop(), ()):
            if p not in can_finish:
                can_finish.add(p)
                todo.append(p)
    stuck = [m for m in parent if m not in can_finish and m in edges]
    stuck_not_dead = [m for m in stuck if edges[m]]
    for m in stuck_not_dead[:MAX_FINDINGS_PER_KIND]:
        findings.append(Finding("no_option_to_complete", f"From {as_marking(m)} no final marking can be reached.",
                                path_to(m), as_marking(m)))
    improper = [m for m in parent if any(m[i] for i in finals) and not is_final(m)]
    for m in improper[:MAX_FINDINGS_PER_KIND]:
        findings.append(Finding("improper_completion", f"Marking {as_marking(m)} has a token in a final place "
                                "while others remain elsewhere.", path_to(m), as_marking(m)))
    if cap_hit:
        findings.append(Finding("cap", f"Exploration stopped at {cap} markings; the verdicts are not final.",
                                [], {}))
    option = (not stuck) if complete else None
    proper = (not improper) if complete else (False if improper else None)
    no_dead = (not dead) if complete else None
    sound = bool(complete and option and proper and no_dead)
    return Analysis(len(parent), cap, cap_hit, not unbounded, option, proper, no_dead, sound, findings)


def _covers_ancestor(after: Marking, m: Marking, parent) -> list[int]:
    """Places where `after` strictly exceeds an ancestor (m or one before it on its path) it covers."""
    node: Marking | None = m
    total = sum(after)
    while node is not None:
        # Strict cover needs more tokens in all; the sum rejects most ancestors before the place-wise test.
        if sum(node) < total and all(a >= b for a, b in zip(after, node, strict=True)):
            return [i for i, (a, b) in enumerate(zip(after, node, strict=True)) if a > b]
        link = parent[node]
        node = link[0] if link else None
    return []
