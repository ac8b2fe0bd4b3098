"""Regenerate docs/images/report.png, the README's picture of the report.

    .venv/bin/python scripts/report_screenshot.py            (after scripts/test.sh made .venv)

Nothing is drawn by hand: it runs the documented pipeline for real and photographs
what a browser shows.

1. The project's Hotjar API simulator serves one site with three surveys of 3,000
   responses each over two years: about 30 answers a week, like a busy account (the
   demo's 120 responses per survey give one or two a week).
2. `meltano run tap-hotjar target-duckdb dbt-duckdb:build hotjar-report:duckdb` loads them into
   a DuckDB file of its own, builds the models and writes the report, in a temporary folder.
3. Debian's headless chromium (driven by Playwright, network requests aborted) opens the
   report and photographs the first survey that has an NPS question: its responses,
   NPS and CSAT charts.

Fonts: survey names come in many scripts; when the Noto CJK and emoji fonts are missing
and this runs as root with apt-get, it installs them (fonts-noto-cjk,
fonts-noto-color-emoji), else names in those scripts show as boxes.
"""

# ruff: noqa: T201, S603, S607 - a developer's script: prints progress, runs known commands.

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterator

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the simulator is a top-level package of the checkout

from hotjar_simulator import HotjarSimulator  # noqa: E402

OUT = ROOT / "docs" / "images" / "report.png"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
WIDTH, HEIGHT = 1000, 1250
PLUGINS = ("tap-hotjar", "target-duckdb", "dbt-duckdb", "hotjar-report")


def fonts() -> None:
    have = subprocess.run(["fc-list", ":lang=ja"], capture_output=True, text=True, check=False).stdout.strip()
    if have:
        return
    if os.geteuid() == 0 and shutil.which("apt-get"):
        print("Installing fonts-noto-cjk and fonts-noto-color-emoji (survey names in any script)...")
        subprocess.run(["apt-get", "update", "-qq"], check=True)
        subprocess.run(
            ["apt-get", "install", "-y", "-qq", "fonts-noto-cjk", "fonts-noto-color-emoji"],
            check=True,
            env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
        )
    else:
        print("warning: no CJK font; names in those scripts will show as boxes", file=sys.stderr)


@contextlib.contextmanager
def meltano_lock() -> Iterator[None]:
    # The lock the end-to-end tests take: two `meltano run`s of one project at once
    # overwrite each other's files in .meltano/run/.
    (ROOT / ".meltano").mkdir(exist_ok=True)
    with open(ROOT / ".meltano" / "tests-run.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def meltano(args: list[str], env: dict[str, str]) -> None:
    command = f"source scripts/_meltano_env.sh >&2 && meltano {' '.join(args)}"
    proc = subprocess.run(["bash", "-c", command], cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        sys.exit(f"meltano {' '.join(args)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")


def build_report(workdir: Path) -> Path:
    db, report = workdir / "warehouse.duckdb", workdir / "report.html"
    (workdir / "empty.env").touch()
    with HotjarSimulator(
        seed=3, sites=1, surveys_per_site=3, responses_per_survey=3000, empty_sites=0, empty_surveys=0
    ).start() as sim:
        config = sim.config()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("MELTANO_", "TAP_HOTJAR", "DBT_", "HOTJAR_"))}
        env |= {
            "MELTANO_DATABASE_URI": f"sqlite:///{workdir / 'meltano.db'}",
            "TAP_HOTJAR_API_URL": config["api_url"],
            "TAP_HOTJAR_CLIENT_ID": config["client_id"],
            "TAP_HOTJAR_CLIENT_SECRET": config["client_secret"],
            "TAP_HOTJAR_SITE_IDS": json.dumps(config["site_ids"]),
            "TARGET_DUCKDB_PATH": str(db),
            "DBT_DUCKDB_PATH": str(db),
            "DBT_TARGET_PATH": str(workdir / "dbt-target"),
            "DBT_LOG_PATH": str(workdir / "dbt-logs"),
            "HOTJAR_REPORT_DUCKDB_URL": f"duckdb://{db}",
            "HOTJAR_REPORT_OUT": str(report),
        }
        print("Loading the simulator's 9,000 responses, building the models and the report...")
        with meltano_lock():
            meltano(["install", *PLUGINS], env)
            blocks = ["tap-hotjar", "target-duckdb", "dbt-duckdb:build", "hotjar-report:duckdb"]
            meltano(["--env-file", str(workdir / "empty.env"), "run", *blocks], env)
    return report


def photograph(report: Path, out: Path) -> None:
    from playwright.sync_api import sync_playwright  # noqa: PLC0415 - the dev extra

    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    with sync_playwright() as playwright, tempfile.TemporaryDirectory() as profile:
        context = playwright.chromium.launch_persistent_context(
            profile,
            executable_path=chromium,
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": WIDTH, "height": 900},
        )
        context.route(
            "**/*", lambda route: route.continue_() if route.request.url.startswith("file:") else route.abort()
        )
        page = context.new_page()
        page.goto(report.as_uri())
        page.wait_for_selector("html[data-charts]", state="attached", timeout=120_000)
        if page.get_attribute("html", "data-charts") != "ready":
            sys.exit("the report's charts were not drawn")
        section = page.locator("section.survey", has=page.locator(".chart[data-kind=nps]")).first
        box = section.bounding_box()
        if box is None:
            sys.exit("no survey with an NPS chart in the report")
        out.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(
            path=str(out), full_page=True, clip={"x": 0, "y": box["y"] - 8, "width": WIDTH, "height": HEIGHT}
        )
        context.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT, help=f"the PNG to write (default {OUT.relative_to(ROOT)})")
    args = parser.parse_args()
    fonts()
    with tempfile.TemporaryDirectory(prefix="report-screenshot-") as tmp:
        report = build_report(Path(tmp))
        photograph(report, args.out)
    print(f"Wrote {args.out}")


if __name__ == "__main__":
    main()
