"""The report as one HTML file: the tables, the charts' specifications and the
JavaScript that draws them (Vega, Vega-Lite and Vega-Embed, bundled by vl-convert), all
inline, so the file opens offline and can be mailed or archived as it is.
"""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import json
import typing as t

import altair as alt
import jinja2
import vl_convert
from markupsafe import Markup

from tap_hotjar.report import charts

if t.TYPE_CHECKING:
    from tap_hotjar.report.data import NpsWeek, Question, RatingWeek, ReportData

TITLE = "Hotjar surveys: NPS, CSAT and responses"
EMPTY = "\u2013"  # en dash: no answers that week


class ReportBuildError(Exception):
    """The charting libraries cannot make the page (e.g. versions that do not match)."""


def _vega_lite_version() -> str:
    # Altair writes specs for one Vega-Lite version (its schema); vl-convert bundles
    # several: take the one Altair's specs are written for, e.g. "v6.4.1" -> "6.4".
    return ".".join(alt.SCHEMA_VERSION.lstrip("v").split(".")[:2])


def javascript_bundle() -> tuple[str, dict[str, str]]:
    """The JavaScript that draws the charts, and the versions it holds."""
    version = _vega_lite_version()
    if version not in vl_convert.get_vegalite_versions():
        vl_convert_version = importlib.metadata.version("vl-convert-python")
        raise ReportBuildError(
            f"vl-convert {vl_convert_version} does not bundle Vega-Lite {version}, which altair "
            f"{alt.__version__} writes; install matching versions: pip install 'tap-hotjar[report]'"
        )
    # The snippet decides what the bundle exposes: the page needs only vegaEmbed.
    bundle = vl_convert.javascript_bundle(snippet="window.vegaEmbed = vegaEmbed;", vl_version=version)
    # The bundle goes inside <script>: a literal "</script" would end it early.
    if "</script" in bundle.lower():
        raise ReportBuildError("the Vega bundle holds '</script' and cannot be inlined")
    versions = {
        "vega": vl_convert.get_vega_version(),
        "vegalite": version,
        "embed": vl_convert.get_vega_embed_version(),
    }
    return bundle, versions


def script_json(value: t.Any) -> Markup:
    """JSON that is safe inside <script>: no '<', '>' or '&' that HTML would read (a survey
    named "</script>" stays text)."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    escaped = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return Markup(escaped)  # noqa: S704 - no character left that HTML would read


def format_value(measure: str, value: float) -> str:
    """How the table prints a number; the charts' tooltips round the same way."""
    if measure == "nps":
        return f"{value:.1f}"
    if measure == "top_box_share":
        return f"{100 * value:.1f}%"
    if measure == "avg_score":
        return f"{value:.2f}"
    return str(int(value))


def _cell(
    row: NpsWeek | RatingWeek | int | None, measure: str, week: dt.date, question: Question | None = None
) -> Markup:
    # Markup.format escapes every value it is given.
    attributes = Markup(' data-measure="{}" data-week="{}"').format(measure, week.isoformat())
    if question is not None:
        attributes += Markup(' data-question-id="{}"').format(question.id)
    if row is None:
        return Markup('<td class="empty"{}>{}</td>').format(attributes, EMPTY)
    value = row if isinstance(row, int) else getattr(row, measure)
    return Markup("<td{}>{}</td>").format(attributes, format_value(measure, value))


def _week_heading(week: dt.date) -> Markup:
    iso_year, iso_week, _ = week.isocalendar()
    return Markup("{}-W{:02d}<br><small>{}</small>").format(iso_year, iso_week, f"{week:%d %b}")


def _weeks_of(question: Question) -> dict[dt.date, NpsWeek | RatingWeek]:
    rows: list[NpsWeek | RatingWeek] = [*question.nps_weeks, *question.rating_weeks]
    return {row.week: row for row in rows}


def chart_specs(data: ReportData) -> dict[str, dict[str, t.Any]]:
    """Every chart's Vega-Lite spec, by the id of the element it is drawn in."""
    specs: dict[str, dict[str, t.Any]] = {}
    for s, survey in enumerate(data.surveys, start=1):
        specs[f"chart-{s}-responses"] = charts.responses_chart(survey)
        for q, question in enumerate(survey.questions, start=1):
            draw = charts.nps_chart if question.type == "nps" else charts.rating_chart
            specs[f"chart-{s}-q{q}"] = draw(survey, question)
    return specs


def render(data: ReportData, *, title: str = TITLE, generated: dt.datetime | None = None) -> str:
    """The whole page."""
    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("tap_hotjar.report", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    javascript, versions = javascript_bundle()
    generated = generated or dt.datetime.now(dt.timezone.utc)
    return environment.get_template("report.html").render(
        title=title,
        data=data,
        generated=generated.strftime("%Y-%m-%d %H:%M UTC"),
        specs=script_json(chart_specs(data)),
        javascript=Markup(javascript),  # noqa: S704 - code, checked for "</script" above
        versions=versions,
        cell=_cell,
        week_heading=_week_heading,
        weeks_of=_weeks_of,
    )
