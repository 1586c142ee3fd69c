"""Server-side SVG charts: small, dependency-free, accessible (role=img, <title>, <desc>, labels).

Every text that goes into the SVG is XML-escaped; the result is safe to inline in a page.
Values of None (withheld for privacy) are drawn as gaps and said so in the description.
"""

from __future__ import annotations

from collections.abc import Sequence
from xml.sax.saxutils import escape

PALETTE = ("#2563eb", "#16a34a", "#d97706", "#9333ea", "#dc2626")
# Every figure the dashboard shows, by its key in the reports: the label people read (one
# mapping for charts, tables and totals; never the raw key) and the one colour its series has
# on every chart.
LABELS = {
    "active_learners": "Active learners",
    "panel_opens": "Panel opens",
    "aids_opened": "Aids opened",
    "searches": "Searches",
    "ratings": "Ratings",
    "opened": "Times opened",
    "shown": "Times shown",
    "links": "Links followed",
    "helpful": "Helpful",
    "not_helpful": "Not helpful",
    "helpful_ratio": "Share helpful",
    "people": "People",
    "zero_results": "Searches without results",
    "searches_without_results": "Searches without results",
    # peer learning (server/peer/stats.py)
    "asked": "Questions asked",
    "answered": "Answered",
    "unanswered": "Unanswered",
    "tips_submitted": "Tips submitted",
    "tips_approved": "Tips approved",
    "tips_rejected": "Tips rejected",
    "tips_pending": "Tips waiting for moderation",
    "median_hours_to_moderate": "Median hours to moderate a tip",
    "questions_asked": "Questions asked",
    "questions_answered": "Questions answered",
    "questions_unanswered": "Questions unanswered",
    "median_hours_to_first_answer": "Median hours to first answer",
    "answers_accepted": "Accepted answers",
    "answers_to_aids": "Accepted answers turned into aids",
    "peer_people": "People who shared or asked",
}
SERIES_COLORS = {
    "active_learners": "#2563eb",
    "panel_opens": "#16a34a",
    "aids_opened": "#d97706",
    "searches": "#9333ea",
    "ratings": "#0891b2",
    "zero_results": "#dc2626",
    "helpful": "#65a30d",
    "not_helpful": "#be185d",
    "asked": "#7c3aed",
    "answered": "#059669",
    "unanswered": "#ea580c",
}


def label_of(key: str) -> str:
    """The readable label of a figure key ('active_learners' -> 'Active learners')."""
    return LABELS.get(key) or key.replace("_", " ").capitalize()


def color_of(key: str, index: int = 0) -> str:
    return SERIES_COLORS.get(key) or PALETTE[index % len(PALETTE)]


W, H = 720, 260
LEFT, RIGHT, TOP, BOTTOM = 48, 16, 28, 56


def _nice_max(v: float) -> float:
    if v <= 0:
        return 1.0
    mag = 10 ** (len(str(int(v))) - 1)
    for step in (1, 2, 5, 10):
        if v <= step * mag:
            return float(step * mag)
    return float(10 * mag)


def _fmt(v: float) -> str:
    return f"{v:,.0f}" if v >= 10 or v == int(v) else f"{v:.2g}"


def _frame(chart_id: str, title: str, desc: str, body: list[str]) -> str:
    t, d = f"{chart_id}-title", f"{chart_id}-desc"
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {W} {H}" '
        f'role="img" aria-labelledby="{t} {d}" font-family="system-ui, sans-serif" '
        f'font-size="11">'
        f'<title id="{t}">{escape(title)}</title><desc id="{d}">{escape(desc)}</desc>'
        + "".join(body)
        + "</svg>"
    )


def _axes(ymax: float) -> list[str]:
    out = []
    plot_h = H - TOP - BOTTOM
    for i in range(5):
        v = ymax * i / 4
        y = TOP + plot_h - plot_h * i / 4
        out.append(
            f'<line x1="{LEFT}" x2="{W - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e5e7eb"/>'
            f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" fill="#4b5563">'
            f"{_fmt(v)}</text>"
        )
    return out


def _describe(labels: Sequence[str], series: dict[str, Sequence[float | None]]) -> str:
    parts = []
    for key, values in series.items():
        name = label_of(key)
        shown = [(lab, v) for lab, v in zip(labels, values, strict=False) if v is not None]
        if not shown:
            parts.append(f"{name}: no data.")
            continue
        top_label, top_value = max(shown, key=lambda p: p[1])
        hidden = sum(1 for v in values if v is None)
        parts.append(
            f"{name}: total {_fmt(sum(v for _, v in shown))}, highest {_fmt(top_value)} "
            f"({top_label})" + (f", {hidden} withheld (too few people)" if hidden else "") + "."
        )
    return " ".join(parts)


def _legend(keys: Sequence[str]) -> list[str]:
    out = []
    x = LEFT
    for i, key in enumerate(keys):
        color, name = color_of(key, i), label_of(key)
        out.append(
            f'<rect x="{x}" y="8" width="10" height="10" fill="{color}" '
            f'data-series="{escape(key)}"/>'
            f'<text x="{x + 14}" y="17" fill="#111827">{escape(name)}</text>'
        )
        x += 24 + 7 * len(name)
    return out


def bar_chart(
    chart_id: str, title: str, labels: Sequence[str], series: dict[str, Sequence[float | None]]
) -> str:
    """Grouped vertical bars, one group per label; `series` maps figure keys (LABELS) to
    values, so a figure has the same label and colour on every chart."""
    values = [v for s in series.values() for v in s if v is not None]
    ymax = _nice_max(max(values, default=0))
    plot_w, plot_h = W - LEFT - RIGHT, H - TOP - BOTTOM
    n = max(1, len(labels))
    group_w = plot_w / n
    bar_w = max(1.0, group_w * 0.8 / max(1, len(series)))
    body = _axes(ymax) + _legend(list(series))
    every = max(1, n // 12)
    for i, label in enumerate(labels):
        x0 = LEFT + i * group_w + group_w * 0.1
        for j, (key, vals) in enumerate(series.items()):
            v = vals[i] if i < len(vals) else None
            if v is None:
                continue
            h = plot_h * v / ymax
            body.append(
                f'<rect x="{x0 + j * bar_w:.1f}" y="{TOP + plot_h - h:.1f}" width="{bar_w:.1f}" '
                f'height="{h:.1f}" fill="{color_of(key, j)}" data-series="{escape(key)}">'
                f"<title>{escape(label)}: {escape(label_of(key))} {_fmt(v)}</title></rect>"
            )
        if i % every == 0:
            short = label if len(label) <= 14 else label[:13] + "…"
            cx = LEFT + i * group_w + group_w / 2
            body.append(
                f'<text x="{cx:.1f}" y="{H - BOTTOM + 14}" text-anchor="end" fill="#374151" '
                f'transform="rotate(-30 {cx:.1f} {H - BOTTOM + 14})">{escape(short)}</text>'
            )
    return _frame(chart_id, title, _describe(labels, series), body)


def line_chart(
    chart_id: str, title: str, labels: Sequence[str], series: dict[str, Sequence[float | None]]
) -> str:
    """One line per series (figure key -> values) over the labels (days); None breaks it."""
    values = [v for s in series.values() for v in s if v is not None]
    ymax = _nice_max(max(values, default=0))
    plot_w, plot_h = W - LEFT - RIGHT, H - TOP - BOTTOM
    n = len(labels)
    step = plot_w / max(1, n - 1)
    body = _axes(ymax) + _legend(list(series))
    for j, (key, vals) in enumerate(series.items()):
        color, name = color_of(key, j), label_of(key)
        path: list[str] = []
        pen_up = True
        for i, v in enumerate(vals):
            if v is None:
                pen_up = True
                continue
            x = LEFT + i * step if n > 1 else LEFT + plot_w / 2
            y = TOP + plot_h - plot_h * v / ymax
            path.append(f"{'M' if pen_up else 'L'}{x:.1f},{y:.1f}")
            pen_up = False
            if n <= 62:
                body.append(
                    f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2.5" fill="{color}">'
                    f"<title>{escape(labels[i])}: {escape(name)} {_fmt(v)}</title></circle>"
                )
        if path:
            body.append(
                f'<path d="{" ".join(path)}" fill="none" stroke="{color}" stroke-width="2" '
                f'data-series="{escape(key)}"/>'
            )
    every = max(1, n // 10)
    for i, label in enumerate(labels):
        if i % every == 0:
            x = LEFT + i * step if n > 1 else LEFT + plot_w / 2
            body.append(
                f'<text x="{x:.1f}" y="{H - BOTTOM + 16}" text-anchor="middle" fill="#374151">'
                f"{escape(label[5:] if len(label) == 10 else label)}</text>"
            )
    return _frame(chart_id, title, _describe(labels, series), body)
