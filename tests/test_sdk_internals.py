"""What tap_hotjar/sdk_internals.py relies on in singer-sdk: each test fails loudly when the SDK changes it.

The numbers match the sections of sdk_internals.py. Each assumption is checked twice:
on the SDK's code (so that a change is caught even where behaviour still happens to
pass), and through the tap's behaviour.
"""

from __future__ import annotations

import contextlib
import copy
import datetime
import inspect
import io
import json
import logging
import re
import sys

import pytest
from singer_sdk import Stream, Tap
from singer_sdk.contrib import msgspec as sdk_msgspec
from singer_sdk.contrib.msgspec import MsgSpecWriter
from singer_sdk.helpers import _state as sdk_state
from singer_sdk.helpers._catalog import pop_deselected_record_properties
from singer_sdk.helpers._typing import conform_record_data_types
from singer_sdk.helpers.conform import TypeConformanceLevel
from singer_sdk.mapper import SameRecordTransform
from singer_sdk.plugin_base import PluginBase
from singer_sdk.singerlib.catalog import SelectionMask
from singer_sdk.singerlib.encoding.simple import RecordMessage
from singer_sdk.streams import _state as sdk_stream_state

from tap_hotjar import sdk_internals
from tap_hotjar.checkpoints import CountingWriter
from tap_hotjar.errors import HotjarConfigError
from tap_hotjar.tap import TapHotjar

STREAMS = ("surveys", "survey_questions", "survey_responses", "survey_answers")


def _source(obj: object) -> str:
    return inspect.getsource(obj)  # type: ignore[arg-type]


# (1) config validation


def test_sdk_validates_config_through_the_private_hook_we_replace():
    assert "raise_errors" in inspect.signature(PluginBase._validate_config).parameters
    assert "self._validate_config(raise_errors=validate_config)" in _source(PluginBase.__init__)
    assert "self._config = config_dict" in _source(PluginBase.__init__)


def test_our_validation_runs_and_fills_in_defaults(shared_sim):
    with pytest.raises(HotjarConfigError, match="page_size must be at most 100"):
        TapHotjar(config=shared_sim.config(page_size=500))
    tap = TapHotjar(config={**shared_sim.config(), "start_date": None})
    assert tap.config["page_size"] == 100
    assert "start_date" not in tap.config


# (2) termination


def test_sdk_signal_handlers_call_the_private_hook_we_replace():
    assert "self._handle_termination" in _source(PluginBase._setup_signal_handlers)
    assert "_handle_termination" in vars(Tap)  # the method our mixin takes the place of
    assert TapHotjar._handle_termination is sdk_internals.TerminationWritesState._handle_termination


# (3) the state writer


def test_sdk_writes_every_state_through_the_tap_state_writer():
    assert "self._tap.state_writer.write_state(" in _source(Stream._write_state_message)
    assert "self._state_writer" in _source(Tap.state_writer.fget)  # type: ignore[attr-defined]
    assert "self._state_writer.write_state(self.state)" in _source(Tap.sync_all)


def test_the_tap_installs_its_paced_writer(shared_sim):
    tap = TapHotjar(config=shared_sim.config())
    assert tap.state_writer is tap._state_pacer


# (4) the state manager


def test_sdk_state_manager_is_made_from_these_arguments():
    parameters = set(inspect.signature(sdk_stream_state.StreamStateManager.__init__).parameters)
    assert {
        "tap_name",
        "stream_name",
        "tap_state",
        "state_partitioning_keys",
        "is_sorted",
        "check_sorted",
    } <= parameters
    # Every partition lookup goes through get_context_state, which the index replaces.
    manager = _source(sdk_stream_state.StreamStateManager)
    assert manager.count("get_writeable_state_dict(") == 2  # stream_state and get_context_state
    assert isinstance(Stream.__dict__["state_manager"], property)


def test_indexed_state_manager_finds_and_creates_partitions_as_the_sdk_does():
    contexts = [{"site_id": s, "survey_id": f"survey_{n}"} for s in (1, 2) for n in range(30)]
    states: list[dict] = []
    for manager_type in (sdk_stream_state.StreamStateManager, sdk_internals.IndexedStateManager):
        tap_state: dict = {"bookmarks": {"s": {"partitions": [{"context": contexts[3], "replication_key_value": "x"}]}}}
        manager = manager_type(tap_name="t", stream_name="s", tap_state=tap_state, state_partitioning_keys=None)
        for i, context in enumerate(contexts + contexts[::-1]):
            manager.get_context_state(context)["n"] = i
            manager.increment_state({"rk": f"2024-01-{i % 28 + 1:02d}"}, context=context, replication_key="rk")
        manager.finalize_progress_markers(partitions=contexts)
        states.append(tap_state)
    assert json.dumps(states[0], sort_keys=True) == json.dumps(states[1], sort_keys=True)


# (5) one SCHEMA message


def test_sdk_writes_the_schema_message_through_the_hook_we_replace():
    assert "self._write_schema_message()" in _source(Stream.sync)


# (6) progress markers


def test_sdk_keeps_unpromoted_progress_under_this_key():
    assert sdk_state.PROGRESS_MARKERS == "progress_markers"
    state: dict = {}
    sdk_state.increment_state(
        state, latest_record={"rk": "a"}, replication_key="rk", is_sorted=False, check_sorted=True
    )
    assert "replication_key_value" not in state
    assert state[sdk_state.PROGRESS_MARKERS]["replication_key_value"] == "a"


# (8) batch records


def test_sdk_batches_take_records_from_where_we_take_them():
    assert "self._sync_records(context, write_messages=False)" in _source(Stream.get_batches)
    assert "for encoding, manifest in self.get_batches(batch_config, context):" in _source(Stream._sync_batches)
    assert "self._write_state_message()" in _source(Stream._sync_batches)


# (7) the per-partition warning


def test_sdk_still_words_the_unsorted_warning_as_we_filter_it(caplog):
    assert sdk_internals.UNSORTED_WARNING in _source(sdk_state.increment_state)
    sdk_internals.quiet_unsorted_warning()
    with caplog.at_level(logging.WARNING, logger=sdk_state.logger.name):
        sdk_state.increment_state(
            {}, latest_record={"rk": "a"}, replication_key="rk", is_sorted=False, check_sorted=True
        )
    assert not [r for r in caplog.records if sdk_internals.UNSORTED_WARNING in str(r.msg)]


# (9) records written directly, (10) no state step for full-table streams


def _sync_in_process(config: dict, catalog: dict | None = None) -> tuple[TapHotjar, list[dict]]:
    """A full sync of the tap in this process (as singer-sdk's test runner does it): its messages."""
    out = io.TextIOWrapper(io.BytesIO(), encoding="utf-8")
    tap = TapHotjar(config=config, catalog=catalog)
    with contextlib.redirect_stdout(out):
        tap.sync_all()
    out.seek(0)
    return tap, [json.loads(line) for line in out.buffer.read().splitlines()]


def _without_run_times(messages: list[dict]) -> list[str]:
    """The messages with what differs between two runs left out: time_extracted, and the
    replication key signpost (the time a run started) in STATE."""
    return [
        re.sub(
            r'"replication_key_signpost":"[^"]*"',
            "",
            json.dumps({k: v for k, v in m.items() if k != "time_extracted"}, separators=(",", ":")),
        )
        for m in messages
    ]


def test_sdk_writes_a_record_through_the_steps_we_skip():
    assert "self._write_record_message(record)" in _source(Stream._sync_records)
    assert "self._increment_stream_state(record, context=current_context)" in _source(Stream._sync_records)
    write = _source(Stream._write_record_message)
    assert "for record_message in self._generate_record_messages(record):" in write
    assert "self._tap.write_message(record_message)" in write
    assert "self.state_manager.is_flushed = False" in write
    generate = _source(Stream._generate_record_messages)
    for step in (
        "pop_deselected_record_properties(record, self.schema, self.mask)",
        "conform_record_data_types(",
        "level=self.TYPE_CONFORMANCE_LEVEL",
        "for stream_map in self.stream_maps:",
        "mapped_record = stream_map.transform(record)",
        "stream=stream_map.stream_alias",
        "version=self._stream_version",
        "time_extracted=utc_now()",
    ):
        assert step in generate, step
    # The writer encodes the message's dict with the encoder we encode records with.
    assert "serialize_jsonl(message.to_dict())" in _source(MsgSpecWriter.serialize_message)
    assert "encoder.encode_into(obj, _jsonl_msg_buffer)" in _source(sdk_msgspec.serialize_jsonl)
    assert sdk_internals.encode_record_into == sdk_msgspec.encoder.encode_into
    # A full-table stream's state is left alone.
    assert "self.replication_method == REPLICATION_INCREMENTAL" in _source(Stream._increment_stream_state)


def test_the_steps_we_skip_leave_a_record_unchanged_where_we_skip_them(caplog):
    record = {"id": 5, "undeclared": [1], "nested": {"a": {"b": 1}}, "window_size": {"width": "wide"}}
    original = copy.deepcopy(record)
    schema = {"type": "object", "properties": {"id": {"type": "string"}, "window_size": {"type": "object"}}}
    # Type conformance off: the very record, types and undeclared fields as they were, no warning.
    with caplog.at_level(logging.WARNING):
        same = conform_record_data_types("s", record, schema, TypeConformanceLevel.NONE, logging.getLogger("t"))
    assert same is record and record == original and not caplog.records
    # A mask with nothing deselected pops nothing, at any depth (absent breadcrumbs take their parent's value).
    mask = SelectionMask({(): True, ("properties", "id"): True})
    pop_deselected_record_properties(record, schema, mask)
    assert record == original
    # ...and one deselected entry, however deep, is what makes a mask not all True.
    mask[("properties", "nested", "properties", "a", "properties", "b")] = False
    assert not all(mask.values())
    pop_deselected_record_properties(record, schema, mask)
    assert record["nested"] == {"a": {}}
    # The default stream map without flattening hands back the record itself.
    same_map = SameRecordTransform("s", schema, ("id",), flattening_options=None)
    assert same_map.transform(record) is record and not same_map.flattening_enabled


def test_a_record_written_directly_is_the_line_singer_sdk_writes(monkeypatch):
    extracted = datetime.datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=datetime.timezone.utc)
    record = {"id": "r1", "answers": [{"answer": "5", "tags": None}], "n": 1.5, "ok": True, "u": "Zoë"}
    for version in (None, 1764460800):
        message = RecordMessage(stream="survey_responses", record=record, version=version, time_extracted=extracted)
        sdk_line = bytes(MsgSpecWriter().format_message(message))
        # The dict DirectRecords builds, in the SDK's key order.
        direct: dict = {"type": "RECORD", "stream": "survey_responses", "record": record}
        if version is not None:
            direct["version"] = version
        direct["time_extracted"] = extracted
        assert list(direct.items()) == list(message.to_dict().items())
        out = io.TextIOWrapper(io.BytesIO(), encoding="utf-8")
        monkeypatch.setattr(sys, "stdout", out)
        writer = CountingWriter()
        writer.write_record(direct)
        writer.flush()
        assert out.buffer.getvalue() == sdk_line  # type: ignore[attr-defined]
        assert writer.bytes_written == len(sdk_line)


def test_records_written_directly_are_what_singer_sdks_own_path_writes(shared_sim, monkeypatch):
    tap, direct = _sync_in_process(shared_sim.config())
    for stream in tap.streams.values():
        assert stream._direct_writer is tap.message_writer, stream.name  # the direct path was taken
    assert not tap.streams["survey_answers"]._incremental
    assert tap.streams["survey_responses"]._incremental
    monkeypatch.setattr(sdk_internals.DirectRecords, "_direct_record_writer", lambda self: None)
    monkeypatch.setattr(sdk_internals.DirectRecords, "_incremental", True)  # the SDK's step for every stream
    tap, sdk_path = _sync_in_process(shared_sim.config())
    assert all(stream._direct_writer is None for stream in tap.streams.values())
    assert _without_run_times(direct) == _without_run_times(sdk_path)
    assert sum(m["type"] == "RECORD" for m in direct) > 500
    assert all("time_extracted" in m for m in direct if m["type"] == "RECORD")


@pytest.mark.parametrize(
    ("change", "changed_streams"),
    [
        ({"stream_maps": {"survey_responses": {"user_attributes": None}}}, {"survey_responses"}),
        ({"stream_maps": {"survey_answers": {"__alias__": "answers"}}}, {"survey_answers"}),
        ({"flattening_enabled": True, "flattening_max_depth": 1}, set(STREAMS)),
        ("deselect survey_responses.window_size.width", {"survey_responses"}),
    ],
    ids=["stream-map", "alias", "flattening", "deselected-property"],
)
def test_a_step_that_could_change_a_record_keeps_the_sdks_path(shared_sim, change, changed_streams):
    config, catalog = shared_sim.config(), None
    if isinstance(change, dict):
        config.update(change)
    else:
        catalog = TapHotjar(config=config).catalog_dict
        for entry in catalog["streams"]:
            if entry["tap_stream_id"] == "survey_responses":
                entry["metadata"].append(
                    {
                        "breadcrumb": ["properties", "window_size", "properties", "width"],
                        "metadata": {"selected": False},
                    }
                )
    tap = TapHotjar(config=config, catalog=catalog)
    for name, stream in tap.streams.items():
        direct = stream._direct_record_writer()
        assert (direct is None) == (name in changed_streams), name
