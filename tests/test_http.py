"""The HTTP layer against the simulator: pacing and the latency that sizes the read-ahead."""

from __future__ import annotations

import threading

import pytest

from hotjar_simulator import HotjarSimulator
from tap_hotjar.http.pacing import LatencyMeter, PacedSession, Pacer


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


def test_requests_waiting_for_a_slot_leave_in_order_of_priority():
    # The read-ahead reads the surveys singer-sdk needs first at full speed (streams/read_ahead.py).
    with HotjarSimulator(seed=1, sites=1, surveys_per_site=1, responses_per_survey=(0, 0)) as sim:
        pacer = Pacer(rate=4.0)
        session = PacedSession(pacer, LatencyMeter(), pool_size=8)
        url = sim.config()["api_url"] + "/v1/nowhere"
        session.get(f"{url}/first", timeout=30)  # the next slot is a quarter of a second away

        def send(priority: int | None) -> None:
            if priority is None:
                session.get(f"{url}/none", timeout=30)
                return
            with pacer.in_order(priority):
                session.get(f"{url}/{priority}", timeout=30)

        priorities = [5, 3, None, 4, 1, 2]
        threads = [threading.Thread(target=send, args=(p,)) for p in priorities]
        for thread in threads:
            thread.start()
        while len(pacer._waiting) < len(priorities):  # every thread waits for a slot
            threading.Event().wait(0.01)
        for thread in threads:
            thread.join()
        arrived = [path.rsplit("/", 1)[1] for _, _, path, *_ in sim.requests_log]
    # A thread that set no priority (singer-sdk's own: the token, the survey list) comes first.
    assert arrived == ["first", "none", "1", "2", "3", "4", "5"]
