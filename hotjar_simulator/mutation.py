"""Malformed answers on purpose: one field of one served item changed, for robustness tests.

A ``Mutation`` names a target (a response, an answer of a response, a survey, a
question of a survey, a whole list page, or the user-lookup answer), a JSON path
inside it, and an operation. The simulator applies it to the JSON it serves, never
to its data: ``ground_truth()`` and friends stay the unmutated truth, so a test can
compare what a client made of the broken page with what the page should have held.

Everything a mutation produces is deterministic (no randomness here), so a test can
compute the same broken value itself, and the simulator logs each body it served
mutated (``HotjarSimulator.mutation_log()``).
"""

from __future__ import annotations

import copy
import dataclasses
import json
import typing as t

__all__ = [
    "HUGE_LIST_ITEMS",
    "HUGE_STRING_CHARS",
    "MISSING",
    "OPS",
    "RETYPE_TO",
    "TARGETS",
    "Mutation",
    "apply_path",
    "json_type",
    "mutate_value",
    "value_at",
]

HUGE_STRING_CHARS = 300_000
HUGE_LIST_ITEMS = 10_000
HUGE_OBJECT_KEYS = 10_000
# Beyond the signed 64-bit range, which is where warehouses' BIGINT ends.
HUGE_INTEGER = 2**64

TARGETS = ("response", "answer", "survey", "question", "page", "user_lookup")
# Operations on a JSON value (any target but user_lookup):
VALUE_OPS = ("drop", "null", "retype", "huge", "wrap_list", "wrap_object", "set")
# Operations on the whole HTTP answer (page and user_lookup targets):
#   reply: answer with this status, body and headers instead;
#   cut: send the status line, the headers (Content-Length of the whole body) and
#        half the body, then close the connection.
#   echo_cursor (page only): next_cursor := the cursor the request sent (a loop).
REPLY_OPS = ("reply", "cut")
OPS = (*VALUE_OPS, *REPLY_OPS, "echo_cursor")
RETYPE_TO = ("string", "integer", "number", "boolean", "array", "object")


class _Missing:
    """A key that is not there (the result of `drop`)."""

    _instance: _Missing | None = None

    def __new__(cls) -> _Missing:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "MISSING"

    def __bool__(self) -> bool:
        return False


MISSING: t.Any = _Missing()


def json_type(value: object) -> str:
    """The JSON type of a decoded value: null, boolean, integer, number, string, array, object."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    raise TypeError(f"not a JSON value: {type(value).__name__}")


def _compact(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _retyped(value: object, to: str) -> object:
    """A value of JSON type `to`, derived from `value` where that says something."""
    if to == "string":
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, (int, float)):
            return str(value)
        if isinstance(value, str):
            return value
        return _compact(value)  # null, arrays, objects: their JSON text
    if to == "integer":
        return 42
    if to == "number":
        return 1.5
    if to == "boolean":
        return value is not True
    if to == "array":
        return ["x", 1]
    if to == "object":
        return {"x": 1}
    raise ValueError(f"retype to must be one of {', '.join(RETYPE_TO)}, not {to!r}")


def _huge(value: object) -> object:
    if isinstance(value, str) and value:
        return (value * (HUGE_STRING_CHARS // len(value) + 1))[:HUGE_STRING_CHARS]
    if isinstance(value, list):
        items = value or [{}]
        return [copy.deepcopy(items[i % len(items)]) for i in range(HUGE_LIST_ITEMS)]
    if isinstance(value, bool) or value is None or value == "":
        return "x" * HUGE_STRING_CHARS
    if isinstance(value, int):
        return HUGE_INTEGER + abs(value)
    if isinstance(value, float):
        return 1e308
    if isinstance(value, dict):
        extra = {f"extra_{i:05d}": "x" for i in range(HUGE_OBJECT_KEYS)}
        return {**value, **extra}
    raise TypeError(f"not a JSON value: {type(value).__name__}")


def mutate_value(value: object, op: str, *, to: str | None = None, new: object = None) -> object:
    """The value after `op` (MISSING for `drop`). Pure: `value` is not changed."""
    if op == "drop":
        return MISSING
    if op == "null":
        return None
    if op == "retype":
        return _retyped(value, str(to))
    if op == "huge":
        return _huge(value)
    if op == "wrap_list":
        return [copy.deepcopy(value)]
    if op == "wrap_object":
        return {"value": copy.deepcopy(value)}
    if op == "set":
        return copy.deepcopy(new)
    raise ValueError(f"not a value operation: {op!r}")


def apply_path(doc: t.Any, path: t.Sequence[str | int], fn: t.Callable[[object], object]) -> t.Any:
    """`doc` with the value at `path` replaced by fn(value); a MISSING result removes it.

    A missing key at the end of the path reads as MISSING (so `set` can add a key);
    anything else missing on the way is a KeyError/IndexError. Returns the new doc
    (a new object when path is empty), changing `doc` in place otherwise.
    """
    if not path:
        return fn(doc)
    parent = doc
    for step in path[:-1]:
        parent = parent[step]
    last = path[-1]
    if isinstance(parent, list):
        if not isinstance(last, int):
            raise KeyError(f"{last!r} on a list")
        new = fn(parent[last])
        if new is MISSING:
            del parent[last]
        else:
            parent[last] = new
    elif isinstance(parent, dict):
        new = fn(parent.get(last, MISSING))
        if new is MISSING:
            parent.pop(last, None)
        else:
            parent[last] = new
    else:
        raise KeyError(f"{last!r} inside a {json_type(parent)}")
    return doc


def value_at(doc: t.Any, path: t.Sequence[str | int]) -> t.Any:
    """The value at `path`, or MISSING if any step of it is not there."""
    for step in path:
        if isinstance(doc, dict):
            found = isinstance(step, str) and step in doc
        else:
            found = isinstance(doc, list) and isinstance(step, int) and -len(doc) <= step < len(doc)
        if not found:
            return MISSING
        doc = doc[step]  # type: ignore[index]
    return doc


@dataclasses.dataclass(frozen=True)
class Mutation:
    """One change to what the simulator serves (see the module docstring and README).

    Which item: `response_id` (targets response, answer), `survey_id` (survey,
    question; for a page of responses), `site_id` (a page of the survey list, or to
    disambiguate), `index` (the answer's or question's position), `page` (0 = the first
    page of that list). `path` is inside the item (empty: the item itself). `transient`:
    applied to the first answer it matches only, then spent; else to every one.
    """

    target: str
    op: str
    path: tuple[str | int, ...] = ()
    site_id: int | None = None
    survey_id: str | None = None
    response_id: str | None = None
    index: int | None = None
    page: int | None = None
    to: str | None = None
    value: t.Any = None
    status: int | None = None
    body: str | None = None
    headers: dict[str, str] | None = None
    transient: bool = False

    @classmethod
    def from_kwargs(cls, **kw: t.Any) -> Mutation:
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(kw) - fields)
        if unknown:
            raise TypeError(f"unknown mutation setting(s): {', '.join(unknown)}")
        if "path" in kw:
            kw["path"] = tuple(kw["path"] or ())
        mutation = cls(**kw)
        mutation.check()
        return mutation

    def check(self) -> None:
        if self.target not in TARGETS:
            raise ValueError(f"target must be one of {', '.join(TARGETS)}, not {self.target!r}")
        if self.op not in OPS:
            raise ValueError(f"op must be one of {', '.join(OPS)}, not {self.op!r}")
        if not all(isinstance(step, (str, int)) and not isinstance(step, bool) for step in self.path):
            raise ValueError("path steps must be object keys (strings) or list indexes (integers)")
        if self.op == "retype" and self.to not in RETYPE_TO:
            raise ValueError(f"retype needs to= one of {', '.join(RETYPE_TO)}")
        if self.target == "user_lookup" and self.op not in REPLY_OPS:
            raise ValueError("a user_lookup mutation is a reply or a cut")
        if self.op in REPLY_OPS and self.target not in ("page", "user_lookup"):
            raise ValueError(f"{self.op} replaces a whole answer: target page or user_lookup")
        if self.op == "echo_cursor" and self.target != "page":
            raise ValueError("echo_cursor is a page mutation")
        if self.op in REPLY_OPS and self.path:
            raise ValueError(f"{self.op} takes no path")
        need = {
            "response": ("response_id",),
            "answer": ("response_id", "index"),
            "survey": ("survey_id",),
            "question": ("survey_id", "index"),
            "page": ("site_id",),
            "user_lookup": (),
        }[self.target]
        missing = [name for name in need if getattr(self, name) is None]
        if missing:
            raise ValueError(f"a {self.target} mutation needs {', '.join(missing)}")
        if self.status is not None and not 100 <= int(self.status) <= 999:
            raise ValueError("status must be a 3-digit HTTP status")

    def as_dict(self) -> dict[str, t.Any]:
        out = dataclasses.asdict(self)
        out["path"] = list(self.path)
        return out

    def new_value(self, value: object) -> object:
        return mutate_value(value, self.op, to=self.to, new=self.value)
