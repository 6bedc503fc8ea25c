"""The column chart's marks, written in Python for the dashboard's ~150 bars: text escaped,
numbers as the template printed them."""

from __future__ import annotations

from markupsafe import Markup

from portal.charts import stacked_columns


def test_column_marks_escape_text_and_format_counts() -> None:
    chart = stacked_columns(
        "Messages", ["01 <b>", "02 Dec"], [("enqueued_failed", [1234, 0]), ("x&y", [0, 5])]
    )
    bars = chart.column_bars()
    assert isinstance(bars, Markup)
    assert bars == (
        '<rect class="bar-bad" x="1.0" y="10.0" width="298.0" height="170.0">'
        "<title>01 &lt;b&gt; enqueued failed: 1,234</title></rect>"
        '<rect class="bar" x="301.0" y="179.3" width="298.0" height="0.7">'
        "<title>02 Dec x&amp;y: 5</title></rect>"
    )
    assert chart.column_labels() == (
        '<text class="chart-label" x="0.0" y="196">01 &lt;b&gt;</text>'
        '<text class="chart-label" x="300.0" y="196">02 Dec</text>'
    )
