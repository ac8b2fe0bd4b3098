"""A Hotjar API simulator: a real HTTP/1.1 server on 127.0.0.1 (standard library only).

It follows ../shared/reference/hotjar-api-reference.txt: OAuth client-credentials
tokens that really expire, the survey list / survey / responses endpoints with cursor
pagination, user lookup, the ``{"code", "msg"}`` error body, 401/403/404/400/429, and
switches to inject latency, 429s, 5xx, resets, stalls and broken JSON.

Pagination and cursors
----------------------
``limit`` defaults to 100 (the documented maximum) when absent; ``limit`` must be an
integer 1..100, else 400.  Every list body is ``{"next_cursor": ..., "results": [...]}``;
``next_cursor`` is ``null`` exactly when no item is left after the page.

A cursor is an opaque string: ``"gAAAA+"`` followed by standard base64 (``+``, ``/``,
``=``) of an HMAC-signed, encrypted *keyset position*: the endpoint it belongs to (site,
and survey for responses) and the ``(created_time instant, id)`` of the last item of the
page it came with.  Cursors do not expire but are only valid on the simulator instance
that issued them (the key is random per instance).  The next page holds the items strictly after that position in the
endpoint's order (newest first by instant, ties by id descending).  Consequences:

* responses that arrive between two page requests are newer than every position, so
  they sort before the cursor: an ongoing pagination neither skips nor repeats an item
  because of them (it just does not see them; a new pagination starts with them);
* ``limit`` may change from page to page;
* a cursor needs URL-encoding (it always has ``+``, usually ``=`` and ``/``): a ``+``
  sent raw arrives as a space and the cursor is rejected;
* a cursor the server did not issue, a tampered one, or one issued for another
  endpoint, site or survey is answered 400 ``invalid_cursor``.

Rate limit, faults, counts
--------------------------
Every request under ``/v1/`` (the token endpoint included) counts against the rate
limit of its source address: a sliding one-second window of *admitted* requests; when
``rate_limit`` requests were admitted in the last second the request is answered 429
with an integer ``Retry-After``.  Injected faults (``set_faults``) count API requests
only (not ``/v1/oauth/token`` unless ``fault_token_endpoint=True``), numbered from the
last ``set_faults`` call.  ``/_sim/*`` control requests are never counted, logged or
limited.
"""

from __future__ import annotations

import base64
import binascii
import collections
import contextlib
import email.utils
import hashlib
import hmac
import http
import json
import math
import re
import secrets
import socket
import struct
import sys
import threading
import time
import traceback
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from .data import Dataset, SurveyData
from .mutation import MISSING, Mutation, apply_path, value_at

__all__ = [
    "CURSOR_PREFIX",
    "DEFAULT_LIMIT",
    "MAX_LIMIT",
    "DropConnection",
    "HotjarSimulator",
    "Reply",
    "SimRequest",
]

DEFAULT_LIMIT = 100
MAX_LIMIT = 100
CURSOR_PREFIX = "gAAAA+"
_MAC_LEN = 16
_MAX_BODY = 1 << 20

_FAULT_DEFAULTS: dict[str, Any] = {
    "error_429_every": 0,
    "retry_after": 1,
    "error_5xx_every": 0,
    "error_5xx_status": 503,
    "reset_every": 0,
    "stall_every": 0,
    "stall_seconds": 5.0,
    "invalid_json_every": 0,
    "latency_spike_every": 0,
    "latency_spike_seconds": 1.0,
    "fault_token_endpoint": False,
    # Answer the token request exactly like the reference's example, trailing
    # comma included ({"access_token": ..., "expires_in":3600,}): not JSON.
    "token_trailing_comma": False,
}
_EVERY_KEYS = (
    "error_429_every",
    "error_5xx_every",
    "reset_every",
    "stall_every",
    "invalid_json_every",
    "latency_spike_every",
)

_R_TOKEN = re.compile(r"^/v1/oauth/token$")
_R_SURVEYS = re.compile(r"^/v1/sites/([^/]+)/surveys$")
_R_SURVEY = re.compile(r"^/v1/sites/([^/]+)/surveys/([^/]+)$")
_R_RESPONSES = re.compile(r"^/v1/sites/([^/]+)/surveys/([^/]+)/responses$")
_R_LOOKUP = re.compile(r"^/v1/organizations/([^/]+)/user-lookup$")
_DIGITS = re.compile(r"^[0-9]{1,18}$")


class _HTTPError(Exception):
    """Raised inside a handler to answer at once."""

    def __init__(self, status: int, code: str, msg: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(msg)
        self.status = status
        self.body = json.dumps({"code": code, "msg": msg}).encode()
        self.headers = headers or {}


class DropConnection(Exception):
    """Raise it from a request hook: the connection is closed (TCP reset), no answer."""


_AbortError = DropConnection  # the name it had before it was public


class _CutError(Exception):
    """Send the status line, the headers and half the body, then close the connection."""

    def __init__(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        super().__init__(status)
        self.status = status
        self.body = body
        self.headers = headers


# What answers a request: (status, body, headers).
Reply = tuple[int, bytes, dict]


class SimRequest:
    """One API request as a request hook sees it (``set_request_hook``).

    ``route`` is one of token, surveys_list, survey_get, responses, user_lookup,
    other; ``args`` the ids from the path, as strings ((site,), (site, survey) or
    (organization,)); ``query`` maps each parameter to the list of its values.
    """

    __slots__ = ("args", "body", "client", "method", "path", "query", "route")

    def __init__(self, method: str, path: str, route: str, args: tuple, query: dict, body: bytes, client: str) -> None:
        self.method = method
        self.path = path
        self.route = route
        self.args = args
        self.query = query
        self.body = body
        self.client = client

    def __repr__(self) -> str:
        return f"SimRequest({self.method} {self.path} {self.route} {self.args})"


BeforeHook = Callable[[SimRequest], "Reply | None"]
AfterHook = Callable[[SimRequest, Reply], "Reply | None"]


class _ActiveMutation:
    __slots__ = ("hits", "id", "mutation", "site_id", "spent", "survey_id")

    def __init__(self, ident: int, mutation: Mutation, site_id: int | None, survey_id: str | None) -> None:
        self.id = ident
        self.mutation = mutation
        self.site_id = site_id  # where the target lives (located when set)
        self.survey_id = survey_id
        self.hits = 0
        self.spent = False


def _json(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _mime(content_type: str | None) -> tuple[str, dict[str, str]]:
    if not content_type:
        return "", {}
    parts = content_type.split(";")
    params = {}
    for p in parts[1:]:
        if "=" in p:
            k, v = p.split("=", 1)
            params[k.strip().lower()] = v.strip().strip('"').lower()
    return parts[0].strip().lower(), params


def _coerce_fault(key: str, value: Any) -> Any:
    """Validate one ``set_faults`` setting and bring it to its stored type."""
    if key in _EVERY_KEYS:
        every = int(value or 0)
        if every < 0:
            raise ValueError(f"{key} must be >= 0")
        return every
    if key == "retry_after":
        if value is None:
            return None
        seconds = math.ceil(float(value))
        if seconds < 0:
            raise ValueError("retry_after must be >= 0 or None")
        return seconds
    if key == "error_5xx_status":
        values = [int(v) for v in (value if isinstance(value, (list, tuple)) else [value])]
        if not values or any(v not in (500, 502, 503, 504) for v in values):
            raise ValueError("error_5xx_status must be 500, 502, 503, 504 or a list of them")
        return values if len(values) > 1 else values[0]
    if key in ("fault_token_endpoint", "token_trailing_comma"):
        return bool(value)
    number = float(value or 0.0)  # latency, *_seconds, token_lifetime, rate_limit (0: off)
    if number < 0:
        raise ValueError(f"{key} must be >= 0")
    return number


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, addr: tuple[str, int], sim: HotjarSimulator) -> None:
        self.sim = sim
        self.open_sockets: set[socket.socket] = set()
        self.sockets_lock = threading.Lock()
        super().__init__(addr, _Handler)

    def process_request(self, request, client_address):  # type: ignore[no-untyped-def]
        with self.sockets_lock:
            self.open_sockets.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request):  # type: ignore[no-untyped-def]
        with self.sockets_lock:
            self.open_sockets.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request, client_address):  # type: ignore[no-untyped-def]
        # Client disconnects (timeouts, resets) are normal here; anything else is a bug.
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, TimeoutError, OSError)):
            return
        super().handle_error(request, client_address)

    def close_all(self) -> None:
        with self.sockets_lock:
            socks = list(self.open_sockets)
        for s in socks:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "HotjarSimulator/1.0"
    sys_version = ""
    disable_nagle_algorithm = True
    timeout = 300
    server: _Server

    def log_message(self, *args: Any) -> None:
        """Silent: no per-request logging."""

    def do_GET(self) -> None:
        self.server.sim._handle(self, "GET")

    def do_POST(self) -> None:
        self.server.sim._handle(self, "POST")

    def do_PUT(self) -> None:
        self.server.sim._handle(self, "PUT")

    def do_PATCH(self) -> None:
        self.server.sim._handle(self, "PATCH")

    def do_DELETE(self) -> None:
        self.server.sim._handle(self, "DELETE")

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        # Malformed requests (bad request line, huge headers, unknown method): JSON too.
        self.close_connection = True
        body = json.dumps(
            {"code": "bad_request" if code < 500 else "not_implemented", "msg": message or http.HTTPStatus(code).phrase}
        ).encode()
        with contextlib.suppress(OSError):
            self._write(code, body, {})

    def _write(
        self,
        status: int,
        body: bytes,
        headers: dict[str, str],
        content_type: str = "application/json",
        length: int | None = None,
    ) -> None:
        try:
            phrase = http.HTTPStatus(status).phrase
        except ValueError:  # 499 and other statuses a mutation may send
            phrase = "Unknown"
        lines = [
            f"HTTP/1.1 {status} {phrase}",
            f"Server: {self.server_version}",
            f"Date: {email.utils.formatdate(usegmt=True)}",
        ]
        if (body or status not in (202, 204)) and not any(k.lower() == "content-type" for k in headers):
            lines.append(f"Content-Type: {content_type}")
        lines.append(f"Content-Length: {len(body) if length is None else length}")
        for k, v in headers.items():
            lines.append(f"{k}: {v}")
        if self.close_connection:
            lines.append("Connection: close")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        self.wfile.write(head + body)

    def _cut(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        """Headers announcing the whole body, half of it, then an orderly close (FIN)."""
        self.close_connection = True
        filler = body or b'{"code":"accepted","msg":"this answer is cut short on purpose"}'
        with contextlib.suppress(OSError):
            self._write(status, filler[: len(filler) // 2], headers, length=len(filler))
            self.wfile.flush()
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_WR)
        with contextlib.suppress(OSError):
            self.connection.close()

    def _abort(self) -> None:
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        with contextlib.suppress(OSError):
            self.connection.close()


class HotjarSimulator:
    """The Hotjar API on 127.0.0.1, with ground truth and fault switches for tests.

    See the module docstring for pagination, cursor, rate-limit and fault semantics.
    """

    def __init__(
        self,
        seed: int = 0,
        sites: int = 3,
        surveys_per_site: int = 4,
        responses_per_survey: int | tuple[int, int] = 120,
        empty_sites: int = 1,
        empty_surveys: int = 1,
        client_id: str = "sim-client-id",
        client_secret: str = "sim-client-secret",
        host: str = "127.0.0.1",
        port: int = 0,
        token_lifetime: float = 3600.0,
        rate_limit: float | None = 50.0,
        latency: float = 0.0,
        organization_id: int = 424242,
        extra_fields: bool = False,
    ) -> None:
        self.data = Dataset(
            extra_fields=extra_fields,
            seed=seed,
            sites=sites,
            surveys_per_site=surveys_per_site,
            responses_per_survey=responses_per_survey,
            empty_sites=empty_sites,
            empty_surveys=empty_surveys,
        )
        self.client_id = client_id
        self.client_secret = client_secret
        self.host = host
        self.port = port
        self.organization_id = int(organization_id)
        self._base = {
            "latency": float(latency or 0.0),
            "token_lifetime": float(token_lifetime),
            "rate_limit": float(rate_limit) if rate_limit else 0.0,
        }
        self._lock = threading.RLock()
        self._key = secrets.token_bytes(32)
        self._tokens: dict[str, float] = {}
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._windows: dict[str, collections.deque] = {}
        self._cache: collections.OrderedDict = collections.OrderedDict()
        self._user_lookups: list[dict] = []
        self._faults: dict[str, Any] = {}
        self._set_faults_locked({}, reset=True)
        self._reset_counts_locked()
        self._hooks: tuple[BeforeHook | None, AfterHook | None] = (None, None)
        self._mutations: list[_ActiveMutation] = []
        self._mutation_log: list[dict] = []
        self._mutation_ids = 0

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> HotjarSimulator:
        if self._server is not None:
            return self
        self._server = _Server((self.host, self.port), self)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"hotjar-sim-{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.close_all()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> HotjarSimulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("simulator not started")
        return f"http://{self.host}:{self.port}"

    @property
    def site_ids(self) -> list[int]:
        return list(self.data.site_ids)

    @property
    def empty_site_ids(self) -> list[int]:
        return list(self.data.empty_site_ids)

    def config(self, **overrides: Any) -> dict:
        cfg = {
            "client_id": self.client_id,
            "client_secret": self.client_secret,
            "site_ids": self.site_ids,
            "api_url": self.url,
        }
        cfg.update(overrides)
        return cfg

    # --------------------------------------------------------------- ground truth

    def _site(self, site_id: int):  # type: ignore[no-untyped-def]
        site = self.data.sites.get(int(site_id))
        if site is None:
            raise KeyError(f"unknown site {site_id}")
        return site

    def surveys(self, site_id: int) -> list[dict]:
        """Survey objects with questions, in list order (newest first)."""
        with self._lock:
            items = [s.with_q_bytes for s in reversed(self._site(site_id).surveys)]
        return [json.loads(b) for b in items]

    def survey_ids(self, site_id: int) -> list[str]:
        with self._lock:
            return [s.id for s in reversed(self._site(site_id).surveys)]

    def responses(self, site_id: int, survey_id: str) -> list[dict]:
        """The survey's responses, newest first, exactly as served."""
        with self._lock:
            sv = self._survey_or_keyerror(site_id, survey_id)
            bodies = sv.bodies[::-1]
        return [json.loads(b) for b in bodies]

    def ground_truth(self) -> dict:
        """Everything served: ``{"organization_id", "site_ids", "sites": {site: {...}}}``."""
        return json.loads(self._ground_truth_bytes())

    def _survey_or_keyerror(self, site_id: int, survey_id: str) -> SurveyData:
        self._site(site_id)
        sv = self.data.survey(int(site_id), survey_id)
        if sv is None:
            raise KeyError(f"unknown survey {survey_id!r} on site {site_id}")
        return sv

    def _ground_truth_bytes(self) -> bytes:
        parts = [
            b'{"organization_id":',
            str(self.organization_id).encode(),
            b',"site_ids":',
            _json(self.data.site_ids),
            b',"sites":{',
        ]
        with self._lock:
            first_site = True
            for site_id in self.data.site_ids:
                site = self.data.sites[site_id]
                if not first_site:
                    parts.append(b",")
                first_site = False
                svs = list(reversed(site.surveys))
                parts.append(b'"%d":{"surveys":[' % site_id)
                parts.append(b",".join(s.with_q_bytes for s in svs))
                parts.append(b'],"responses":{')
                parts.append(b",".join(b'"' + s.id.encode() + b'":[' + b",".join(s.bodies[::-1]) + b"]" for s in svs))
                parts.append(b"}}")
        parts.append(b"}}")
        return b"".join(parts)

    # -------------------------------------------------------------------- control

    def add_responses(self, site_id: int, survey_id: str, n: int) -> list[dict]:
        """Add ``n`` responses newer than everything; visible at once. Newest first."""
        if int(n) < 0:
            raise ValueError("n must be >= 0")
        with self._lock:
            self._survey_or_keyerror(site_id, survey_id)
            bodies = self.data.add_responses(int(site_id), survey_id, int(n))
        return [json.loads(b) for b in bodies]

    def delete_survey(self, site_id: int, survey_id: str) -> None:
        with self._lock:
            self._survey_or_keyerror(site_id, survey_id)
            self.data.delete_survey(int(site_id), survey_id)

    def delete_responses(self, site_id: int, survey_id: str, response_ids: list[str]) -> int:
        """Delete responses of a survey, as someone in Hotjar or an erasure would; returns how many existed."""
        with self._lock:
            self._survey_or_keyerror(site_id, survey_id)
            return self.data.delete_responses(int(site_id), survey_id, list(response_ids))

    def delete_question(self, site_id: int, survey_id: str, question_id: str) -> None:
        """Remove a question from its survey (answers already given to it stay in their responses)."""
        with self._lock:
            self._survey_or_keyerror(site_id, survey_id)
            self.data.delete_question(int(site_id), survey_id, question_id)

    def revoke_tokens(self) -> None:
        with self._lock:
            self._tokens.clear()

    def set_faults(self, **kw: Any) -> dict:
        """Switch faults on or off.

        With no arguments: no fault at all, and latency, token_lifetime and rate_limit
        back to their constructor values.  With arguments: only those change.  The
        "every N" counters restart at every call.  Returns the settings in force.
        """
        with self._lock:
            return self._set_faults_locked(kw, reset=not kw)

    def _set_faults_locked(self, kw: dict, reset: bool) -> dict:
        current = dict(_FAULT_DEFAULTS, **self._base) if reset else dict(self._faults)
        for key, value in kw.items():
            if key not in current:
                raise TypeError(f"unknown fault setting {key!r}")
            current[key] = _coerce_fault(key, value)
        self._faults = current
        self._fault_n = 0
        self._fault_5xx_n = 0
        return dict(current)

    def faults(self) -> dict:
        with self._lock:
            return dict(self._faults)

    # -------------------------------------------------------- hooks and mutations

    def set_request_hook(self, before: BeforeHook | None = None, after: AfterHook | None = None) -> None:
        """Per-request hooks for tests (``None`` removes them). Called on the handler thread.

        ``before(request)`` runs as each API request (token included) arrives, before
        latency, the rate limit and faults: a ``(status, body, headers)`` it returns is
        the answer; raising ``DropConnection`` closes the connection unanswered.
        ``after(request, reply)`` sees every answer about to be written (the simulator's
        own, mutated or not, or the one ``before`` gave) and may return another.
        """
        with self._lock:
            self._hooks = (before, after)

    def set_mutation(self, **kw: Any) -> dict:
        """Serve one item malformed (see README, "Mutations"); replaces any other mutation.

        Returns the mutation as stored, with its ``id``. The data is never changed:
        ``ground_truth()`` and the other views stay the unmutated truth.
        """
        with self._lock:
            self._mutations = []
            self._mutation_log = []
            return self._add_mutation_locked(kw)

    def add_mutation(self, **kw: Any) -> dict:
        """Like ``set_mutation``, keeping the mutations already set (applied in order)."""
        with self._lock:
            return self._add_mutation_locked(kw)

    def clear_mutation(self) -> None:
        """No mutation any more; the mutation log is emptied too."""
        with self._lock:
            self._mutations = []
            self._mutation_log = []

    def mutations(self) -> list[dict]:
        """The mutations set, each with ``id``, ``hits`` (answers it changed) and ``spent``."""
        with self._lock:
            return [{**a.mutation.as_dict(), "id": a.id, "hits": a.hits, "spent": a.spent} for a in self._mutations]

    def mutation_log(self) -> list[dict]:
        """One entry per answer a mutation changed, in order: ``mutation`` (its id),
        ``route``, ``site_id``, ``survey_id``, ``page``, ``cursor`` (the one the
        request sent), ``status`` and ``body`` (the text served; for ``cut``, all of
        it, of which half was sent)."""
        with self._lock:
            return [dict(e) for e in self._mutation_log]

    def _add_mutation_locked(self, kw: dict) -> dict:
        mutation = Mutation.from_kwargs(**kw)
        site_id, survey_id = self._locate(mutation)
        self._mutation_ids += 1
        active = _ActiveMutation(self._mutation_ids, mutation, site_id, survey_id)
        self._mutations.append(active)
        return {**mutation.as_dict(), "id": active.id, "hits": 0, "spent": False}

    def _locate(self, m: Mutation) -> tuple[int | None, str | None]:
        """Where the target lives; KeyError / IndexError for a target that does not exist."""
        if m.target in ("response", "answer"):
            found = [
                sv
                for (site_id, _), sv in self.data.by_id.items()
                if not sv.deleted
                and (m.site_id is None or site_id == m.site_id)
                and (m.survey_id is None or sv.id == m.survey_id)
                and any(key[1] == m.response_id for key in sv.keys)
            ]
            if not found:
                raise KeyError(f"no response {m.response_id!r}")
            sv = found[0]
            if m.target == "answer":
                body = sv.bodies[next(i for i, key in enumerate(sv.keys) if key[1] == m.response_id)]
                answers = json.loads(body).get("answers") or []
                if not 0 <= int(m.index or 0) < len(answers):
                    raise IndexError(f"response {m.response_id} has {len(answers)} answers, no index {m.index}")
            return sv.site_id, sv.id
        if m.target in ("survey", "question"):
            found = [
                sv
                for (site_id, survey_id), sv in self.data.by_id.items()
                if survey_id == m.survey_id and not sv.deleted and (m.site_id is None or site_id == m.site_id)
            ]
            if not found:
                raise KeyError(f"no survey {m.survey_id!r}")
            sv = found[0]
            if m.target == "question" and not 0 <= int(m.index or 0) < len(sv.questions):
                raise IndexError(f"survey {m.survey_id} has {len(sv.questions)} questions, no index {m.index}")
            return sv.site_id, sv.id
        if m.target == "page":
            self._site(int(m.site_id or 0))
            if m.survey_id is not None:
                self._survey_or_keyerror(int(m.site_id or 0), m.survey_id)
            return m.site_id, m.survey_id
        return None, None

    def _mutate(self, route: str, args: tuple, query: dict, reply: Reply) -> Reply:
        """Apply the mutations that concern this answer (see set_mutation)."""
        with self._lock:
            active = [a for a in self._mutations if not a.spent]
        if not active:
            return reply
        status, out, headers = reply
        if route == "user_lookup":
            for a in active:
                if a.mutation.target == "user_lookup" and self._take(a):
                    return self._replace(a, route, None, None, None, None, reply)
            return reply
        if status != 200 or route not in ("surveys_list", "survey_get", "responses"):
            return reply
        site_id = int(args[0])
        survey_id = args[1] if route != "surveys_list" else None
        relevant = [a for a in active if self._concerns(a, route, site_id, survey_id)]
        if not relevant:
            return reply
        doc = json.loads(out)
        cursor = (query.get("cursor") or [None])[-1]
        page = self._page_number(route, site_id, survey_id, doc, query)
        changed = []
        for a in relevant:
            m = a.mutation
            if m.target == "page" and (m.page or 0) != page:
                continue
            if m.op in ("reply", "cut"):
                if self._take(a):
                    return self._replace(a, route, site_id, survey_id, page, cursor, reply)
                continue
            if m.op == "echo_cursor":
                if cursor is None or not self._take(a):
                    continue  # a first page has no cursor to send back
                doc["next_cursor"] = cursor
                changed.append(a)
                continue
            where = self._item_path(a, route, doc)
            if where is None:
                continue
            if m.op != "set" and value_at(doc, (*where, *m.path)) is MISSING:
                continue  # nothing there to change (e.g. a survey listed without questions)
            if not self._take(a):
                continue
            doc = apply_path(doc, (*where, *m.path), m.new_value)
            changed.append(a)
        if not changed:
            return reply
        body = b"" if doc is MISSING else _json(doc)
        with self._lock:
            for a in changed:
                self._mutation_log.append(
                    {
                        "mutation": a.id,
                        "route": route,
                        "site_id": site_id,
                        "survey_id": survey_id,
                        "page": page,
                        "cursor": cursor,
                        "status": status,
                        "body": body.decode("utf-8"),
                    }
                )
        return status, body, headers

    def _take(self, a: _ActiveMutation) -> bool:
        """Count one use of a mutation; False if a transient one was spent meanwhile."""
        with self._lock:
            if a.spent:
                return False
            a.hits += 1
            a.spent = a.mutation.transient
            return True

    def _replace(
        self,
        a: _ActiveMutation,
        route: str,
        site_id: int | None,
        survey_id: str | None,
        page: int | None,
        cursor: str | None,
        reply: Reply,
    ) -> Reply:
        m = a.mutation
        status = int(m.status) if m.status is not None else (reply[0] if m.op == "cut" else 200)
        body = reply[1] if m.body is None and m.op == "cut" else (m.body or "").encode("utf-8")
        headers = dict(m.headers or {})
        with self._lock:
            self._mutation_log.append(
                {
                    "mutation": a.id,
                    "route": route,
                    "site_id": site_id,
                    "survey_id": survey_id,
                    "page": page,
                    "cursor": cursor,
                    "status": status,
                    "body": body.decode("utf-8", "replace"),
                }
            )
        if m.op == "cut":
            raise _CutError(status, body, headers)
        return status, body, headers

    @staticmethod
    def _concerns(a: _ActiveMutation, route: str, site_id: int, survey_id: str | None) -> bool:
        m = a.mutation
        if m.target == "page":
            return route != "survey_get" and a.site_id == site_id and a.survey_id == survey_id
        if m.target in ("survey", "question"):
            return (
                route in ("surveys_list", "survey_get")
                and a.site_id == site_id
                and (route == "surveys_list" or a.survey_id == survey_id)
            )
        if m.target in ("response", "answer"):
            return route == "responses" and a.site_id == site_id and a.survey_id == survey_id
        return False

    def _page_number(self, route: str, site_id: int, survey_id: str | None, doc: Any, query: dict) -> int | None:
        """0 for the first page of a list, 1 for the next, ... (pages of `limit` items)."""
        if route == "survey_get":
            return None
        items = doc.get("results") if isinstance(doc, dict) else None
        if not items:
            return 0
        with self._lock:
            if route == "surveys_list":
                ids = [s.id for s in reversed(self._site(site_id).surveys)]
            else:
                ids = [key[1] for key in reversed(self._survey_or_keyerror(site_id, str(survey_id)).keys)]
        first = items[0].get("id") if isinstance(items[0], dict) else None
        if first not in ids:
            return None
        return ids.index(first) // self._limit(query)

    @staticmethod
    def _item_path(a: _ActiveMutation, route: str, doc: Any) -> tuple | None:
        """Path in the served document of the item a mutation changes, or None if absent."""
        m = a.mutation
        if m.target == "page":
            return ()
        if route == "survey_get":
            item: tuple = ()
            target = doc
        else:
            wanted = m.response_id if m.target in ("response", "answer") else a.survey_id
            results = doc.get("results") if isinstance(doc, dict) else None
            if not isinstance(results, list):
                return None
            index = next((i for i, r in enumerate(results) if isinstance(r, dict) and r.get("id") == wanted), None)
            if index is None:
                return None
            item = ("results", index)
            target = results[index]
        if m.target == "answer":
            answers = target.get("answers")
            if not isinstance(answers, list) or not 0 <= int(m.index or 0) < len(answers):
                return None
            return (*item, "answers", m.index)
        if m.target == "question":
            questions = target.get("questions")
            if not isinstance(questions, list) or not 0 <= int(m.index or 0) < len(questions):
                return None  # listed without questions
            return (*item, "questions", m.index)
        return item

    def counts(self) -> dict:
        with self._lock:
            c = dict(self._counts)
            c["status"] = dict(self._counts["status"])
            c["responses_by_survey"] = dict(self._counts["responses_by_survey"])
            times = sorted(entry[0] for entry in self._log)
        best = 0
        j = 0
        for i, t in enumerate(times):
            while times[j] <= t - 1.0:
                j += 1
            best = max(best, i - j + 1)
        c["max_requests_in_any_1s_window"] = best
        return c

    def reset_counts(self) -> None:
        with self._lock:
            self._reset_counts_locked()

    def _reset_counts_locked(self) -> None:
        self._counts: dict[str, Any] = {
            "token": 0,
            "surveys_list": 0,
            "survey_get": 0,
            "responses": 0,
            "user_lookup": 0,
            "total": 0,
            "status": {},
            "responses_by_survey": {},
        }
        self._log: list[list] = []

    @property
    def requests_log(self) -> list[tuple]:
        """(monotonic arrival time, method, path, query dict, status) per ``/v1`` request.

        ``query`` maps each parameter to its (last) decoded value; ``status`` is 0 for
        a connection reset by the ``reset_every`` fault and ``None`` while the request
        is still being answered (e.g. stalled).  Requests are logged and counted on
        arrival; their status is counted just before the answer is written.
        """
        with self._lock:
            return [tuple(e[:5]) for e in self._log]

    @property
    def user_lookups(self) -> list[dict]:
        with self._lock:
            return json.loads(json.dumps(self._user_lookups))

    # ------------------------------------------------------------------ requests

    def _handle(self, h: _Handler, method: str) -> None:
        t0 = time.monotonic()
        split = urlsplit(h.path)
        path = split.path
        try:
            body = self._read_body(h)
        except _HTTPError as r:
            h.close_connection = True
            self._safe_write(h, r.status, r.body, r.headers)
            return
        if path.startswith("/_sim/"):
            try:
                status, out, headers = self._control(method, path, body)
            except _HTTPError as r:
                status, out, headers = r.status, r.body, r.headers
            except Exception:  # noqa: BLE001 - a simulator bug: say so loudly
                traceback.print_exc()
                status, out, headers = 500, _json({"code": "internal_error", "msg": "simulator bug"}), {}
            self._safe_write(h, status, out, headers)
            return
        query = parse_qs(split.query, keep_blank_values=True)
        route, args = self._route(path)
        entry = self._arrive(t0, method, path, query, route, args)
        try:
            status, out, headers = self._api(h, t0, method, route, args, query, body)
        except DropConnection:
            self._finish(entry, 0)
            h._abort()
            return
        except _CutError as cut:
            self._finish(entry, cut.status)
            h._cut(cut.status, cut.body, cut.headers)
            return
        except Exception:  # noqa: BLE001 - a simulator bug: say so loudly, answer 500
            traceback.print_exc()
            status, out, headers = 500, _json({"code": "internal_error", "msg": "simulator bug"}), {}
        self._finish(entry, status)
        self._safe_write(h, status, out, headers)

    def _safe_write(self, h: _Handler, status: int, body: bytes, headers: dict[str, str]) -> None:
        try:
            h._write(status, body, headers)
        except OSError:
            h.close_connection = True

    @staticmethod
    def _read_body(h: _Handler) -> bytes:
        te = (h.headers.get("Transfer-Encoding") or "").lower()
        if "chunked" in te:
            chunks = []
            total = 0
            while True:
                line = h.rfile.readline(65537)
                try:
                    size = int(line.split(b";")[0].strip(), 16)
                except ValueError:
                    raise _HTTPError(400, "bad_request", "malformed chunked body") from None
                if size == 0:
                    while h.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass
                    break
                total += size
                if total > _MAX_BODY:
                    raise _HTTPError(413, "payload_too_large", "request body too large")
                chunks.append(h.rfile.read(size))
                h.rfile.readline(65537)
            return b"".join(chunks)
        length = h.headers.get("Content-Length")
        if not length:
            return b""
        try:
            n = int(length)
        except ValueError:
            raise _HTTPError(400, "bad_request", "invalid Content-Length") from None
        if n < 0 or n > _MAX_BODY:
            raise _HTTPError(413, "payload_too_large", "request body too large")
        return h.rfile.read(n)

    @staticmethod
    def _route(path: str) -> tuple[str, tuple]:
        for name, rx in (
            ("responses", _R_RESPONSES),
            ("survey_get", _R_SURVEY),
            ("surveys_list", _R_SURVEYS),
            ("token", _R_TOKEN),
            ("user_lookup", _R_LOOKUP),
        ):
            m = rx.match(path)
            if m:
                return name, tuple(unquote(g) for g in m.groups())
        return "other", ()

    def _arrive(self, t0: float, method: str, path: str, query: dict, route: str, args: tuple) -> list:
        """Count a request as it arrives (so a stalled one is counted at once)."""
        with self._lock:
            entry = [t0, method, path, {k: v[-1] for k, v in query.items()}, None, self._log]
            c = self._counts
            c["total"] += 1
            if route != "other":
                c[route] += 1
            if route == "responses":
                by = c["responses_by_survey"]
                by[args[1]] = by.get(args[1], 0) + 1
            self._log.append(entry)
        return entry

    def _finish(self, entry: list, status: int) -> None:
        """Record the status before the answer is written: counts are never behind."""
        with self._lock:
            entry[4] = status
            if entry[5] is self._log:  # not reset since it arrived
                key = str(status) if status else "reset"
                self._counts["status"][key] = self._counts["status"].get(key, 0) + 1

    def _api(
        self, h: _Handler, t0: float, method: str, route: str, args: tuple, query: dict, body: bytes
    ) -> tuple[int, bytes, dict]:
        with self._lock:
            before, after = self._hooks
        request = None
        if before is not None or after is not None:
            request = SimRequest(method, h.path.split("?", 1)[0], route, args, query, body, h.client_address[0])
        reply = before(request) if before is not None and request is not None else None
        if reply is None:
            reply = self._serve(h, t0, method, route, args, query, body)
        if after is not None and request is not None:
            reply = after(request, reply) or reply
        return reply

    def _serve(
        self, h: _Handler, t0: float, method: str, route: str, args: tuple, query: dict, body: bytes
    ) -> tuple[int, bytes, dict]:
        with self._lock:
            faults = self._faults
        if faults["latency"]:
            time.sleep(faults["latency"])
        try:
            self._rate_limit(h.client_address[0], t0, faults["rate_limit"])
        except _HTTPError as r:
            return r.status, r.body, r.headers
        garble = False
        if route != "token" or faults["fault_token_endpoint"]:
            with self._lock:
                self._fault_n += 1
                n = self._fault_n

            def hit(key: str) -> bool:
                every = faults[key]
                return bool(every) and n % every == 0

            if hit("reset_every"):
                raise DropConnection()
            if hit("stall_every"):
                time.sleep(faults["stall_seconds"])
            if hit("latency_spike_every"):
                time.sleep(faults["latency_spike_seconds"])
            if hit("error_5xx_every"):
                statuses = faults["error_5xx_status"]
                if isinstance(statuses, list):
                    with self._lock:
                        status = statuses[self._fault_5xx_n % len(statuses)]
                        self._fault_5xx_n += 1
                else:
                    status = statuses
                code = {500: "internal_error", 502: "bad_gateway", 503: "service_unavailable", 504: "gateway_timeout"}[
                    status
                ]
                return status, _json({"code": code, "msg": "injected server error"}), {}
            if hit("error_429_every"):
                headers = {}
                if faults["retry_after"] is not None:
                    headers["Retry-After"] = str(faults["retry_after"])
                return 429, _json({"code": "too_many_requests", "msg": "rate limit exceeded (injected)"}), headers
            garble = hit("invalid_json_every")
        try:
            status, out, headers = self._dispatch(h, method, route, args, query, body, faults)
        except _HTTPError as r:
            status, out, headers = r.status, r.body, r.headers
        status, out, headers = self._mutate(route, args, query, (status, out, headers))
        if garble and status == 200:
            out = out[: max(1, len(out) // 2)] + b"\x00<garbled"
        return status, out, headers

    def _rate_limit(self, client: str, t0: float, limit: float) -> None:
        if not limit:
            return
        with self._lock:
            window = self._windows.get(client)
            if window is None:
                window = self._windows[client] = collections.deque()
            while window and window[0] <= t0 - 1.0:
                window.popleft()
            if len(window) >= limit:
                wait = max(1, math.ceil(window[0] + 1.0 - t0))
                raise _HTTPError(
                    429,
                    "too_many_requests",
                    f"rate limit of {limit:g} requests per second exceeded",
                    {"Retry-After": str(wait)},
                )
            window.append(t0)

    def _dispatch(
        self, h: _Handler, method: str, route: str, args: tuple, query: dict, body: bytes, faults: dict
    ) -> tuple[int, bytes, dict]:
        if route == "other":
            raise _HTTPError(404, "not_found", "no such endpoint")
        allowed = "POST" if route in ("token", "user_lookup") else "GET"
        if method != allowed:
            raise _HTTPError(405, "method_not_allowed", f"use {allowed}", {"Allow": allowed})
        if route == "token":
            return self._token(h, body, faults)
        self._authenticate(h)
        if route == "user_lookup":
            return self._user_lookup(h, args[0], body)
        site = self._site_or_404(args[0])
        if route == "surveys_list":
            return self._surveys_list(site, query)
        sv = self.data.survey(site.site_id, args[1])
        if sv is None:
            raise _HTTPError(404, "not_found", f"survey {args[1]} not found on site {site.site_id}")
        if route == "survey_get":
            return 200, sv.with_q_bytes, {}
        return self._responses_page(sv, query)

    # --------------------------------------------------------------------- auth

    def _token(self, h: _Handler, body: bytes, faults: dict) -> tuple[int, bytes, dict]:
        mime, params = _mime(h.headers.get("Content-Type"))
        if mime != "application/x-www-form-urlencoded":
            raise _HTTPError(
                415, "unsupported_media_type", "the token request must be encoded as application/x-www-form-urlencoded"
            )
        charset = params.get("charset", "utf-8")
        if charset not in ("utf-8", "utf8"):
            raise _HTTPError(415, "unsupported_media_type", f"unsupported charset {charset}")
        try:
            form = parse_qs(body.decode("utf-8"), keep_blank_values=True)
        except UnicodeDecodeError:
            raise _HTTPError(400, "invalid_request", "the body is not valid UTF-8") from None
        values = {k: v[-1] for k, v in form.items()}
        missing = [k for k in ("grant_type", "client_id", "client_secret") if not values.get(k)]
        if missing:
            raise _HTTPError(400, "invalid_request", f"missing parameter(s): {', '.join(missing)}")
        if values["grant_type"] != "client_credentials":
            raise _HTTPError(400, "unsupported_grant_type", "grant_type must be client_credentials")
        ok_id = hmac.compare_digest(values["client_id"].encode(), self.client_id.encode())
        ok_secret = hmac.compare_digest(values["client_secret"].encode(), self.client_secret.encode())
        if not (ok_id and ok_secret):
            raise _HTTPError(401, "invalid_client", "invalid client_id or client_secret")
        token = secrets.token_urlsafe(32)
        lifetime = faults["token_lifetime"]
        now = time.monotonic()
        with self._lock:
            self._tokens[token] = now + lifetime
            if len(self._tokens) > 1000:
                self._tokens = {k: v for k, v in self._tokens.items() if v > now}
        body_out = _json({"access_token": token, "token_type": "Bearer", "expires_in": math.floor(lifetime)})
        if faults["token_trailing_comma"]:
            body_out = body_out[:-1] + b",}"
        return 200, body_out, {"Cache-Control": "no-store"}

    def _authenticate(self, h: _Handler) -> None:
        value = h.headers.get("Authorization")
        challenge = {"WWW-Authenticate": 'Bearer realm="api.hotjar.io"'}
        if not value:
            raise _HTTPError(401, "unauthorized", "missing Authorization header", challenge)
        scheme, _, token = value.strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise _HTTPError(401, "unauthorized", "the Authorization header must be 'Bearer <token>'", challenge)
        with self._lock:
            expiry = self._tokens.get(token)
        if expiry is None:
            raise _HTTPError(403, "forbidden", "invalid access token")
        if time.monotonic() >= expiry:
            raise _HTTPError(403, "forbidden", "access token expired")

    # ---------------------------------------------------------------- endpoints

    def _site_or_404(self, raw: str):  # type: ignore[no-untyped-def]
        site = self.data.sites.get(int(raw)) if _DIGITS.match(raw) else None
        if site is None:
            raise _HTTPError(404, "not_found", f"site {raw} not found")
        return site

    @staticmethod
    def _single(query: dict, name: str) -> str | None:
        values = query.get(name)
        if values is None:
            return None
        if len(values) != 1:
            raise _HTTPError(400, "bad_request", f"parameter {name} given more than once")
        return values[0]

    def _limit(self, query: dict) -> int:
        raw = self._single(query, "limit")
        if raw is None:
            return DEFAULT_LIMIT
        if not re.fullmatch(r"[0-9]{1,6}", raw):
            raise _HTTPError(400, "invalid_limit", f"limit must be an integer between 1 and {MAX_LIMIT}")
        limit = int(raw)
        if not 1 <= limit <= MAX_LIMIT:
            raise _HTTPError(400, "invalid_limit", f"limit must be an integer between 1 and {MAX_LIMIT}")
        return limit

    def _make_cursor(self, scope: str, key: tuple[int, str]) -> str:
        payload = f"{scope}|{key[0]}|{key[1]}".encode()
        mac = hmac.new(self._key, payload, hashlib.sha256).digest()[:_MAC_LEN]
        # Encrypted (xor with a keyed stream) so nothing in the cursor is readable.
        stream = hashlib.shake_256(self._key + mac).digest(len(payload))
        raw = mac + struct.pack(">H", len(payload)) + bytes(a ^ b for a, b in zip(payload, stream, strict=True))
        raw += b"\0" * ((1 - len(raw)) % 3)  # length = 1 (mod 3): always "==" padding
        return CURSOR_PREFIX + base64.b64encode(raw).decode("ascii")

    def _read_cursor(self, scope: str, query: dict) -> tuple[int, str] | None:
        raw = self._single(query, "cursor")
        if raw is None:
            return None
        bad = _HTTPError(400, "invalid_cursor", "cursor is invalid or was not issued for this endpoint")
        if not raw.startswith(CURSOR_PREFIX):
            raise bad
        try:
            data = base64.b64decode(raw[len(CURSOR_PREFIX) :], validate=True)
        except (binascii.Error, ValueError):
            raise bad from None
        if len(data) < _MAC_LEN + 2:
            raise bad
        mac = data[:_MAC_LEN]
        (size,) = struct.unpack(">H", data[_MAC_LEN : _MAC_LEN + 2])
        enc = data[_MAC_LEN + 2 : _MAC_LEN + 2 + size]
        if len(enc) != size or len(data) != _MAC_LEN + 2 + size + (1 - (_MAC_LEN + 2 + size)) % 3:
            raise bad
        stream = hashlib.shake_256(self._key + mac).digest(size)
        payload = bytes(a ^ b for a, b in zip(enc, stream, strict=True))
        expected = hmac.new(self._key, payload, hashlib.sha256).digest()[:_MAC_LEN]
        if not hmac.compare_digest(mac, expected):
            raise bad
        try:
            got_scope, t, item_id = payload.decode().rsplit("|", 2)
            key = (int(t), item_id)
        except ValueError:
            raise bad from None
        if got_scope != scope:
            raise bad
        return key

    def _page(
        self, cache_key: tuple, keys: list, bodies: list, limit: int, position: tuple[int, str] | None, scope: str
    ) -> bytes:
        """Body of the page after ``position`` (newest first); cached by slice bounds."""
        with self._lock:
            end = len(keys) if position is None else self.data.position(keys, position)
            start = max(0, end - limit)
            ck = (*cache_key, start, end)
            body = self._cache.get(ck)
            if body is not None:
                self._cache.move_to_end(ck)
                return body
            items = bodies[start:end]
            last_key = keys[start] if start > 0 else None
        cursor = b"null" if last_key is None else b'"' + self._make_cursor(scope, last_key).encode() + b'"'
        items.reverse()
        body = b'{"next_cursor":' + cursor + b',"results":[' + b",".join(items) + b"]}"
        with self._lock:
            self._cache[ck] = body
            if len(self._cache) > 256:
                self._cache.popitem(last=False)
        return body

    def _surveys_list(self, site, query: dict) -> tuple[int, bytes, dict]:  # type: ignore[no-untyped-def]
        limit = self._limit(query)
        wq = self._single(query, "with_questions")
        if wq is None:
            with_q = False
        elif wq.lower() in ("true", "1"):
            with_q = True
        elif wq.lower() in ("false", "0"):
            with_q = False
        else:
            raise _HTTPError(400, "bad_request", "with_questions must be true or false")
        scope = f"S|{site.site_id}"
        position = self._read_cursor(scope, query)
        with self._lock:
            surveys = site.surveys
            bodies = [s.with_q_bytes if with_q else s.without_q_bytes for s in surveys]
            keys = site.keys
            gen = site.gen
        body = self._page(("S", site.site_id, gen, with_q), keys, bodies, limit, position, scope)
        return 200, body, {}

    def _responses_page(self, sv: SurveyData, query: dict) -> tuple[int, bytes, dict]:
        limit = self._limit(query)
        scope = f"R|{sv.site_id}|{sv.id}"
        position = self._read_cursor(scope, query)
        with self._lock:
            keys, bodies, gen = sv.keys, sv.bodies, sv.gen
        body = self._page(("R", sv.site_id, sv.id, gen), keys, bodies, limit, position, scope)
        return 200, body, {}

    def _user_lookup(self, h: _Handler, raw_org: str, body: bytes) -> tuple[int, bytes, dict]:
        if not _DIGITS.match(raw_org) or int(raw_org) != self.organization_id:
            raise _HTTPError(404, "not_found", f"organization {raw_org} not found")
        mime, params = _mime(h.headers.get("Content-Type"))
        if mime != "application/json":
            raise _HTTPError(
                415,
                "unsupported_media_type",
                "requests must be sent with Content-Type: application/json; charset=utf-8",
            )
        if params.get("charset", "utf-8") not in ("utf-8", "utf8"):
            raise _HTTPError(415, "unsupported_media_type", "the body must be UTF-8 JSON")
        try:
            doc = json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise _HTTPError(400, "invalid_json", "the body is not valid JSON") from None
        if not isinstance(doc, dict):
            raise _HTTPError(400, "bad_request", "the body must be a JSON object")
        allowed = {"data_subject_email", "data_subject_site_id_to_user_id_map", "delete_all_hits"}
        unknown = sorted(set(doc) - allowed)
        if unknown:
            raise _HTTPError(400, "bad_request", f"unknown field(s): {', '.join(unknown)}")
        email_addr = doc.get("data_subject_email")
        mapping = doc.get("data_subject_site_id_to_user_id_map")
        if "data_subject_email" in doc and (
            not isinstance(email_addr, str) or not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", email_addr)
        ):
            raise _HTTPError(400, "bad_request", "data_subject_email must be an email address string")
        if "data_subject_site_id_to_user_id_map" in doc:
            if not isinstance(mapping, dict) or not mapping:
                raise _HTTPError(400, "bad_request", "data_subject_site_id_to_user_id_map must be a non-empty object")
            for k, v in mapping.items():
                if not _DIGITS.match(k) or not isinstance(v, str) or not v:
                    raise _HTTPError(
                        400,
                        "bad_request",
                        "data_subject_site_id_to_user_id_map maps site id strings to user id strings",
                    )
        if email_addr is None and mapping is None:
            raise _HTTPError(
                400,
                "bad_request",
                "at least one of data_subject_email and data_subject_site_id_to_user_id_map is required",
            )
        if "delete_all_hits" in doc and not isinstance(doc["delete_all_hits"], bool):
            raise _HTTPError(400, "bad_request", "delete_all_hits must be a boolean")
        with self._lock:
            self._user_lookups.append({"organization_id": self.organization_id, "body": doc})
        return 202, b"", {}

    # ------------------------------------------------------------ HTTP control

    def _control(self, method: str, path: str, body: bytes) -> tuple[int, bytes, dict]:
        def args() -> dict:
            if not body:
                return {}
            try:
                doc = json.loads(body)
            except ValueError:
                raise _HTTPError(400, "invalid_json", "the body is not valid JSON") from None
            if not isinstance(doc, dict):
                raise _HTTPError(400, "bad_request", "the body must be a JSON object")
            return doc

        routes = {
            ("GET", "/_sim/counts"): self.counts,
            ("POST", "/_sim/reset-counts"): lambda: self._ok(self.reset_counts),
            ("POST", "/_sim/add-responses"): lambda: self._control_add(args()),
            ("POST", "/_sim/faults"): lambda: self._control_faults(args()),
            ("GET", "/_sim/faults"): self.faults,
            ("GET", "/_sim/user-lookups"): lambda: self.user_lookups,
            ("POST", "/_sim/revoke-tokens"): lambda: self._ok(self.revoke_tokens),
            ("POST", "/_sim/delete-survey"): lambda: self._control_delete(args()),
            ("POST", "/_sim/delete-responses"): lambda: self._control_delete_responses(args()),
            ("POST", "/_sim/delete-question"): lambda: self._control_delete_question(args()),
            ("POST", "/_sim/mutation"): lambda: self._control_mutation(args()),
            ("GET", "/_sim/mutation"): lambda: {"mutations": self.mutations(), "log": self.mutation_log()},
            ("GET", "/_sim/info"): lambda: {
                "url": self.url,
                "client_id": self.client_id,
                "client_secret": self.client_secret,
                "site_ids": self.site_ids,
                "empty_site_ids": self.empty_site_ids,
                "organization_id": self.organization_id,
            },
        }
        if (method, path) == ("GET", "/_sim/ground-truth"):
            return 200, self._ground_truth_bytes(), {}
        fn = routes.get((method, path))
        if fn is None:
            if any(p == path for _, p in routes) or path == "/_sim/ground-truth":
                raise _HTTPError(405, "method_not_allowed", "wrong method for this control endpoint")
            raise _HTTPError(404, "not_found", "no such control endpoint")
        return 200, _json(fn()), {}

    @staticmethod
    def _ok(action: Any) -> dict:
        action()
        return {"ok": True}

    def _control_faults(self, kw: dict) -> dict:
        try:
            return self.set_faults(**kw)
        except (TypeError, ValueError) as e:
            raise _HTTPError(400, "bad_request", str(e)) from None

    def _control_mutation(self, doc: dict) -> dict:
        """``{}`` clears; ``{"add": true, ...}`` adds; else the kwargs of set_mutation."""
        doc = dict(doc)
        add = bool(doc.pop("add", False))
        try:
            if not doc:
                self.clear_mutation()
                return {"mutations": []}
            stored = self.add_mutation(**doc) if add else self.set_mutation(**doc)
        except (TypeError, ValueError, KeyError, IndexError) as e:
            raise _HTTPError(400, "bad_request", str(e.args[0] if e.args else e)) from None
        return {"mutations": self.mutations(), "set": stored}

    def _control_add(self, doc: dict) -> dict:
        try:
            count = int(doc.get("count", 1))
        except (TypeError, ValueError):
            raise _HTTPError(400, "bad_request", "count must be an integer") from None
        if count < 0:
            raise _HTTPError(400, "bad_request", "count must be >= 0")
        added: dict[str, dict[str, int]] = {}
        if "site_id" in doc or "survey_id" in doc:
            try:
                self.add_responses(int(doc["site_id"]), str(doc["survey_id"]), count)
            except (KeyError, TypeError, ValueError) as e:
                raise _HTTPError(404, "not_found", f"no such survey: {e}") from None
            added[str(doc["site_id"])] = {str(doc["survey_id"]): count}
        else:
            with self._lock:
                for site_id in self.data.site_ids:
                    for sv in self.data.sites[site_id].surveys:
                        if sv.keys:
                            self.data.add_responses(site_id, sv.id, count)
                            added.setdefault(str(site_id), {})[sv.id] = count
        return {"added": added, "total": sum(n for d in added.values() for n in d.values())}

    def _control_delete(self, doc: dict) -> dict:
        try:
            self.delete_survey(int(doc["site_id"]), str(doc["survey_id"]))
        except (KeyError, TypeError, ValueError) as e:
            raise _HTTPError(404, "not_found", f"no such survey: {e}") from None
        return {"ok": True}

    def _control_delete_responses(self, doc: dict) -> dict:
        ids = doc.get("response_ids")
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            raise _HTTPError(400, "bad_request", "response_ids must be a list of strings")
        try:
            deleted = self.delete_responses(int(doc["site_id"]), str(doc["survey_id"]), ids)
        except (KeyError, TypeError, ValueError) as e:
            raise _HTTPError(404, "not_found", f"no such survey: {e}") from None
        return {"deleted": deleted}

    def _control_delete_question(self, doc: dict) -> dict:
        try:
            self.delete_question(int(doc["site_id"]), str(doc["survey_id"]), str(doc["question_id"]))
        except (KeyError, TypeError, ValueError) as e:
            raise _HTTPError(404, "not_found", f"no such question: {e}") from None
        return {"ok": True}
