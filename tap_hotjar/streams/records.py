"""Records exactly as their schemas declare them, whatever the API sends.

The rule, decided per field (docs/malformed-data.md):

1. What can be conformed without loss is: a number where the reference says string
   becomes its text (`5` -> "5"), an integral float where it says integer becomes the
   integer; an answer's `answer` of any JSON type becomes text (see `as_text`).
2. A field the tap cannot do without (a key, the replication key, the `answers` list
   of a response and each answer in it) that does not fit: the record is skipped, with
   its children.
3. Any other value that does not fit: the smallest enclosing value that the schema lets
   be null becomes null (`window_size: "1024x768"` -> null, `tags[0]: 5` -> tags null),
   and the record is kept.

Each record skipped or changed under 2 or 3 gets one WARNING naming the survey, the
record and the fields, and is counted in a summary at the end of the run (`Malformed`).

Checking every record in Python would cost more than the rest of the tap's work per
record, so pages are first checked in C: `fast_type` is a msgspec type built from the
same schema; a page that decodes with it needs no further check. Only the records of
a page that does not are checked one by one.
"""

from __future__ import annotations

import collections
import json
import typing as t

import msgspec

from tap_hotjar.timestamps import is_timestamp

if t.TYPE_CHECKING:
    import logging
    from collections.abc import Iterator, Mapping

Path = tuple[t.Union[str, int], ...]  # noqa: UP007 - evaluated at runtime on 3.10
_NUMBER = (int, float)
# A schema that `validation_type` turns into "any JSON value" (for what the stream conforms itself).
ANY_JSON: dict[str, t.Any] = {}


def as_text(value: object) -> str | None:
    """An answer as the text the reference documents, whatever JSON type it came in.

    Numbers keep their digits (so `answer::int` works for nps), booleans are
    `true`/`false`, lists and objects their JSON.
    """
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, _NUMBER):
        return str(value)
    return json.dumps(value, ensure_ascii=False)


def string_field(value: object) -> str | None:
    """An optional string field's value as the Conformer leaves it: a string as it is, a
    number as its text (lossless), anything else null."""
    if isinstance(value, str):
        return value
    if isinstance(value, _NUMBER) and not isinstance(value, bool):
        return str(value)
    return None


def usable_id(value: object) -> str | None:
    """An id as the key it becomes (a number conformed to its text), or None if it cannot be one."""
    return string_field(value) or None


def field_name(path: Path) -> str:
    """`answers[2].tags` for ("answers", 2, "tags")."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text or "(record)"


class Problem(t.NamedTuple):
    path: Path
    what: str  # "missing", "null", or the JSON type found, e.g. "a string"


def json_kind(value: object, *, missing: bool = False) -> str:
    """What a value is, in JSON's words ("missing", "null", "a string", ...)."""
    if missing:
        return "missing"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string" if len(value) < 64 else f"a string of {len(value)} characters"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _types(schema: Mapping[str, t.Any]) -> frozenset[str]:
    declared = schema.get("type")
    if declared is None:
        return frozenset()  # anything goes
    return frozenset([declared] if isinstance(declared, str) else declared)


def _fits(value: object, schema: Mapping[str, t.Any]) -> bool:
    """Whether `value` has one of the schema's types (not looking inside arrays and objects)."""
    types = _types(schema)
    if not types:
        return True
    if value is None:
        return "null" in types
    if isinstance(value, bool):
        return "boolean" in types
    if isinstance(value, int):
        if "integer" not in types and "number" not in types:
            return False
        return value <= schema.get("maximum", value) and value >= schema.get("minimum", value)
    if isinstance(value, float):
        return "number" in types
    if isinstance(value, str):
        return "string" in types and (schema.get("format") != "date-time" or is_timestamp(value))
    if isinstance(value, list):
        return "array" in types
    if isinstance(value, dict):
        return "object" in types
    return False


def problems(value: object, schema: Mapping[str, t.Any], path: Path = ()) -> Iterator[Problem]:
    """Every place where `value` does not fit `schema`, outermost first."""
    if not _fits(value, schema):
        yield Problem(path, json_kind(value))
        return
    if isinstance(value, dict):
        properties = schema.get("properties", {})
        for name in schema.get("required", ()):
            if name not in value:
                yield Problem((*path, name), "missing")
        for name, sub in properties.items():
            if name in value:
                yield from problems(value[name], sub, (*path, name))
    elif isinstance(value, list) and "items" in schema:
        for index, item in enumerate(value):
            yield from problems(item, schema["items"], (*path, index))


def _schema_at(schema: Mapping[str, t.Any], path: Path) -> Mapping[str, t.Any]:
    for part in path:
        schema = schema["items"] if isinstance(part, int) else schema.get("properties", {}).get(part, {})
    return schema


def _get(value: t.Any, path: Path) -> t.Any:
    for part in path:
        value = value[part]
    return value


def _set(value: t.Any, path: Path, new: object) -> None:
    _get(value, path[:-1])[path[-1]] = new


def _lossless(value: object, schema: Mapping[str, t.Any]) -> object:
    """`value` conformed to the schema without loss, or the value itself if it cannot be."""
    types = _types(schema)
    if (
        isinstance(value, _NUMBER)
        and not isinstance(value, bool)
        and "string" in types
        and schema.get("format") is None
    ):
        return str(value)
    if isinstance(value, float) and value.is_integer() and "integer" in types:
        conformed = int(value)
        if _fits(conformed, schema):
            return conformed
    return value


def drop_undeclared(record: dict[str, t.Any], declared: t.AbstractSet[str]) -> set[str]:
    """Remove top-level fields the schema does not declare (`declared`: the names of its
    properties), in place: the record stays the same object, which the responses stream
    recognises; the names removed.

    Undeclared nested fields are kept: they travel inside a JSON value.
    """
    if record.keys() <= declared:
        return set()
    dropped = record.keys() - declared
    for name in dropped:
        del record[name]
    return dropped


class Verdict(t.NamedTuple):
    """What became of a record: kept (maybe changed) or skipped, and why."""

    record: dict[str, t.Any] | None
    skipped_for: str | None  # the field that made it be skipped
    nulled: list[str]  # fields set to null


class Conformer:
    """One stream's rule: its schema, and the fields it cannot do without."""

    def __init__(
        self,
        schema: Mapping[str, t.Any],
        *,
        essential: frozenset[Path],
        added: frozenset[str],
        conformed_by_stream: Path = (),
    ) -> None:
        """`added`: the fields the tap adds to the API's items (site_id, ...).

        `conformed_by_stream`: a field (through objects and arrays) that the stream
        conforms itself before `conform`, so that the fast check accepts any value there.
        """
        self.schema = schema
        self._essential = essential
        item_schema = {
            **schema,
            "properties": {k: v for k, v in schema["properties"].items() if k not in added},
            "required": [k for k in schema.get("required", ()) if k not in added],
        }
        # An essential string (a key) must not be empty either.
        for (name,) in (path for path in essential if len(path) == 1):
            if "string" in _types(item_schema["properties"].get(name, {})):
                item_schema["properties"][name] = {**item_schema["properties"][name], "minLength": 1}
        if conformed_by_stream:
            item_schema = _replaced(item_schema, conformed_by_stream, ANY_JSON)
        self.fast_type = validation_type(item_schema, "Item")

    def conform(self, record: dict[str, t.Any]) -> Verdict:
        """The record made to fit the schema by the rule (changed in place)."""
        for path in self._essential:
            if len(path) == 1 and record.get(str(path[0])) == "":
                return Verdict(None, f"{field_name(path)} is an empty string", [])
        nulled: list[str] = []
        done: list[Path] = []  # paths conformed or nulled: problems inside them are gone
        for problem in list(problems(record, self.schema)):
            path = problem.path
            if any(path[: len(p)] == p for p in done):
                continue
            schema = _schema_at(self.schema, path)
            if problem.what != "missing":
                value = _get(record, path)
                conformed = _lossless(value, schema)
                if conformed is not value and _fits(conformed, schema):
                    _set(record, path, conformed)
                    continue
            target = self._nullable(path)
            if target is None or target in self._essential:
                return Verdict(None, f"{field_name(path)} is {problem.what}", [])
            _set(record, target, None)
            done.append(target)
            nulled.append(f"{field_name(path)} ({problem.what})")
        return Verdict(record, None, nulled)

    def _nullable(self, path: Path) -> Path | None:
        """The innermost path at or above `path` whose schema allows null, None if none does."""
        for end in range(len(path), 0, -1):
            candidate = path[:end]
            if candidate in self._essential:
                return candidate
            if "null" in _types(_schema_at(self.schema, candidate)):
                return candidate
        return None


def _replaced(schema: Mapping[str, t.Any], path: Path, new: dict[str, t.Any]) -> dict[str, t.Any]:
    """A copy of `schema` with the schema of the field at `path` (names only) replaced by `new`."""
    if not path:
        return new
    copy = dict(schema)
    if "items" in schema and "properties" not in schema:
        copy["items"] = _replaced(schema["items"], path, new)
        return copy
    name = path[0]
    copy["properties"] = {**schema["properties"], name: _replaced(schema["properties"][name], path[1:], new)}
    return copy


def validation_type(schema: Mapping[str, t.Any], name: str) -> t.Any:
    """A msgspec type accepting exactly what `schema` accepts (formats aside).

    Fields whose schema is the `ANY_JSON` object accept any value (they are conformed
    by the stream itself). Undeclared fields are ignored, as the SDK drops them.
    """
    if schema is ANY_JSON:
        return t.Any
    options: list[t.Any] = []
    for kind in sorted(_types(schema)) or ["any"]:
        if kind == "any":
            return t.Any
        if kind == "null":
            options.append(None)
        elif kind == "string":
            min_length = schema.get("minLength")
            options.append(t.Annotated[str, msgspec.Meta(min_length=min_length)] if min_length else str)
        elif kind == "boolean":
            options.append(bool)
        elif kind == "integer":
            options.append(t.Annotated[int, msgspec.Meta(le=schema.get("maximum", 2**63 - 1))])
        elif kind == "number":
            options.append(float)
        elif kind == "array":
            items = schema.get("items")
            options.append(list if items is None else list.__class_getitem__(validation_type(items, f"{name}_item")))
        elif kind == "object":
            properties = schema.get("properties")
            if properties is None:
                options.append(dict)
                continue
            required = set(schema.get("required", ()))
            fields = [
                (key, validation_type(sub, f"{name}_{key}"))
                if key in required
                # An optional field may be absent: msgspec then uses the default.
                else (key, validation_type(sub, f"{name}_{key}"), None)
                for key, sub in properties.items()
            ]
            options.append(msgspec.defstruct(name, fields, kw_only=True))
    return t.Union[tuple(options)] if len(options) > 1 else options[0]  # noqa: UP007


class Malformed:
    """Counts what the rule skipped and changed in a run, for the summary line."""

    def __init__(self, logger: logging.Logger) -> None:
        self._logger = logger
        self.skipped: collections.Counter[str] = collections.Counter()
        self.nulled: collections.Counter[str] = collections.Counter()

    def skip(self, stream: str, which: str, why: str) -> None:
        self.skipped[stream] += 1
        self._logger.warning("Skipped %s: %s; the other records are not affected", which, why)

    def null(self, stream: str, which: str, fields: list[str]) -> None:
        self.nulled[stream] += 1
        self._logger.warning(
            "Set to null in %s, as the reference's types do not allow them: %s", which, ", ".join(fields)
        )

    def summary(self) -> None:
        if not self.skipped and not self.nulled:
            return
        self._logger.warning(
            "Malformed data from the Hotjar API: %d record(s) skipped and %d record(s) with values set to null, "
            "in %s; see the warnings above",
            sum(self.skipped.values()),
            sum(self.nulled.values()),
            ", ".join(sorted({*self.skipped, *self.nulled})),
        )
