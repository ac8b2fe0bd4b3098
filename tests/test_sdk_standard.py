"""singer-sdk's standard tap tests, run against the simulator."""

from __future__ import annotations

import socket

import pytest
from singer_sdk.testing import get_tap_test_class

from hotjar_simulator import HotjarSimulator
from tap_hotjar.tap import TapHotjar


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# The SDK builds its test class at import time, so the config (and so the
# simulator's port) must be known before the simulator starts.
PORT = _free_port()
SIMULATOR = HotjarSimulator(seed=3, sites=2, surveys_per_site=2, responses_per_survey=(0, 60), port=PORT)
CONFIG = {
    "client_id": SIMULATOR.client_id,
    "client_secret": SIMULATOR.client_secret,
    "site_ids": SIMULATOR.site_ids,
    "api_url": f"http://127.0.0.1:{PORT}",
    "page_size": 25,
}


@pytest.fixture(scope="module", autouse=True)
def _simulator():
    with SIMULATOR:
        yield


TestTapHotjar = get_tap_test_class(TapHotjar, config=CONFIG)
