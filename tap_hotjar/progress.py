"""How far a long run is: one INFO line at most every 30 seconds, nothing per record or page.

The interval is $TAP_HOTJAR_PROGRESS_SECONDS (settings.progress_interval).
"""

from __future__ import annotations

import time
import typing as t

if t.TYPE_CHECKING:
    import logging

    from tap_hotjar.http.pacing import Pacer


class Progress:
    """Counts kept by the streams; `tick()` logs them when `interval` seconds have passed since the last line."""

    def __init__(self, logger: logging.Logger, pacer: Pacer, interval: float) -> None:
        self._logger = logger
        self._pacer = pacer
        self._interval = interval
        self._started = time.monotonic()
        self._last_line = self._started
        self.surveys_listed = 0
        self.surveys_started = 0
        self.responses = 0
        self.answers = 0

    def tick(self) -> None:
        now = time.monotonic()
        if now - self._last_line >= self._interval:
            self._last_line = now
            self._log(now, final=False)

    def final(self) -> None:
        self._log(time.monotonic(), final=True)

    def _log(self, now: float, *, final: bool) -> None:
        elapsed = max(now - self._started, 1e-9)
        rate = self._pacer.requests / elapsed
        done, listed = self.surveys_started, self.surveys_listed
        if final:
            left = ""
        elif 0 < done < listed:
            left = f"; about {_duration(elapsed / done * (listed - done))} left"
        else:
            left = "; time left not yet known"
        self._logger.info(
            "%s %d of %d surveys; %d responses and %d answers written; %d requests, %.1f per second%s",
            "Done:" if final else "Progress:",
            done,
            listed,
            self.responses,
            self.answers,
            self._pacer.requests,
            rate,
            left,
        )


def _duration(seconds: float) -> str:
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"
