"""Bar charts as server-side SVG geometry: the numbers in, rectangles out, drawn by the
templates with classes only (no script, no inline style), so a chart needs no JavaScript
and its table equivalent sits next to it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

# Colour classes of ui/static/portal.css, by status (the rest take `bar`).
STATUS_CLASSES = {
    "delivered": "bar-ok",
    "read": "bar-ok",
    "sent": "bar-wait",
    "enqueued": "bar-wait",
    "failed": "bar-bad",
    "rejected": "bar-bad",
    "enqueued_failed": "bar-bad",
}


@dataclass(frozen=True)
class Bar:
    label: str
    value: int
    x: float
    y: float
    width: float
    height: float
    css: str = "bar"


@dataclass(frozen=True)
class Chart:
    title: str
    width: int
    height: int
    bars: tuple[Bar, ...]
    labels: tuple[Bar, ...] = ()  # axis labels: one per column or row
    legend: tuple[tuple[str, str], ...] = ()  # (label, class)

    @property
    def empty(self) -> bool:
        return not any(b.value for b in self.bars)

    # A column chart's marks as the column_chart macro draws them, written here in one pass
    # (the text escaped, numbers as the template prints them): a template loop costs tens
    # of microseconds a bar, and the dashboard draws ~150 per view.
    def column_bars(self) -> Markup:
        return Markup(
            "".join(
                f'<rect class="{escape(b.css)}" x="{b.x}" y="{b.y}" width="{b.width}" '
                f'height="{b.height}"><title>{escape(b.label.replace("_", " "))}: '
                f"{b.value:,}</title></rect>"
                for b in self.bars
            )
        )

    def column_labels(self) -> Markup:
        return Markup(
            "".join(
                f'<text class="chart-label" x="{label.x}" y="{label.y}">{escape(label.label)}</text>'
                for label in self.labels
            )
        )


def _scale(values: Sequence[int]) -> int:
    return max([1, *values])


def horizontal_bars(title: str, items: Sequence[tuple[str, int]], *, css: str = "bar") -> Chart:
    """One row per item, its bar as long as its share of the largest value."""
    row, label_width, width = 26, 160, 600
    top = _scale([v for _, v in items])
    bars = []
    labels = []
    for n, (label, value) in enumerate(items):
        y = n * row
        length = (width - label_width - 60) * value / top
        bars.append(Bar(label, value, label_width, y + 4, round(length, 1), row - 8, css))
        labels.append(Bar(label, value, 0, y + row - 9, label_width, 0))
    return Chart(title, width, max(row, row * len(items)), tuple(bars), tuple(labels))


def stacked_columns(
    title: str, columns: Sequence[str], series: Sequence[tuple[str, Sequence[int]]]
) -> Chart:
    """One column per label in `columns`, stacked by series (label, value per column)."""
    width, height, base = 600, 200, 180
    n = max(1, len(columns))
    slot = width / n
    totals = [sum(values[i] for _, values in series) for i in range(len(columns))]
    top = _scale(totals)
    bars: list[Bar] = []
    for i in range(len(columns)):
        y = float(base)
        for name, values in series:
            if not values[i]:
                continue
            h = (base - 10) * values[i] / top
            y -= h
            css = STATUS_CLASSES.get(name, "bar")
            bars.append(
                Bar(
                    f"{columns[i]} {name}",
                    values[i],
                    round(i * slot + 1, 1),
                    round(y, 1),
                    round(max(slot - 2, 1), 1),
                    round(h, 1),
                    css,
                )
            )
    step = max(1, n // 6)
    labels = tuple(
        Bar(columns[i], totals[i], round(i * slot, 1), height - 4, slot, 0)
        for i in range(0, len(columns), step)
    )
    legend = tuple((name, STATUS_CLASSES.get(name, "bar")) for name, _ in series)
    return Chart(title, width, height, tuple(bars), labels, legend)
