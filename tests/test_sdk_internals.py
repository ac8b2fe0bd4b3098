"""What tap_hotjar/sdk_internals.py relies on in singer-sdk: each test fails loudly when the SDK changes it.

The numbers match the sections of sdk_internals.py. Each assumption is checked twice:
on the SDK's code (so that a change is caught even where behaviour still happens to
pass), and through the tap's behaviour.
"""

from __future__ import annotations

import inspect
import json
import logging

import pytest
from singer_sdk import Stream, Tap
from singer_sdk.helpers import _state as sdk_state
from singer_sdk.plugin_base import PluginBase
from singer_sdk.streams import _state as sdk_stream_state

from tap_hotjar import sdk_internals
from tap_hotjar.errors import HotjarConfigError
from tap_hotjar.tap import TapHotjar


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
