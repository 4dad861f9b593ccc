"""The net drawn as server-rendered SVG (no JavaScript): a layered layout by breadth-first depth from the
initially marked places, places as circles holding their token counts, transitions as bars, arcs as arrows with
their weights. Marked places are highlighted."""

from __future__ import annotations

import math
from collections import deque
from html import escape

from .engine import Net

COLUMN, ROW, MARGIN, RADIUS, BAR_W, BAR_H = 130, 90, 50, 22, 12, 46
MARKED_FILL, PLACE_FILL, FINAL_STROKE = "#fde68a", "#ffffff", "#15803d"


def _layers(net: Net) -> dict[tuple[str, str], int]:
    """(kind, id) -> column: places at even depths, transitions at odd ones."""
    depth: dict[tuple[str, str], int] = {}
    queue = deque()
    for place, _ in net.initial_marking:
        depth[("p", place)] = 0
        queue.append(("p", place))
    outgoing = {p.id: [t for t in net.transitions if any(a.place == p.id for a in t.inputs)] for p in net.places}
    while queue:
        node = queue.popleft()
        if node[0] == "p":
            nexts = [("t", t.id) for t in outgoing.get(node[1], [])]
        else:
            nexts = [("p", a.place) for a in net.transition(node[1]).outputs]
        for nxt in nexts:
            if nxt not in depth:
                depth[nxt] = depth[node] + 1
                queue.append(nxt)
    last = max(depth.values(), default=0)
    spare = last + 1 if last % 2 else last + 2  # unreachable nodes (the analysis reports them) go after the rest
    for p in net.places:
        depth.setdefault(("p", p.id), spare)
    for t in net.transitions:
        depth.setdefault(("t", t.id), spare + 1)
    return depth


def layout(net: Net) -> dict[tuple[str, str], tuple[float, float]]:
    columns: dict[int, list[tuple[str, str]]] = {}
    for node, column in _layers(net).items():
        columns.setdefault(column, []).append(node)
    tallest = max(len(nodes) for nodes in columns.values())
    positions = {}
    for column, nodes in columns.items():
        offset = (tallest - len(nodes)) * ROW / 2
        for row, node in enumerate(nodes):
            positions[node] = (MARGIN + column * COLUMN, MARGIN + offset + row * ROW)
    return positions


def _edge(start, end, *, start_is_place: bool, weight: int) -> str:
    (x1, y1), (x2, y2) = start, end
    angle = math.atan2(y2 - y1, x2 - x1)
    # Leave the circle / bar and stop short of the target, so the arrowhead shows.
    gap_start = RADIUS if start_is_place else BAR_W / 2 + 2
    gap_end = BAR_W / 2 + 4 if start_is_place else RADIUS + 4
    sx, sy = x1 + gap_start * math.cos(angle), y1 + gap_start * math.sin(angle)
    ex, ey = x2 - gap_end * math.cos(angle), y2 - gap_end * math.sin(angle)
    if x2 < x1:  # a backward arc (a loop) bends below the row instead of crossing the nodes in between
        sx, sy, ex, ey = x1, y1 + (RADIUS if start_is_place else BAR_H / 2), x2, y2 + (
            BAR_H / 2 + 4 if start_is_place else RADIUS + 4)
        cx, cy = (sx + ex) / 2, max(sy, ey) + 40 + abs(x1 - x2) / 8
        out = (f'<path class="arc back" d="M {sx:.1f} {sy:.1f} Q {cx:.1f} {cy:.1f} {ex:.1f} {ey:.1f}" fill="none" '
               f'stroke="#94a3b8" stroke-width="1.5" marker-end="url(#arrow)"/>')
        mx, my = cx, (max(sy, ey) + cy) / 2
    else:
        out = (f'<line class="arc" x1="{sx:.1f}" y1="{sy:.1f}" x2="{ex:.1f}" y2="{ey:.1f}" stroke="#475569" '
               f'stroke-width="1.5" marker-end="url(#arrow)"/>')
        mx, my = (sx + ex) / 2, (sy + ey) / 2 - 6
    if weight != 1:
        out += f'<text class="weight" x="{mx:.1f}" y="{my:.1f}" font-size="12" text-anchor="middle">{weight}</text>'
    return out


def net_svg(net: Net, *, marking: dict[str, int] | None = None, title: str = "") -> str:
    """The SVG markup. `marking`: token counts per place (an instance's, or totals over running instances)."""
    marking = marking or {}
    positions = layout(net)
    width = max(x for x, _ in positions.values()) + MARGIN + 40
    height = max(y for _, y in positions.values()) + MARGIN + 20 + 60  # room for loops bending below
    finals = set(net.final_places)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="petri-net" width="{width:.0f}" height="{height:.0f}" '
             f'viewBox="0 0 {width:.0f} {height:.0f}" style="max-width:100%;height:auto" font-family="sans-serif" '
             'role="img" '
             f'aria-label="{escape(title or net.name)}">',
             '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" '
             'orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" fill="#475569"/></marker></defs>']
    for t in net.transitions:
        tpos = positions[("t", t.id)]
        for arc in t.inputs:
            parts.append(_edge(positions[("p", arc.place)], tpos, start_is_place=True, weight=arc.weight))
        for arc in t.outputs:
            parts.append(_edge(tpos, positions[("p", arc.place)], start_is_place=False, weight=arc.weight))
    for p in net.places:
        x, y = positions[("p", p.id)]
        count = marking.get(p.id, 0)
        fill = MARKED_FILL if count else PLACE_FILL
        stroke, stroke_width = (FINAL_STROKE, 3) if p.id in finals else ("#1e293b", 1.5)
        parts.append(f'<g class="place{" marked" if count else ""}" data-place="{escape(p.id)}" '
                     f'data-tokens="{count}"><title>{escape(p.label)} ({p.kind}): {count} token(s)</title>'
                     f'<circle cx="{x:.0f}" cy="{y:.0f}" r="{RADIUS}" fill="{fill}" stroke="{stroke}" '
                     f'stroke-width="{stroke_width}"/>')
        if count:
            parts.append(f'<text class="count" x="{x:.0f}" y="{y + 5:.0f}" font-size="15" font-weight="bold" '
                         f'text-anchor="middle">{count}</text>')
        parts.append(f'<text class="label" x="{x:.0f}" y="{y + RADIUS + 16:.0f}" font-size="12" '
                     f'text-anchor="middle">{escape(p.label)}</text></g>')
    for t in net.transitions:
        x, y = positions[("t", t.id)]
        badge = " ⏱" if t.timed else (" ⚡" if t.automatic else "")
        parts.append(f'<g class="transition" data-transition="{escape(t.id)}"><title>{escape(t.label)}'
                     f'{" (guarded)" if t.has_guard else ""}</title>'
                     f'<rect x="{x - BAR_W / 2:.0f}" y="{y - BAR_H / 2:.0f}" width="{BAR_W}" height="{BAR_H}" '
                     f'fill="{"#7c3aed" if t.has_guard else "#1e293b"}"/>'
                     f'<text class="label" x="{x:.0f}" y="{y - BAR_H / 2 - 6:.0f}" font-size="11" '
                     f'text-anchor="middle">{escape(t.label)}{badge}</text></g>')
    parts.append("</svg>")
    return "".join(parts)
