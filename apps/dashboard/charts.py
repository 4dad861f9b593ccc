"""Bar charts as plain geometry for server-rendered SVG: no JavaScript, works offline."""

from __future__ import annotations

from decimal import Decimal

WIDTH, HEIGHT, GAP, LABEL_SPACE = 720, 180, 2, 18


def bar_chart(points: list[tuple[str, Decimal | float]], *, unit: str = "$") -> dict:
    """points: (label, value) in order → bars with x, y, width, height and a tooltip, plus the scale's top."""
    values = [float(value) for _, value in points]
    top = max(values, default=0.0) or 1.0
    count = max(len(points), 1)
    slot = WIDTH / count
    plot = HEIGHT - LABEL_SPACE
    bars = []
    for index, (label, value) in enumerate(points):
        height = round(plot * float(value) / top, 2)
        bars.append({"x": round(index * slot + GAP / 2, 2), "y": round(plot - height, 2),
                     "width": round(max(slot - GAP, 1), 2), "height": height, "label": label,
                     "title": f"{label}: {unit}{float(value):.4f}" if unit == "$" else f"{label}: {value}",
                     "show_label": index % max(1, count // 6) == 0})
    return {"width": WIDTH, "height": HEIGHT, "plot_height": plot, "bars": bars, "top": top, "unit": unit}
