"""The HTTP layer against the simulator: pacing, and the latency that sizes the read-ahead."""

from __future__ import annotations

import contextlib
import io
import math
import threading

import pytest

from hotjar_simulator import HotjarSimulator
from tap_hotjar.http.pacing import LatencyMeter, PacedSession, Pacer
from tap_hotjar.streams import read_ahead
from tap_hotjar.tap import TapHotjar


def _send_from_threads(session: PacedSession, url: str, threads: int, each: int) -> None:
    def work() -> None:
        for _ in range(each):
            session.get(url, timeout=30)

    workers = [threading.Thread(target=work) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()


@pytest.mark.parametrize("latency", [0.0, 0.2])
def test_latency_is_the_network_round_trip_not_the_wait_for_a_slot(latency):
    # 8 threads, 5 requests a second: a request waits up to 1.6 s for its slot. That
    # wait is the pacer's, not the API's: counted as latency it would size the
    # read-ahead for a slow network that is not there.
    with HotjarSimulator(seed=1, sites=1, surveys_per_site=1, responses_per_survey=(0, 0), latency=latency) as sim:
        meter = LatencyMeter()
        pacer = Pacer(rate=5.0)
        session = PacedSession(pacer, meter, pool_size=8)
        _send_from_threads(session, sim.config()["api_url"] + "/v1/nowhere", threads=8, each=2)
        assert sim.counts()["max_requests_in_any_1s_window"] <= 6
    assert pacer.requests == 16
    assert latency <= meter.seconds < latency + 0.15, meter.seconds


def test_the_last_surveys_under_latency_are_read_at_once_beside_the_others():
    # 12 surveys of 3 pages at 100 ms: Little's law asks for about 8 chains at once; the
    # 4 surveys left would start only as those end and then run alone, one page per
    # latency (streams/read_ahead.py). They start at once instead, so 12 chains run.
    with HotjarSimulator(seed=2, sites=1, surveys_per_site=12, responses_per_survey=300, empty_surveys=0) as sim:
        sim.set_faults(latency=0.1)
        tap = TapHotjar(config=sim.config())
        out = io.TextIOWrapper(io.BytesIO(), encoding="utf-8")
        with contextlib.redirect_stdout(out):
            tap.sync_all()
        # What Little's law alone asks for at 100 ms (the measured latency is a little more).
        assert math.ceil(tap.run.connection.pacer.rate * 0.1 * read_ahead.CONCURRENCY_MARGIN) < 12
        assert tap.run.handoff.read_ahead.peak_workers == 12
        out.seek(0)
        responses = [
            line
            for line in out.buffer.read().splitlines()
            if line.startswith(b'{"type":"RECORD","stream":"survey_responses"')
        ]
        assert len(responses) == 12 * 300
