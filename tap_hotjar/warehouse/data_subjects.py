"""A data subject's responses in the warehouse: found, reported (access) or erased (erasure).

Which responses are the subject's (docs/data-subject-requests.md says the same):

- a `site_id=user_id` pair: the responses of that site whose identity attribute (a user
  attribute named like the dbt var `hotjar_identity_attribute`, default `user_id`)
  equals the user id as text (a number's digits). The same id on another site is
  another person;
- an email address: the responses with any user-attribute value, or any answer, equal
  to it after trimming white space, compared case-insensitively; an address that merely
  contains it is not the subject's. Where the privacy recipe (`tap-hotjar--private`)
  hashed answers to email questions, the same salted hash of the address
  (`sha256(salt + address.strip().lower())`, the salt from $HOTJAR_PII_SALT) matches too.

Found in the raw tables, the only complete copy (models may be older than the last load),
rows marked deleted included. Erasure then removes those responses from every table
(`removal.remove_responses`), in one transaction per subject.
"""

from __future__ import annotations

import dataclasses
import datetime
import decimal
import hashlib
import json
import os
import typing as t

from tap_hotjar.warehouse.connection import POSTGRES
from tap_hotjar.warehouse.removal import Removed, ResponseSet, remove_responses
from tap_hotjar.warehouse.tables import Catalog, quote

if t.TYPE_CHECKING:
    from tap_hotjar.user_lookup.subjects import Subject
    from tap_hotjar.warehouse.tables import Table

IDENTITY_ATTRIBUTE = "user_id"
SALT_ENV = "HOTJAR_PII_SALT"  # the privacy recipe's salt (meltano.yml: stream_map_config.pii_salt)
_WHITESPACE = "chr(9) || chr(10) || chr(13) || ' '"


def normalized_email(email: str) -> str:
    return email.strip().lower()


def hashed_email(email: str, salt: str) -> str:
    """What tap-hotjar--private's stream map writes for this address."""
    return hashlib.sha256((salt + normalized_email(email)).encode("utf-8")).hexdigest()


@dataclasses.dataclass
class Found:
    """A subject's rows in the raw tables."""

    responses: int
    answers: int


class SubjectFinder:
    """Finds a subject's responses in the raw tables of one warehouse."""

    def __init__(self, catalog: Catalog, *, identity_attribute: str = IDENTITY_ATTRIBUTE, salt: str = "") -> None:
        self.catalog = catalog
        self.conn = catalog.conn
        self.identity_attribute = identity_attribute
        self.salt = salt
        self.responses = catalog.require_raw("survey_responses", "id", "site_id")
        self.answers = catalog.require_raw("survey_answers", "response_id", "answer")

    def _trimmed_lower(self, expression: str) -> str:
        trim = "btrim" if self.conn.kind == POSTGRES else "trim"
        return f"lower({trim}(cast({expression} as text), {_WHITESPACE}))"

    def _attributes(self) -> str | None:
        """One row per user attribute of a response: id, site_id, name, value (as text)."""
        if "user_attributes" not in self.responses.columns:
            return None  # dropped by the privacy recipe: nothing to match on
        table = self.responses.sql
        if self.conn.kind == POSTGRES:
            # to_jsonb: target-postgres writes jsonb[]; after a conversion it may be jsonb.
            return (
                "select r.id, r.site_id, e.attr ->> 'name' as name, e.attr ->> 'value' as value"
                f" from {table} as r cross join lateral jsonb_array_elements(case when"
                " jsonb_typeof(to_jsonb(r.user_attributes)) = 'array' then to_jsonb(r.user_attributes) end) as e(attr)"
            )
        return (
            "select id, site_id, json_extract_string(attr, '$.name') as name,"
            " json_extract_string(attr, '$.value') as value from (select id, site_id,"
            f" unnest(from_json(user_attributes, '[\"json\"]')) as attr from {table}"
            " where json_type(user_attributes) = 'ARRAY') as e"
        )

    def find(self, subject: Subject) -> tuple[ResponseSet, list[str]]:
        """The subject's response ids (a temporary table), and the user ids they were identified as."""
        found = ResponseSet(self.conn)
        attributes = self._attributes()
        queries: list[tuple[str, list[t.Any]]] = []
        for site_id, user_id in subject.site_users:
            if attributes is not None:
                queries.append(
                    (
                        f"select id from ({attributes}) as a where a.site_id = ? and a.name = ? and a.value = ?",
                        [int(site_id), self.identity_attribute, user_id],
                    )
                )
        if subject.email:
            address = normalized_email(subject.email)
            if attributes is not None:
                queries.append(
                    (f"select id from ({attributes}) as a where {self._trimmed_lower('a.value')} = ?", [address])
                )
            queries.append(
                (
                    f"select response_id from {self.answers.sql}"
                    f" where {self._trimmed_lower('answer')} = ? or answer = ?",
                    [address, hashed_email(subject.email, self.salt)],
                )
            )
        for sql, params in queries:
            self.conn.execute(f"insert into {found.sql} {sql}", params)
        deduplicated = ResponseSet(self.conn)
        self.conn.execute(f"insert into {deduplicated.sql} select distinct response_id from {found.sql}")
        found.drop()
        users = [user_id for _, user_id in subject.site_users]
        if attributes is not None:
            users += [
                row[0]
                for row in self.conn.rows(
                    f"select distinct a.value from ({attributes}) as a where a.name = ? and a.value is not null"
                    f" and a.id in (select response_id from {deduplicated.sql})",
                    [self.identity_attribute],
                )
            ]
        return deduplicated, sorted(set(users))

    def count(self, responses: ResponseSet) -> Found:
        ids = f"select response_id from {responses.sql}"
        return Found(
            responses=int(self.conn.value(f"select count(distinct id) from {self.responses.sql} where id in ({ids})")),
            answers=int(self.conn.value(f"select count(*) from {self.answers.sql} where response_id in ({ids})")),
        )

    # Access: the subject's responses, with their answers and user attributes.

    def report(self, responses: ResponseSet) -> list[dict[str, t.Any]]:
        ids = f"select response_id from {responses.sql}"
        rows = self._records(self.responses, f"id in ({ids})", "created_time, id")
        answers = self._records(self.answers, f"response_id in ({ids})", "response_id, position")
        by_response: dict[str, list[dict[str, t.Any]]] = {}
        for answer in answers:
            by_response.setdefault(str(answer["response_id"]), []).append(answer)
        for row in rows:
            row["answers_rows"] = by_response.get(str(row["id"]), [])
        return rows

    def _records(self, table: Table, where: str, order: str) -> list[dict[str, t.Any]]:
        columns = sorted(table.columns)
        select = ", ".join(quote(c) for c in columns)
        cursor = self.conn.execute(f"select {select} from {table.sql} where {where} order by {order}")
        json_columns = {c for c in columns if table.types.get(c, "") in {"json", "jsonb"}}
        out = []
        for row in cursor.fetchall():
            record = {}
            for column, value in zip(columns, row, strict=True):
                if column in json_columns and isinstance(value, str):
                    value = json.loads(value)  # noqa: PLW2901 - DuckDB hands JSON over as text
                record[column] = _plain(value)
            out.append(record)
        return out

    # Erasure.

    def erase(self, responses: ResponseSet, users: list[str], *, now: datetime.datetime) -> Removed:
        return remove_responses(self.catalog, responses, erase=True, now=now, identities=users)


def _plain(value: t.Any) -> t.Any:
    """A database value as JSON can hold it."""
    if isinstance(value, (datetime.datetime, datetime.date)):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def salt_from_environment() -> str:
    return os.environ.get(SALT_ENV, "")
