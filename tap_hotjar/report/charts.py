"""The charts, as Vega-Lite specifications built with Altair (validated against the
Vega-Lite schema when `to_dict` runs); `page` embeds them with Vega's JavaScript inlined.

Each chart's rows are one named dataset (`weeks`), so the page, and the browser test,
can read from the rendered chart exactly what it draws. Every chart of a survey spans
the same weeks (the survey's first to its last), so they line up one under the other;
a week's point and bar sit in the middle of its slot.
"""

from __future__ import annotations

import datetime as dt
import typing as t

import altair as alt

if t.TYPE_CHECKING:
    from tap_hotjar.report.data import Question, Survey

DATASET = "weeks"
WIDTH = 760
LINE = "#1f4e79"
BAND = "#9ebcda"
AVERAGE = "#6a51a3"
BARS = "#5b7fa6"
PROMOTER, PASSIVE, DETRACTOR = "#2e7d32", "#b0b0b0", "#c62828"
TOP_BOX, OTHER = "#2e7d32", "#b0b0b0"
_WEEK = dt.timedelta(days=7)


def week_label(week: dt.date) -> str:
    iso_year, iso_week, _ = week.isocalendar()
    return f"{iso_year}-W{iso_week:02d} (from {week:%a %d %b %Y})"


def _utc(moment: dt.datetime) -> str:
    # With "Z" the browser reads the instant as UTC, not as the reader's local time.
    return moment.isoformat() + "Z"


class Timeline:
    """The weeks a survey's charts span, and where a week sits on them."""

    def __init__(self, survey: Survey) -> None:
        self.first, self.last = min(survey.responses), max(survey.responses)
        weeks = (self.last - self.first) // _WEEK + 1
        # Bars fill most of a week's slot: wide for a few weeks, a hairline for years.
        self.bar_size = max(1.0, min(40.0, 0.8 * WIDTH / weeks))

    def row(self, week: dt.date) -> dict[str, str]:
        start = dt.datetime.combine(week, dt.time())
        return {"week": week.isoformat(), "label": week_label(week), "mid": _utc(start + _WEEK / 2)}

    def x(self, *, axis: bool = True) -> alt.X:
        domain = [_utc(dt.datetime.combine(week, dt.time())) for week in (self.first, self.last + _WEEK)]
        return alt.X(
            "mid:T",
            title=None,
            # UTC: the weeks are ISO weeks of UTC time, whatever the reader's time zone.
            scale=alt.Scale(type="utc", domain=domain),
            axis=alt.Axis(format="%b %Y", labelOverlap=True) if axis else alt.Axis(labels=False, ticks=False),
        )


def _spec(chart: alt.TopLevelMixin, rows: list[dict[str, t.Any]]) -> dict[str, t.Any]:
    spec = chart.to_dict()
    spec.setdefault("datasets", {})[DATASET] = rows
    return spec


def _base() -> alt.Chart:
    return alt.Chart(alt.NamedData(name=DATASET))


def _stacked_counts(timeline: Timeline, groups: dict[str, str], tooltip: list[alt.Tooltip]) -> alt.Chart:
    """Bars of answers per week, stacked by group (field name -> colour), in that order."""
    names: list[t.Any] = list(groups)
    return (
        _base()
        .transform_fold(names, as_=["group", "answers"])
        .transform_calculate(group_order=f"indexof({names!r}, datum.group)")
        .mark_bar(size=timeline.bar_size)
        .encode(
            x=timeline.x(),
            y=alt.Y("sum(answers):Q", title="answers", axis=alt.Axis(tickMinStep=1)),
            color=alt.Color(
                "group:N",
                title=None,
                scale=alt.Scale(domain=names, range=list(groups.values())),
                legend=alt.Legend(orient="bottom", direction="horizontal"),
            ),
            order=alt.Order("group_order:Q"),
            tooltip=tooltip,
        )
        .properties(width=WIDTH, height=80)
    )


def _line_in_band(timeline: Timeline, y: alt.Y, title: str, tooltip: list[alt.Tooltip]) -> alt.LayerChart:
    band = (
        _base()
        .mark_area(color=BAND, opacity=0.45)
        .encode(x=timeline.x(axis=False), y=alt.Y("low:Q", title=title), y2="high:Q")
    )
    line = (
        _base()
        .mark_line(color=LINE, point=alt.OverlayMarkDef(color=LINE, filled=True, size=28))
        .encode(x=timeline.x(axis=False), y=y, tooltip=tooltip)
    )
    return alt.LayerChart(layer=[band, line])


def responses_chart(survey: Survey) -> dict[str, t.Any]:
    """Responses per week (every week from the survey's first to its last)."""
    timeline = Timeline(survey)
    rows = [{**timeline.row(week), "responses": n} for week, n in survey.responses.items()]
    chart = (
        _base()
        .mark_bar(color=BARS, size=timeline.bar_size)
        .encode(
            x=timeline.x(),
            y=alt.Y("responses:Q", title="responses", axis=alt.Axis(tickMinStep=1)),
            tooltip=[alt.Tooltip("label:N", title="week"), alt.Tooltip("responses:Q", title="responses")],
        )
        .properties(width=WIDTH, height=110)
    )
    return _spec(chart, rows)


def nps_chart(survey: Survey, question: Question) -> dict[str, t.Any]:
    """NPS per week as a line in its 95% band; below it the answers behind each point,
    as promoters, passives and detractors."""
    timeline = Timeline(survey)
    rows = []
    for w in question.nps_weeks:
        low, high = w.interval
        rows.append(
            {
                **timeline.row(w.week),
                "responses": w.responses,
                "promoters": w.promoters,
                "passives": w.passives,
                "detractors": w.detractors,
                "nps": w.nps,
                "low": low,
                "high": high,
            }
        )
    tooltip = [
        alt.Tooltip("label:N", title="week"),
        alt.Tooltip("nps:Q", title="NPS", format=".1f"),
        alt.Tooltip("responses:Q", title="answers"),
        alt.Tooltip("promoters:Q", title="promoters (9-10)"),
        alt.Tooltip("passives:Q", title="passives (7-8)"),
        alt.Tooltip("detractors:Q", title="detractors (0-6)"),
        alt.Tooltip("low:Q", title="95% interval from", format=".0f"),
        alt.Tooltip("high:Q", title="95% interval to", format=".0f"),
    ]
    y = alt.Y("nps:Q", title="NPS", scale=alt.Scale(domain=[-100, 100]))
    zero = alt.Chart(alt.Data(values=[{}])).mark_rule(color="#888", strokeDash=[3, 3]).encode(y=alt.datum(0))
    top = alt.layer(_line_in_band(timeline, y, "NPS", tooltip), zero).properties(
        width=WIDTH, height=170, title=alt.Title("NPS per week", subtitle="line: NPS; band: 95% interval")
    )
    counts = _stacked_counts(timeline, {"promoters": PROMOTER, "passives": PASSIVE, "detractors": DETRACTOR}, tooltip)
    return _spec(alt.vconcat(top, counts, spacing=4).resolve_scale(x="shared"), rows)


def rating_chart(survey: Survey, question: Question) -> dict[str, t.Any]:
    """CSAT (top-box share) per week as a line in its 95% band, the average rating, and
    below them the answers behind each point (top box and the rest)."""
    timeline = Timeline(survey)
    top = question.scale_max or 5
    rows = []
    for w in question.rating_weeks:
        low, high = w.interval
        rows.append(
            {
                **timeline.row(w.week),
                "responses": w.responses,
                "avg_score": w.avg_score,
                "top_box_responses": w.top_box_responses,
                "top_box_share": w.top_box_share,
                "low": low,
                "high": high,
                # The stacked bars' two groups.
                "top box": w.top_box_responses,
                "other": w.responses - w.top_box_responses,
            }
        )
    tooltip = [
        alt.Tooltip("label:N", title="week"),
        alt.Tooltip("top_box_share:Q", title=f"CSAT ({top - 1}-{top} of {top})", format=".1%"),
        alt.Tooltip("avg_score:Q", title=f"average (1-{top})", format=".2f"),
        alt.Tooltip("responses:Q", title="answers"),
        alt.Tooltip("top_box_responses:Q", title=f"top box ({top - 1}-{top})"),
        alt.Tooltip("low:Q", title="95% interval from", format=".0%"),
        alt.Tooltip("high:Q", title="95% interval to", format=".0%"),
    ]
    share = alt.Y("top_box_share:Q", title="CSAT", scale=alt.Scale(domain=[0, 1]), axis=alt.Axis(format="%"))
    csat = _line_in_band(timeline, share, "CSAT", tooltip).properties(
        width=WIDTH,
        height=150,
        title=alt.Title(
            f"CSAT per week: share of answers {top - 1}-{top} of {top}", subtitle="line: CSAT; band: 95% interval"
        ),
    )
    average = (
        _base()
        .mark_line(color=AVERAGE, point=alt.OverlayMarkDef(color=AVERAGE, filled=True, size=20))
        .encode(
            x=timeline.x(axis=False),
            y=alt.Y("avg_score:Q", title=f"average 1-{top}", scale=alt.Scale(domain=[1, top])),
            tooltip=tooltip,
        )
        .properties(width=WIDTH, height=80)
    )
    counts = _stacked_counts(timeline, {"top box": TOP_BOX, "other": OTHER}, tooltip)
    return _spec(alt.vconcat(csat, average, counts, spacing=4).resolve_scale(x="shared"), rows)
