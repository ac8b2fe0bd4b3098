"""BATCH messages: what the files hold, which configs are refused, which old files go."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import time
import urllib.parse
from typing import TYPE_CHECKING

import pytest

from tap_hotjar.batches import BatchRun
from tests.expected import keyed

if TYPE_CHECKING:
    from pathlib import Path

STREAMS = ("surveys", "survey_questions", "survey_responses", "survey_answers")


def batch_config(root: Path, batch_size: int = 50, **encoding) -> dict:
    return {
        "batch_config": {
            "encoding": {"format": "jsonl", "compression": "gzip", **encoding},
            "storage": {"root": root.as_uri(), "prefix": "t-"},
            "batch_size": batch_size,
        }
    }


def file_records(run) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {s: [] for s in STREAMS}
    for message in run.messages:
        if message["type"] == "BATCH":
            for url in message["manifest"]:
                path = urllib.parse.unquote(urllib.parse.urlsplit(url).path)
                with gzip.open(path, "rt", encoding="utf-8") as f:
                    out[message["stream"]] += [json.loads(line) for line in f]
    return out


def test_batch_files_hold_exactly_the_records_of_a_record_run(shared_sim, tap, tmp_path):
    records = tap(shared_sim.config())
    batched = tap({**shared_sim.config(), **batch_config(tmp_path / "files")})
    assert records.returncode == 0 and batched.returncode == 0, batched.stderr[-2000:]
    assert not [m for m in batched.messages if m["type"] == "RECORD"]
    in_files = file_records(batched)
    for stream in STREAMS:
        # Same records, values and all, not only the same keys.
        assert len(in_files[stream]) == len(records.records[stream]), stream
        assert keyed(stream, in_files[stream]) == keyed(stream, records.records[stream]), stream
    # batch_size is honoured: no file holds more than 50 records.
    for path in (tmp_path / "files").glob("t-run-*.json.gz"):
        with gzip.open(path, "rt") as f:
            assert sum(1 for _ in f) <= 50, path.name
    # The same schemas and the same final state as a RECORD run.
    assert batched.schemas == records.schemas
    assert batched.final_state["bookmarks"]["survey_responses"] == records.final_state["bookmarks"]["survey_responses"]


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        ({"stream_maps": {"survey_responses": {"user_attributes": None}}}, "stream_maps"),
        ({"flattening_enabled": True, "flattening_max_depth": 1}, "flattening_enabled"),
        ({"encoding": "parquet"}, "batch_config.encoding must be {format: jsonl, compression: gzip}"),
    ],
    ids=["stream_maps", "flattening", "parquet"],
)
def test_batch_with_what_the_files_would_not_apply_is_refused(shared_sim, tap, tmp_path, change, needle):
    config = {**shared_sim.config(), **batch_config(tmp_path / "files")}
    if change.get("encoding"):
        config["batch_config"]["encoding"]["format"] = change.pop("encoding")
    run = tap({**config, **change})
    assert run.returncode != 0
    assert needle in run.stderr
    assert not [m for m in run.messages if m["type"] in {"RECORD", "BATCH"}]
    assert not list((tmp_path / "files").glob("t-run-*"))


def test_batch_with_a_deselected_property_is_refused(shared_sim, tap, tmp_path):
    catalog = json.loads(tap(shared_sim.config(), extra_args=("--discover",)).stdout)
    for entry in catalog["streams"]:
        for md in entry["metadata"]:
            if md["breadcrumb"] == []:
                md["metadata"]["selected"] = True
            if entry["tap_stream_id"] == "survey_responses" and md["breadcrumb"] == ["properties", "user_attributes"]:
                md["metadata"]["selected"] = False
    run = tap({**shared_sim.config(), **batch_config(tmp_path / "files")}, catalog=catalog)
    assert run.returncode != 0
    assert "properties deselected in survey_responses (user_attributes)" in run.stderr
    assert not [m for m in run.messages if m["type"] in {"RECORD", "BATCH"}]
    # Without batch_config the same catalog runs, without the column.
    plain = tap(shared_sim.config(), catalog=catalog)
    assert plain.returncode == 0, plain.stderr[-2000:]
    assert plain.records["survey_responses"]
    assert not [r for r in plain.records["survey_responses"] if "user_attributes" in r]


def _dead_pid() -> int:
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, check=True)
    return int(proc.stdout)


def test_a_run_removes_only_files_of_ended_runs_of_this_host_written_over_an_hour_ago(tmp_path):
    root = tmp_path / "files"
    root.mkdir()
    other = BatchRun({"storage": {"root": root.as_uri(), "prefix": "t-"}})
    host = other.tag.split("-")[2]
    dead, alive = _dead_pid(), os.getppid()
    old = time.time() - 2 * BatchRun.KEEP_FINISHED_SECONDS
    files = {
        "dead_old": (f"t-run-20260101T000000Z-{host}-{dead}-survey_responses-00001.json.gz", old),
        "dead_old_answers": (f"t-run-20260101T000000Z-{host}-{dead}-survey_answers-00002.json.gz", old),
        "dead_recent": (f"t-run-20260101T010000Z-{host}-{dead}-surveys-00001.json.gz", time.time() - 60),
        "alive_old": (f"t-run-20260101T000000Z-{host}-{alive}-surveys-00001.json.gz", old),
        "other_host": (f"t-run-20260101T000000Z-0badc0de-{dead}-surveys-00001.json.gz", old),
        "other_prefix": (f"u-run-20260101T000000Z-{host}-{dead}-surveys-00001.json.gz", old),
        "not_a_run": ("t-notes.txt", old),
    }
    for name, mtime in files.values():
        (root / name).write_bytes(b"x")
        os.utime(root / name, (mtime, mtime))
    run = BatchRun({"storage": {"root": root.as_uri(), "prefix": "t-"}})
    assert run.remove_finished_runs() == 2
    left = {path.name for path in root.iterdir()}
    assert left == {name for key, (name, _) in files.items() if not key.startswith("dead_old")}
    # Remote storage is left to its own lifecycle rules.
    assert BatchRun({"storage": {"root": "s3://bucket/hotjar", "prefix": "t-"}}).remove_finished_runs() == 0
