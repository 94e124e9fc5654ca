"""The server-drawn SVG charts: geometry, labels for screen readers, escaping."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import datetime, timedelta

from dealscore_service.ui import charts

SVG = "{http://www.w3.org/2000/svg}"


def parse(markup: str) -> ET.Element:
    """Charts must be well-formed XML (they are inlined into the HTML as SVG)."""
    return ET.fromstring(str(markup).replace("<svg ", '<svg xmlns="http://www.w3.org/2000/svg" ', 1))


def test_sparkline_follows_the_values() -> None:
    svg = parse(charts.sparkline([0.4, 0.3, 0.2]))
    assert svg.get("role") == "img"
    assert svg.get("aria-label") == "Win probability trend over the last 3 scores: 40% to 20%"
    pts = [tuple(map(float, p.split(","))) for p in svg.find(f"{SVG}polyline").get("points").split()]
    assert len(pts) == 3
    assert pts[0][0] < pts[1][0] < pts[2][0]
    assert pts[0][1] < pts[1][1] < pts[2][1]  # falling values go down the screen
    assert svg.find(f"{SVG}polyline").get("stroke") == charts.DOWN
    assert parse(charts.sparkline([0.2, 0.5])).find(f"{SVG}polyline").get("stroke") == charts.UP
    one = str(charts.sparkline([0.3]))  # a trend needs two scores: no line for one
    assert "no trend yet" in one and "polyline" not in one
    assert str(charts.sparkline([])) == ""


def test_diverging_bars_share_a_scale_and_sign() -> None:
    down = parse(charts.diverging_bar(-9.0, 9.0, width=200))
    up = parse(charts.diverging_bar(4.5, 9.0, width=200))
    d, u = down.find(f"{SVG}rect"), up.find(f"{SVG}rect")
    assert float(d.get("x")) + float(d.get("width")) == 100  # ends on the zero line
    assert float(u.get("x")) == 100
    assert abs(float(u.get("width")) - float(d.get("width")) / 2) < 0.01
    assert d.get("fill") == charts.DOWN and u.get("fill") == charts.UP
    assert down.get("aria-label") == "−9.0 points" and up.get("aria-label") == "+4.5 points"
    assert float(parse(charts.diverging_bar(50.0, 9.0, width=200)).find(f"{SVG}rect").get("width")) <= 98


def test_history_chart_plots_each_score_with_a_tooltip() -> None:
    t = datetime(2025, 5, 1)
    points = [charts.HistoryPoint(t + timedelta(days=7 * i), p, f"score {i} <b>")
              for i, p in enumerate([0.6, 0.5, 0.2])]
    svg = parse(charts.history_chart(points, typical=0.45))
    circles = svg.findall(f"{SVG}circle")
    assert len(circles) == 3
    assert circles[0].find(f"{SVG}title").text == "score 0 <b>"  # escaped in the markup
    assert "&lt;b&gt;" in str(charts.history_chart(points))
    ys = [float(c.get("cy")) for c in circles]
    assert ys[0] < ys[1] < ys[2]
    assert "deals in this stage usually win 45%" in svg.get("aria-label")
    texts = [x.text for x in svg.iter(f"{SVG}text")]
    assert "stage usually wins 45%" in texts and "01 May 2025" in texts and "15 May 2025" in texts
    single = parse(charts.history_chart(points[:1]))
    assert len(single.findall(f"{SVG}circle")) == 1 and single.find(f"{SVG}polyline") is None
    assert single.get("aria-label") == "Win probability of the one score so far, on 01 May 2025: 60%"  # not "1 scores"
    assert "Win probability over 3 scores" in svg.get("aria-label")
    tiny = parse(charts.history_chart([charts.HistoryPoint(t, 0.004, "x")], typical=0.003))
    assert "<1%" in tiny.get("aria-label") and "0%" not in tiny.get("aria-label")  # the page's one percent rule
    assert str(charts.history_chart([])) == ""


def test_calibration_and_lift_charts() -> None:
    cal = parse(charts.calibration_chart([charts.Series("model", [(0.1, 0.12), (0.5, 0.45), (0.9, 0.8)])],
                                         label="Calibration"))
    assert len(cal.findall(f"{SVG}circle")) == 3 and cal.get("aria-label") == "Calibration"
    lift = parse(charts.lift_chart([2.0, 1.5, 1.2, 1.1, 1.0, 0.9, 0.8, 0.6, 0.5, float("nan")],
                                   [charts.Series("CRM stage table", [(1.0, 1.4), (2.0, 1.2)])], label="Lift"))
    bars = lift.findall(f"{SVG}rect")
    assert len(bars) == 9  # the empty decile draws no bar
    heights = [float(b.get("height")) for b in bars]
    assert heights == sorted(heights, reverse=True)
    assert any("CRM stage table" in (t.text or "") for t in lift.iter(f"{SVG}text"))
    assert re.search(r"decile 1: lift 2\.00×", str(charts.lift_chart([2.0], [], label="x")))
