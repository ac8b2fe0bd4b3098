"""The report (`hotjar-report`), end to end and in a real browser.

One simulator; before anything is loaded, one survey receives a burst of responses in
its last week, so that one of its weeks has many answers and the others one or two.
Then the analytics jobs of meltano.yml run as they are, report included
(`meltano run hotjar-analytics-duckdb`: tap-hotjar target-duckdb dbt-duckdb:build
hotjar-report:duckdb; `meltano run hotjar-analytics-postgres`: BATCH files into
PostgreSQL, dbt, hotjar-report:postgres), into a DuckDB file and PostgreSQL schemas of their own.

Each report is opened from disk, once, by Debian's headless Chromium (driven by
Playwright, which downloads no browser), with every request the page makes recorded
and any but the report file itself aborted. From the rendered page the tests read the
tables, the drawn charts (their SVG marks and the data of each live Vega view) and
compare them with the marts, queried here directly, and with NPS computed from the
simulator's own data (tests/analytics_truth.py). A screenshot of each report is kept
in the test's temporary folder.

Outside CI the module skips when chromium is missing (scripts/test.sh installs it) and
the PostgreSQL half skips when the server is not reachable; under CI=true both fail.
"""

from __future__ import annotations

import datetime as dt
import itertools
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import pytest

from hotjar_simulator import HotjarSimulator
from tests.analytics_truth import compute_marts
from tests.e2e_helpers import (
    PG_DATABASE,
    PG_HOST,
    PG_PASSWORD,
    PG_PORT,
    PG_USER,
    Pipeline,
    dbt_paths,
    in_ci,
    pg_connect,
    pg_schema_prefix,
    postgres_env,
)

if TYPE_CHECKING:
    from collections.abc import Iterator

    from playwright.sync_api import BrowserContext

CHROMIUM = os.environ.get("HOTJAR_TEST_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
# The flags the project's browser runs with: no sandbox (root in CI), and nothing of
# Chromium's own that would reach for the network (updates, sync, QUIC probes).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
BURST = 40  # responses added to one survey's last week
REPORT = str(Path(sys.executable).parent / "hotjar-report")
RATING_TYPES = ("rating-1-5", "rating-1-7", "reaction")


def _pg_url(user: str = PG_USER) -> str:
    return f"postgresql://{user}@{PG_HOST}:{PG_PORT}/{PG_DATABASE}"


# ------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def chromium() -> str:
    if not Path(CHROMIUM).is_file():
        reason = f"chromium not found ({CHROMIUM}); scripts/test.sh installs Debian's package"
        if in_ci():
            pytest.fail(f"{reason} (CI=true: the browser test must run)")
        pytest.skip(reason)
    return CHROMIUM


@dataclass
class Sim:
    sim: HotjarSimulator
    survey_id: str  # the survey that received the burst
    question_id: str  # its nps question


@pytest.fixture(scope="module")
def sim() -> Iterator[Sim]:
    with HotjarSimulator(seed=53, sites=2, surveys_per_site=3, responses_per_survey=50).start() as simulator:
        site_id = simulator.site_ids[0]
        # The "all types" survey: an nps question and every rating type.
        survey = next(
            s for s in simulator.surveys(site_id) if {q["type"] for q in s["questions"]} >= {"nps", *RATING_TYPES}
        )
        simulator.add_responses(site_id, survey["id"], BURST)
        question = next(q for q in survey["questions"] if q["type"] == "nps")
        yield Sim(simulator, survey["id"], question["id"])


@dataclass
class Warehouse:
    """A warehouse the analytics job loaded, and the report it wrote."""

    kind: str
    url: str
    schema: str
    report: Path
    log: str

    def marts(self, sql: str) -> list[tuple]:
        sql = sql.format(schema=f'"{self.schema}"')
        if self.kind == "duckdb":
            con = duckdb.connect(self.url.removeprefix("duckdb://"), read_only=True)
            try:
                return con.execute(sql).fetchall()
            finally:
                con.close()
        with pg_connect() as con:
            return con.execute(sql).fetchall()  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def duckdb_warehouse(meltano: Path, sim: Sim, tmp_path_factory: pytest.TempPathFactory) -> Warehouse:
    workdir = tmp_path_factory.mktemp("report-duckdb")
    db, report = workdir / "warehouse.duckdb", workdir / "report.html"
    url = f"duckdb://{db}"
    pipeline = Pipeline(
        meltano=meltano,
        sim=sim.sim,
        workdir=workdir,
        target_env={
            "TARGET_DUCKDB_PATH": str(db),
            "DBT_DUCKDB_PATH": str(db),
            "HOTJAR_REPORT_DUCKDB_URL": url,
            "HOTJAR_REPORT_OUT": str(report),
        },
        extra_env=dbt_paths(workdir),
    )
    log = pipeline.run("hotjar-analytics-duckdb")
    return Warehouse("duckdb", url, "hotjar_analytics", report, log)


@pytest.fixture(scope="module")
def postgres_schemas() -> Iterator[tuple[str, str]]:
    with pg_schema_prefix("e2e_report") as raw:
        yield raw, f"{raw}_marts"


@pytest.fixture(scope="module")
def postgres_warehouse(
    meltano: Path, sim: Sim, postgres_schemas: tuple[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Warehouse:
    raw, models = postgres_schemas
    workdir = tmp_path_factory.mktemp("report-postgres")
    report = workdir / "report.html"
    env = postgres_env(raw, models)
    env |= {
        # The report utility's settings; its password setting is libpq's PGPASSWORD.
        "HOTJAR_REPORT_POSTGRES_URL": _pg_url(),
        "HOTJAR_REPORT_SCHEMA": models,
        "HOTJAR_REPORT_OUT": str(report),
        "PGPASSWORD": PG_PASSWORD,
    }
    pipeline = Pipeline(meltano=meltano, sim=sim.sim, workdir=workdir, target_env=env, extra_env=dbt_paths(workdir))
    log = pipeline.run("hotjar-analytics-postgres")
    return Warehouse("postgres", _pg_url(), models, report, log)


@pytest.fixture(scope="module")
def browser(chromium: str) -> Iterator[BrowserContext]:
    from playwright.sync_api import sync_playwright  # noqa: PLC0415 - only where a browser runs

    with sync_playwright() as playwright, tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
        context = playwright.chromium.launch_persistent_context(
            profile,  # an empty profile: nothing cached, nothing remembered
            executable_path=chromium,
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1000, "height": 1400},
            service_workers="block",
        )
        try:
            yield context
        finally:
            context.close()


@dataclass
class Rendered:
    """What the browser saw and drew."""

    warehouse: Warehouse
    file_url: str
    requests: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    state: str | None = None
    screenshot: Path | None = None
    sections: list[dict[str, Any]] = field(default_factory=list)
    cells: list[dict[str, str]] = field(default_factory=list)
    charts: dict[str, dict[str, Any]] = field(default_factory=dict)


# Everything the tests read from the page, in one evaluation.
_READ_PAGE = """() => {
  const views = (window.hotjarReport || {}).views || {};
  const charts = {};
  for (const el of document.querySelectorAll('.chart')) {
    const svg = el.querySelector('svg');
    charts[el.id] = {
      kind: el.dataset.kind, survey: el.dataset.surveyId, question: el.dataset.questionId || null,
      svg: !!svg, width: svg ? svg.getBoundingClientRect().width : 0,
      marks: svg ? svg.querySelectorAll('g.role-mark > path, g.role-mark > g > path').length : 0,
      data: views[el.id] ? views[el.id].data('weeks') : null,
    };
  }
  const cells = [...document.querySelectorAll('table.last-weeks td[data-measure]')].map(td => ({
    survey: td.closest('table').dataset.surveyId, question: td.dataset.questionId || null,
    measure: td.dataset.measure, week: td.dataset.week, text: td.textContent.trim(),
  }));
  const sections = [...document.querySelectorAll('section.survey')].map(s => ({
    survey: s.dataset.surveyId,
    weeks: [...s.querySelectorAll('table.last-weeks thead th[data-week]')].map(th => th.dataset.week),
  }));
  return {charts, cells, sections};
}"""


def _render(context: BrowserContext, warehouse: Warehouse, screenshot: Path) -> Rendered:
    assert warehouse.report.is_file(), f"the job wrote no report; log:\n{warehouse.log[-3000:]}"
    rendered = Rendered(warehouse, warehouse.report.as_uri())

    def route(route: Any) -> None:
        rendered.requests.append(route.request.url)
        if route.request.url == rendered.file_url:
            route.continue_()
        else:
            route.abort()  # the network is off for this page: nothing leaves it

    page = context.new_page()
    try:
        context.route("**/*", route)
        page.on("pageerror", lambda exc: rendered.errors.append(f"page error: {exc}"))
        page.on("console", lambda msg: msg.type == "error" and rendered.errors.append(f"console: {msg.text}"))
        page.on("websocket", lambda ws: rendered.requests.append(ws.url))
        page.goto(rendered.file_url)
        # A bound, not a timing assertion: the page marks <html> once every chart is drawn.
        page.wait_for_selector("html[data-charts]", state="attached", timeout=120_000)
        rendered.state = page.get_attribute("html", "data-charts")
        page.screenshot(path=str(screenshot), full_page=False)
        rendered.screenshot = screenshot
        seen = page.evaluate(_READ_PAGE)
        rendered.charts, rendered.cells, rendered.sections = seen["charts"], seen["cells"], seen["sections"]
    finally:
        context.unroute("**/*")
        page.close()
    return rendered


@pytest.fixture(scope="module")
def rendered_duckdb(
    browser: BrowserContext, duckdb_warehouse: Warehouse, tmp_path_factory: pytest.TempPathFactory
) -> Rendered:
    return _render(browser, duckdb_warehouse, tmp_path_factory.mktemp("shots") / "report-duckdb.png")


@pytest.fixture(scope="module")
def rendered_postgres(
    browser: BrowserContext, postgres_warehouse: Warehouse, tmp_path_factory: pytest.TempPathFactory
) -> Rendered:
    return _render(browser, postgres_warehouse, tmp_path_factory.mktemp("shots") / "report-postgres.png")


@pytest.fixture(params=["duckdb", "postgres"])
def rendered(request: pytest.FixtureRequest) -> Rendered:
    return request.getfixturevalue(f"rendered_{request.param}")


# ------------------------------------------------------------- the marts


def _fmt(measure: str, value: Any) -> str:
    """How a reader expects a mart's number printed (independent of the report's code)."""
    if measure == "nps":
        return f"{float(value):.1f}"
    if measure == "top_box_share":
        return f"{100 * float(value):.1f}%"
    if measure == "avg_score":
        return f"{float(value):.2f}"
    return str(int(value))


NPS_MEASURES = ("nps", "responses", "promoters", "passives", "detractors")
RATING_MEASURES = ("top_box_share", "avg_score", "responses", "top_box_responses")


def _expected_cells(warehouse: Warehouse) -> dict[tuple, str]:
    """Every cell the tables should hold, from the marts: (survey, question, measure, week) -> text."""
    expected: dict[tuple, str] = {}
    responses: dict[str, dict[dt.date, int]] = {}
    for survey, week, n in warehouse.marts(
        "select survey_id, cast(date_trunc('week', created_time) as date), count(distinct response_id)"
        " from {schema}.hotjar__answers group by 1, 2"
    ):
        responses.setdefault(survey, {})[week] = n
    last_weeks = {
        survey: [max(weeks) - dt.timedelta(weeks=back) for back in (3, 2, 1, 0)] for survey, weeks in responses.items()
    }
    for survey, weeks in last_weeks.items():
        for week in weeks:
            expected[(survey, None, "responses", week.isoformat())] = str(responses[survey].get(week, 0))
    nps = warehouse.marts(
        "select survey_id, question_id, week_start, nps, responses, promoters, passives, detractors"
        " from {schema}.hotjar__nps"
    )
    ratings = warehouse.marts(
        "select survey_id, question_id, week_start, top_box_share, avg_score, responses, top_box_responses"
        " from {schema}.hotjar__ratings"
    )
    for rows, measures in ((nps, NPS_MEASURES), (ratings, RATING_MEASURES)):
        questions = {(row[0], row[1]) for row in rows}
        by_key = {(row[0], row[1], row[2]): row[3:] for row in rows}
        for survey, question in questions:
            for week in last_weeks[survey]:
                values = by_key.get((survey, question, week))
                for i, measure in enumerate(measures):
                    text = "\u2013" if values is None else _fmt(measure, values[i])
                    expected[(survey, question, measure, week.isoformat())] = text
    return expected


# ------------------------------------------------------------------ tests


def test_the_page_loads_nothing_but_itself(rendered: Rendered) -> None:
    # Every request the page made went through the route: only the file itself.
    assert rendered.requests == [rendered.file_url]
    assert rendered.errors == []


def test_every_chart_is_drawn_and_a_screenshot_taken(rendered: Rendered) -> None:
    assert rendered.state == "ready"
    surveys = {s for (s,) in rendered.warehouse.marts("select distinct survey_id from {schema}.hotjar__answers")}
    questions = {
        (s, q)
        for s, q in rendered.warehouse.marts(
            "select survey_id, question_id from {schema}.hotjar__nps"
            " union select survey_id, question_id from {schema}.hotjar__ratings"
        )
    }
    charts = rendered.charts.values()
    # One responses chart per survey with responses, one chart per nps or rating question.
    assert sorted(c["survey"] for c in charts if c["kind"] == "responses") == sorted(surveys)
    assert {(c["survey"], c["question"]) for c in charts if c["kind"] != "responses"} == questions
    assert len(rendered.charts) == len(surveys) + len(questions)
    for chart_id, chart in rendered.charts.items():
        assert chart["svg"] and chart["width"] > 300, chart_id
        assert chart["marks"] > 0, f"{chart_id} has no marks"
        assert chart["data"], f"{chart_id} draws no rows"
    assert rendered.screenshot is not None
    png = rendered.screenshot.read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 20_000


def test_tables_hold_each_surveys_last_four_weeks_as_in_the_marts(rendered: Rendered) -> None:
    expected = _expected_cells(rendered.warehouse)
    shown = {(c["survey"], c["question"], c["measure"], c["week"]): c["text"] for c in rendered.cells}
    assert shown.keys() == expected.keys()
    wrong = {k: (shown[k], expected[k]) for k in expected if shown[k] != expected[k]}
    assert not wrong, f"{len(wrong)} of {len(expected)} cells differ from the marts, e.g. {next(iter(wrong.items()))}"
    for section in rendered.sections:
        weeks = [dt.date.fromisoformat(w) for w in section["weeks"]]
        assert [(b - a).days for a, b in itertools.pairwise(weeks)] == [7, 7, 7]


def test_nps_of_a_survey_equals_the_simulators_data(rendered: Rendered, sim: Sim) -> None:
    truth = compute_marts(sim.sim).nps
    weeks = {key[2]: value for key, value in truth.items() if key[:2] == (sim.survey_id, sim.question_id)}
    assert weeks
    shown = {
        (c["measure"], c["week"]): c["text"]
        for c in rendered.cells
        if c["survey"] == sim.survey_id and c["question"] == sim.question_id
    }
    table_weeks = sorted({dt.date.fromisoformat(week) for _, week in shown})
    assert max(table_weeks) == max(weeks)  # the burst's week is the last one shown
    for week in table_weeks:
        if week not in weeks:
            assert all(shown[(m, week.isoformat())] == "\u2013" for m in NPS_MEASURES)
            continue
        responses, promoters, passives, detractors, nps = weeks[week]
        assert shown[("responses", week.isoformat())] == str(responses)
        assert shown[("promoters", week.isoformat())] == str(promoters)
        assert shown[("passives", week.isoformat())] == str(passives)
        assert shown[("detractors", week.isoformat())] == str(detractors)
        assert shown[("nps", week.isoformat())] == f"{nps:.1f}"
    # And the chart draws every week of it, the same numbers.
    chart = next(c for c in rendered.charts.values() if c["question"] == sim.question_id)
    drawn = {dt.date.fromisoformat(row["week"]): row for row in chart["data"]}
    assert drawn.keys() == weeks.keys()
    for week, (responses, promoters, passives, detractors, nps) in weeks.items():
        row = drawn[week]
        assert (row["responses"], row["promoters"], row["passives"], row["detractors"]) == (
            responses,
            promoters,
            passives,
            detractors,
        )
        assert row["nps"] == pytest.approx(nps)


def test_charts_draw_the_numbers_in_the_tables(rendered: Rendered) -> None:
    shown = {(c["survey"], c["question"], c["measure"], c["week"]): c["text"] for c in rendered.cells}
    drawn = {}
    for chart in rendered.charts.values():
        measures = {"responses": ("responses",), "nps": NPS_MEASURES, "rating": RATING_MEASURES}[chart["kind"]]
        for row in chart["data"]:
            for measure in measures:
                drawn[(chart["survey"], chart["question"], measure, row["week"])] = _fmt(measure, row[measure])
    # Every number in a table is drawn by a chart, and the same.
    numbers = {key: text for key, text in shown.items() if text != "\u2013"}
    assert len(numbers) > 50
    assert {key: drawn.get(key) for key in numbers} == numbers


def test_a_week_of_many_answers_has_a_narrower_band_than_a_week_of_few(rendered: Rendered, sim: Sim) -> None:
    chart = next(c for c in rendered.charts.values() if c["question"] == sim.question_id)
    rows = chart["data"]
    busiest = max(rows, key=lambda row: row["responses"])
    few = [row for row in rows if row["responses"] <= 3]
    assert busiest["responses"] >= 20 and few
    width = lambda row: row["high"] - row["low"]  # noqa: E731
    assert all(width(busiest) < width(row) for row in few)
    for row in rows:
        assert -100 <= row["low"] < row["high"] <= 100


# ------------------------------------------------------------- bad input


def _report(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [REPORT, *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**{k: v for k, v in os.environ.items() if not k.startswith("HOTJAR_REPORT_")}, **(env or {})},
    )


def _one_error_line(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 1, proc
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("hotjar-report: error: ")
    assert "Traceback" not in proc.stderr
    return lines[0]


def test_a_wrong_url_is_one_error_line(tmp_path: Path) -> None:
    line = _one_error_line(_report("--warehouse", "mysql://u@h/db", "--out", str(tmp_path / "r.html")))
    assert "postgresql://" in line and "duckdb:///" in line
    line = _one_error_line(
        _report("--warehouse", f"duckdb://{tmp_path}/missing.duckdb", "--out", str(tmp_path / "r.html"))
    )
    assert "does not exist" in line
    line = _one_error_line(_report("--out", str(tmp_path / "r.html")))
    assert "--warehouse" in line
    assert not (tmp_path / "missing.duckdb").exists() and not (tmp_path / "r.html").exists()


def test_missing_schema_or_marts_not_built_is_one_error_line(duckdb_warehouse: Warehouse, tmp_path: Path) -> None:
    out = tmp_path / "r.html"
    line = _one_error_line(
        _report("--warehouse", duckdb_warehouse.url, "--schema", "no_such_schema", "--out", str(out))
    )
    assert "no_such_schema" in line and "dbt build" in line
    # The raw tables' schema exists, but holds no marts.
    line = _one_error_line(_report("--warehouse", duckdb_warehouse.url, "--schema", "hotjar", "--out", str(out)))
    assert "hotjar__nps" in line and "dbt build" in line
    assert not out.exists()


def test_an_unwritable_output_is_one_error_line(duckdb_warehouse: Warehouse, tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    line = _one_error_line(_report("--warehouse", duckdb_warehouse.url, "--out", str(blocker / "report.html")))
    assert "cannot write" in line
    # And nothing half-written is left where a report was asked for.
    _one_error_line(
        _report("--warehouse", duckdb_warehouse.url, "--schema", "hotjar", "--out", str(tmp_path / "r.html"))
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file"]


def test_a_password_never_appears_in_any_output(tmp_path: Path) -> None:
    password = "pw-" + uuid.uuid4().hex  # a made-up secret to look for
    cases = [
        # A database that does not exist, a port nobody listens on.
        f"postgresql://{PG_USER}:{password}@{PG_HOST}:{PG_PORT}/no_such_db_{uuid.uuid4().hex[:6]}",
        f"postgresql://{PG_USER}:{password}@127.0.0.1:1/{PG_DATABASE}",
        f"postgresql://{PG_USER}:{password}@{PG_HOST}:{PG_PORT}/",
    ]
    for url in cases:
        proc = _report("--warehouse", url, "--out", str(tmp_path / "r.html"))
        line = _one_error_line(proc)
        assert password not in proc.stdout + proc.stderr, line
    # From the environment, as Meltano passes the settings, too.
    proc = _report(env={"HOTJAR_REPORT_WAREHOUSE": cases[1], "HOTJAR_REPORT_OUT": str(tmp_path / "r.html")})
    _one_error_line(proc)
    assert password not in proc.stdout + proc.stderr
