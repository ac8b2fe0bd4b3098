"""The floor: the least a Python program must do to move Hotjar responses into Singer.

One token request, then for each site the survey list pages (limit=100,
with_questions=true), then for each survey the responses pages (limit=100) following
``next_cursor``, writing each response as a Singer RECORD line on stdout with
``json.dumps``.  No schema, no state, no conformance, no logging: what is left is the
cost of HTTP and JSON, which no tap built on ``requests`` can go below.

    python benchmarks/floor.py --config config.json > /dev/null

Prints one JSON summary line on stderr: requests made, responses written, seconds.
``--rate-limit N`` (default 0: off) spaces requests so that at most N start in any
one second, for comparing with a tap that limits itself the same way.
"""

from __future__ import annotations

import argparse
import collections
import json
import sys
import time
from typing import TYPE_CHECKING

import requests

if TYPE_CHECKING:
    from collections.abc import Iterator


class _Limiter:
    """At most ``limit`` request starts in any one-second window (0: unlimited)."""

    def __init__(self, limit: float) -> None:
        self.limit = int(limit)
        self.sent: collections.deque[float] = collections.deque()

    def wait(self) -> None:
        if not self.limit:
            return
        while True:
            now = time.monotonic()
            while self.sent and now - self.sent[0] >= 1.0:
                self.sent.popleft()
            if len(self.sent) < self.limit:
                self.sent.append(now)
                return
            time.sleep(1.0 - (now - self.sent[0]))


def run(config: dict, out: object, rate_limit: float = 0.0) -> dict:
    base = str(config.get("api_url", "https://api.hotjar.io")).rstrip("/")
    limit = int(config.get("page_size", 100))
    session = requests.Session()
    limiter = _Limiter(rate_limit)
    write = out.write  # type: ignore[attr-defined]
    dumps = json.dumps
    n_requests = 0
    n_records = 0
    t0 = time.perf_counter()

    limiter.wait()
    token = session.post(
        f"{base}/v1/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": config["client_id"],
            "client_secret": config["client_secret"],
        },
        timeout=60,
    )
    n_requests += 1
    token.raise_for_status()
    session.headers["Authorization"] = "Bearer " + token.json()["access_token"]

    def pages(url: str, params: dict) -> Iterator[list]:
        nonlocal n_requests
        cursor = None
        while True:
            if cursor is not None:
                params["cursor"] = cursor
            limiter.wait()
            resp = session.get(url, params=params, timeout=60)
            n_requests += 1
            resp.raise_for_status()
            body = json.loads(resp.content)
            yield body["results"]
            cursor = body.get("next_cursor")
            if not cursor:
                return

    surveys: list[tuple[int, str]] = []
    for site_id in config["site_ids"]:
        url = f"{base}/v1/sites/{site_id}/surveys"
        for results in pages(url, {"limit": limit, "with_questions": "true"}):
            surveys.extend((site_id, s["id"]) for s in results)

    for site_id, survey_id in surveys:
        url = f"{base}/v1/sites/{site_id}/surveys/{survey_id}/responses"
        for results in pages(url, {"limit": limit}):
            for record in results:
                write(dumps({"type": "RECORD", "stream": "survey_responses", "record": record}))
                write("\n")
                n_records += 1
    out.flush()  # type: ignore[attr-defined]
    return {
        "requests": n_requests,
        "surveys": len(surveys),
        "responses": n_records,
        "seconds": round(time.perf_counter() - t0, 3),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "--config", required=True, help="a tap-hotjar config file (client_id, client_secret, site_ids, api_url)"
    )
    p.add_argument("--rate-limit", type=float, default=0.0, help="max requests started per second (default 0: off)")
    a = p.parse_args(argv)
    with open(a.config, encoding="utf-8") as f:
        config = json.load(f)
    summary = run(config, sys.stdout, a.rate_limit)
    print(json.dumps(summary), file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
