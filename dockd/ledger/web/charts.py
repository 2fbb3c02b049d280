"""Bar charts of a week as inline SVG (no script, no CDN: the page works offline)."""

from __future__ import annotations

from dataclasses import dataclass
from html import escape


@dataclass(frozen=True)
class Series:
    """One coloured set of bars."""

    name: str
    values: list[int]
    css_class: str


def bar_chart(labels: list[str], series: list[Series], title: str, width: int = 640,
              height: int = 200) -> str:
    """Grouped vertical bars, one group per label, with a legend and value labels."""
    top = max([1, *[v for s in series for v in s.values]])
    left, bottom, right, head = 40, 28, 10, 24
    plot_w, plot_h = width - left - right, height - bottom - head
    group = plot_w / max(1, len(labels))
    bar = group * 0.8 / max(1, len(series))
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {width} '
             f'{height}" role="img" aria-label="{escape(title)}">',
             f'<title>{escape(title)}</title>',
             f'<line x1="{left}" y1="{head + plot_h}" x2="{width - right}" y2="{head + plot_h}"'
             ' class="axis"/>',
             f'<text x="{left - 4}" y="{head + 8}" class="tick" text-anchor="end">{top}</text>',
             f'<text x="{left - 4}" y="{head + plot_h}" class="tick" text-anchor="end">0</text>']
    for i, label in enumerate(labels):
        x0 = left + i * group + group * 0.1
        for j, s in enumerate(series):
            value = s.values[i]
            h = plot_h * value / top
            x = x0 + j * bar
            parts.append(f'<rect x="{x:.1f}" y="{head + plot_h - h:.1f}" width="{bar - 1:.1f}" '
                         f'height="{h:.1f}" class="{s.css_class}"><title>{escape(s.name)} '
                         f'{escape(label)}: {value}</title></rect>')
            if value:
                parts.append(f'<text x="{x + bar / 2:.1f}" y="{head + plot_h - h - 2:.1f}" '
                             f'class="value" text-anchor="middle">{value}</text>')
        parts.append(f'<text x="{x0 + group * 0.4:.1f}" y="{height - 10}" class="tick" '
                     f'text-anchor="middle">{escape(label)}</text>')
    for j, s in enumerate(series):
        x = left + j * 150
        parts.append(f'<rect x="{x}" y="4" width="10" height="10" class="{s.css_class}"/>'
                     f'<text x="{x + 14}" y="13" class="legend">{escape(s.name)}</text>')
    parts.append("</svg>")
    return "".join(parts)
