"""Small SVG charts for the dashboard, drawn on the server (no JavaScript, no chart library).

Each function returns an ``<svg>`` string that scales to its container (a viewBox, no fixed
size); every text is escaped. Empty data gives a chart saying so.
"""
from __future__ import annotations

from typing import Optional, Sequence

from markupsafe import Markup, escape

W, H = 640, 260
LEFT, RIGHT, TOP, BOTTOM = 44, 12, 16, 44


def _empty(title: str, css: str) -> Markup:
    return Markup(f'<svg class="chart {css}" viewBox="0 0 {W} 80" role="img" aria-label="{escape(title)}">'
                  f'<text x="{W / 2}" y="44" text-anchor="middle" class="muted">暂无数据</text></svg>')


def compliance_by_month(months: Sequence[tuple[str, Optional[float]]], target: Optional[float] = None,
                        title: str = "按月达标率") -> Markup:
    """Columns of compliance % per month (0–100), with the target as a dashed line."""
    points = [(m, v) for m, v in months]
    if not points:
        return _empty(title, "compliance-chart")
    plot_w, plot_h = W - LEFT - RIGHT, H - TOP - BOTTOM
    step = plot_w / len(points)
    bar = min(48.0, step * 0.6)
    out = [f'<svg class="chart compliance-chart" viewBox="0 0 {W} {H}" role="img" aria-label="{escape(title)}">',
           f"<title>{escape(title)}</title>"]
    for pct in (0, 50, 100):
        y = TOP + plot_h * (1 - pct / 100)
        out.append(f'<line x1="{LEFT}" x2="{W - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>'
                   f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" class="axis">{pct}%</text>')
    for i, (month, value) in enumerate(points):
        x = LEFT + step * i + (step - bar) / 2
        label_x = LEFT + step * i + step / 2
        if value is None:
            out.append(f'<text x="{label_x:.1f}" y="{TOP + plot_h - 4:.1f}" text-anchor="middle" '
                       'class="muted">—</text>')
        else:
            h = plot_h * value / 100
            ok = target is None or value >= target
            out.append(f'<rect x="{x:.1f}" y="{TOP + plot_h - h:.1f}" width="{bar:.1f}" height="{h:.1f}" '
                       f'class="bar {"ok" if ok else "low"}" data-month="{escape(month)}" data-value="{value}">'
                       f"<title>{escape(month)}：{value}%</title></rect>"
                       f'<text x="{label_x:.1f}" y="{TOP + plot_h - h - 4:.1f}" text-anchor="middle" '
                       f'class="value">{value:g}%</text>')
        out.append(f'<text x="{label_x:.1f}" y="{H - BOTTOM + 18}" text-anchor="middle" class="axis">'
                   f"{escape(month)}</text>")
    if target is not None:
        y = TOP + plot_h * (1 - target / 100)
        out.append(f'<line x1="{LEFT}" x2="{W - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" class="target"/>'
                   f'<text x="{W - RIGHT}" y="{y - 4:.1f}" text-anchor="end" class="target-label">'
                   f"目标 {target:g}%</text>")
    out.append("</svg>")
    return Markup("".join(out))


def breaches_by_building(rows: Sequence[tuple[str, int]], title: str = "各楼栋超时数") -> Markup:
    """Horizontal bars: SLA breaches per building."""
    if not rows:
        return _empty(title, "breach-chart")
    row_h, label_w = 26, 70
    height = TOP + row_h * len(rows) + 8
    most = max((n for _, n in rows), default=0) or 1
    plot_w = W - label_w - RIGHT - 40
    out = [f'<svg class="chart breach-chart" viewBox="0 0 {W} {height}" role="img" aria-label="{escape(title)}">',
           f"<title>{escape(title)}</title>"]
    for i, (building, n) in enumerate(rows):
        y = TOP + row_h * i
        w = plot_w * n / most
        name = "无房号" if building == "-" else f"{building} 栋"
        out.append(f'<text x="{label_w - 6}" y="{y + 16}" text-anchor="end" class="axis">{escape(name)}</text>'
                   f'<rect x="{label_w}" y="{y + 3}" width="{w:.1f}" height="{row_h - 8}" class="bar breach" '
                   f'data-building="{escape(building)}" data-value="{n}"><title>{escape(name)}：{n}</title></rect>'
                   f'<text x="{label_w + w + 6:.1f}" y="{y + 16}" class="value">{n}</text>')
    out.append("</svg>")
    return Markup("".join(out))
