"""Run the Hotjar API simulator by hand: ``python -m hotjar_simulator --port 8765``.

Prints the URL, credentials, site ids, organization id and a ready tap config (one
JSON line after ``config: ``) on stdout, then serves until SIGINT or SIGTERM.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading

from .server import HotjarSimulator


def _responses_per_survey(text: str) -> int | tuple[int, int]:
    for sep in (",", ":", "-"):
        if sep in text:
            lo, hi = text.split(sep, 1)
            return int(lo), int(hi)
    return int(text)


def _status_list(text: str) -> int | list[int]:
    values = [int(v) for v in text.split(",")]
    return values[0] if len(values) == 1 else values


def _retry_after(text: str) -> int | None:
    return None if text.lower() in ("none", "") else int(text)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m hotjar_simulator", description=__doc__)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8765, help="0 picks a free port (default 8765)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--sites", type=int, default=3)
    p.add_argument("--surveys-per-site", type=int, default=4)
    p.add_argument("--responses-per-survey", type=_responses_per_survey, default=120, help="N, or MIN,MAX for a spread")
    p.add_argument("--empty-sites", type=int, default=1)
    p.add_argument("--empty-surveys", type=int, default=1)
    p.add_argument("--client-id", default="sim-client-id")
    p.add_argument("--client-secret", default="sim-client-secret")
    p.add_argument("--organization-id", type=int, default=424242)
    p.add_argument("--token-lifetime", type=float, default=3600.0)
    p.add_argument("--rate-limit", type=float, default=50.0, help="requests/s per client; 0 disables")
    p.add_argument("--latency", type=float, default=0.0)
    p.add_argument("--error-429-every", type=int, default=0)
    p.add_argument("--retry-after", type=_retry_after, default=1, help="seconds, or 'none' for no header")
    p.add_argument("--error-5xx-every", type=int, default=0)
    p.add_argument("--error-5xx-status", type=_status_list, default=503, help="e.g. 503 or 500,502,503,504")
    p.add_argument("--reset-every", type=int, default=0)
    p.add_argument("--stall-every", type=int, default=0)
    p.add_argument("--stall-seconds", type=float, default=5.0)
    p.add_argument("--invalid-json-every", type=int, default=0)
    p.add_argument("--latency-spike-every", type=int, default=0)
    p.add_argument("--latency-spike-seconds", type=float, default=1.0)
    p.add_argument("--fault-token-endpoint", action="store_true")
    p.add_argument(
        "--answers-per-response",
        type=int,
        default=None,
        help="every response has exactly N answers, the last to a question no longer in the survey, "
        "and a numeric user attribute (default: varied)",
    )
    p.add_argument("--config-out", help="write the tap config JSON to this file")
    a = p.parse_args(argv)

    sim = HotjarSimulator(
        seed=a.seed,
        sites=a.sites,
        surveys_per_site=a.surveys_per_site,
        responses_per_survey=a.responses_per_survey,
        empty_sites=a.empty_sites,
        empty_surveys=a.empty_surveys,
        client_id=a.client_id,
        client_secret=a.client_secret,
        host=a.host,
        port=a.port,
        token_lifetime=a.token_lifetime,
        rate_limit=a.rate_limit,
        latency=a.latency,
        organization_id=a.organization_id,
        answers_per_response=a.answers_per_response,
    )
    faults = {
        "error_429_every": a.error_429_every,
        "retry_after": a.retry_after,
        "error_5xx_every": a.error_5xx_every,
        "error_5xx_status": a.error_5xx_status,
        "reset_every": a.reset_every,
        "stall_every": a.stall_every,
        "stall_seconds": a.stall_seconds,
        "invalid_json_every": a.invalid_json_every,
        "latency_spike_every": a.latency_spike_every,
        "latency_spike_seconds": a.latency_spike_seconds,
        "fault_token_endpoint": a.fault_token_endpoint,
    }
    sim.set_faults(**faults)

    done = threading.Event()

    def _stop(signum: int, frame: object) -> None:
        done.set()

    # Installed before the first line is printed: a reader may signal right after it.
    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    try:
        sim.start()
    except OSError as e:
        print(f"cannot listen on {a.host}:{a.port}: {e.strerror or e}", file=sys.stderr)
        return 2
    config = sim.config()
    if a.config_out:
        with open(a.config_out, "w", encoding="utf-8") as f:
            json.dump(config, f, indent=2)
            f.write("\n")
    print(f"url: {sim.url}")
    print(f"client_id: {sim.client_id}")
    print(f"client_secret: {sim.client_secret}")
    print(f"site_ids: {','.join(str(s) for s in sim.site_ids)}")
    print(f"empty_site_ids: {','.join(str(s) for s in sim.empty_site_ids)}")
    print(f"organization_id: {sim.organization_id}")
    print(f"config: {json.dumps(config)}", flush=True)

    while not done.wait(0.2):
        pass
    sim.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
