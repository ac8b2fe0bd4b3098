"""How fast the Hotjar API simulator serves response pages (it must never be the bottleneck).

Starts the simulator in-process (rate limit off) with about 60,000 responses, then
fetches every responses page of every survey at limit=100 with one keep-alive
``requests`` session, a few times, and prints the median pages/s and MB/s.

    .venv/bin/python benchmarks/simulator_pages_per_second.py [--repeats 5] [--parse]

``--parse`` also decodes each page's JSON on the client (closer to what a tap does).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hotjar_simulator import HotjarSimulator


def fetch_all(session: requests.Session, sim: HotjarSimulator, parse: bool) -> tuple[int, int, int]:
    pages = nbytes = items = 0
    for site in sim.site_ids:
        surveys = session.get(f"{sim.url}/v1/sites/{site}/surveys", params={"limit": 100}, timeout=30).json()
        for survey in surveys["results"]:
            cursor = None
            while True:
                params: dict[str, int | str] = {"limit": 100}
                if cursor:
                    params["cursor"] = cursor
                r = session.get(f"{sim.url}{survey['responses_url']}", params=params, timeout=30)
                r.raise_for_status()
                pages += 1
                nbytes += len(r.content)
                if parse:
                    body = r.json()
                    items += len(body["results"])
                    cursor = body["next_cursor"]
                else:
                    # find next_cursor without decoding the whole page
                    head = r.content[:400].decode("ascii", "replace")
                    cursor = None if head.startswith('{"next_cursor":null') else head.split('"')[3]
                if cursor is None:
                    break
    return pages, nbytes, items


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--sites", type=int, default=5)
    p.add_argument("--surveys-per-site", type=int, default=12)
    p.add_argument("--responses-per-survey", type=int, default=1000)
    p.add_argument("--parse", action="store_true", help="decode each page's JSON on the client too")
    a = p.parse_args()

    t = time.perf_counter()
    sim = HotjarSimulator(
        seed=0,
        sites=a.sites,
        surveys_per_site=a.surveys_per_site,
        responses_per_survey=a.responses_per_survey,
        empty_surveys=0,
        rate_limit=0,
    )
    build = time.perf_counter() - t
    total = sum(len(sim.responses(s, sv)) for s in sim.site_ids for sv in sim.survey_ids(s))
    print(f"dataset: {total} responses built in {build:.2f} s")
    with sim, requests.Session() as session:
        token = session.post(
            f"{sim.url}/v1/oauth/token",
            timeout=30,
            data={"grant_type": "client_credentials", "client_id": sim.client_id, "client_secret": sim.client_secret},
        ).json()["access_token"]
        session.headers["Authorization"] = f"Bearer {token}"
        rates = []
        mbs = []
        for i in range(a.repeats):
            t = time.perf_counter()
            pages, nbytes, _ = fetch_all(session, sim, a.parse)
            dt = time.perf_counter() - t
            rates.append(pages / dt)
            mbs.append(nbytes / dt / 1e6)
            print(
                f"run {i + 1}: {pages} pages, {nbytes / 1e6:.1f} MB in {dt:.2f} s "
                f"({pages / dt:.0f} pages/s, {nbytes / dt / 1e6:.0f} MB/s)"
            )
    print(
        f"median: {statistics.median(rates):.0f} pages/s, {statistics.median(mbs):.0f} MB/s"
        f"{' (client JSON decoding included)' if a.parse else ''}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
