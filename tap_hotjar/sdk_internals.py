"""Every use of a singer-sdk internal, in one place, each with the reason it is needed.

singer-sdk's public hooks do not cover these; each is pinned by a test in
tests/test_sdk_internals.py that fails loudly when the SDK changes what it relies on,
so that a new singer-sdk release is checked here and nowhere else.

1. `ValidatedConfig._validate_config`: the SDK validates the config in `PluginBase.__init__`
   through this private method only. We replace its messages (it names no setting the
   way users write them and lets a malformed `format` through) and add checks.
2. `TerminationWritesState._handle_termination`: on SIGTERM/SIGINT the SDK writes the
   state and exits 0, so an orchestrator takes an unfinished sync for a finished one.
3. `install_state_writer`: the SDK writes a STATE message after every child partition
   (every survey here), each time deep-copying and comparing the whole state: quadratic
   in surveys. The tap's writer decides when a STATE is worth writing (`checkpoints.py`).
4. `IndexedStateManager`: the SDK finds a partition's state by a linear search, for every
   record and every partition: quadratic in surveys. This keeps an index beside it.
5. `SchemaOnce._write_schema_message`: the SDK writes the SCHEMA message again for every
   child partition (every survey, every page of answers).
6. `discard_progress`: a survey that could not be read to its stop point (deleted
   mid-read) must not get a bookmark; the SDK promotes whatever progress it saw.
8. `batch_records`: singer-sdk batches each sync of a stream on its own, so the tap
   overrides `get_batches` (a documented hook) to write to files shared by every sync;
   the records come from where the SDK's own `get_batches` takes them.
7. `quiet_unsorted_warning`: the SDK warns once per partition that an unsorted stream
   "is not resumable"; it is resumable here by design (a survey's bookmark moves only
   when the survey is read to its stop point), and thousands of such warnings drown
   the ones that matter. No logger or setting addresses just this message.
9. `DirectRecords`: for every record, singer-sdk's `_write_record_message` removes
   deselected properties (`pop_deselected_record_properties`, a walk over the record),
   conforms types (`conform_record_data_types`), runs each stream map, builds a
   `RecordMessage` and has the writer turn it into a dict and encode it; on the way it
   resolves the `schema` descriptor twice. Where none of these can change the record
   (nothing deselected, type conformance off, one stream map that passes records as
   they are and flattens nothing, no stream or tap override of those steps) the record
   is encoded at once, into the same bytes (the SDK's encoder and message layout).
   Measured (issue #20): 30 % of the tap's CPU with every stream selected. Any
   other case takes the SDK's path unchanged.
10. `DirectRecords._increment_stream_state`: singer-sdk calls it for every record and
   it does nothing unless the stream is incremental (which takes two property reads
   to find out); that is decided once per stream.
"""

from __future__ import annotations

import logging
import typing as t

from singer_sdk.contrib import msgspec as sdk_msgspec
from singer_sdk.helpers import _state as sdk_state
from singer_sdk.helpers._util import utc_now
from singer_sdk.helpers.conform import TypeConformanceLevel
from singer_sdk.mapper import SameRecordTransform
from singer_sdk.plugin_base import BaseSingerWriter
from singer_sdk.singerlib.catalog import REPLICATION_INCREMENTAL
from singer_sdk.streams import Stream as _Stream
from singer_sdk.streams._state import StreamStateManager
from typing_extensions import override

if t.TYPE_CHECKING:
    from types import FrameType

    from singer_sdk import Stream, Tap
    from singer_sdk.helpers.types import Context

# (1)


class ValidatedConfig:
    """Tap mixin: the config checked by `check_settings` instead of the SDK's validation.

    `check_settings(config)` returns the config to run with (defaults filled in) and
    every problem with it; `config_error(problems)` is what is raised.
    """

    def check_settings(self, config: dict[str, t.Any]) -> tuple[dict[str, t.Any], list[str]]:
        raise NotImplementedError

    def config_error(self, problems: list[str]) -> Exception:
        raise NotImplementedError

    def _validate_config(self, *, raise_errors: bool = True) -> list[str]:
        current = self._config  # type: ignore[attr-defined]
        config, problems = self.check_settings(dict(current))
        if problems and raise_errors:
            raise self.config_error(problems)
        current.clear()  # the SDK's config mapping is a read-only view of this dict
        current.update(config)
        return problems


# (2)


class TerminationWritesState:
    """Tap mixin: on SIGTERM/SIGINT, `on_termination(signum)` instead of the SDK's exit 0."""

    def on_termination(self, signum: int) -> None:
        raise NotImplementedError

    def _handle_termination(self, signum: int, frame: FrameType | None) -> None:
        self.on_termination(signum)


# (3)


class StateWriterLike(t.Protocol):
    def write_state(self, state: t.Mapping[str, t.Any]) -> None: ...


def install_state_writer(tap: Tap, writer: StateWriterLike) -> None:
    """Route every STATE the SDK writes (streams, sync start, termination) through `writer`."""
    tap._state_writer = writer  # type: ignore[assignment]


# (4)


class IndexedStateManager(StreamStateManager):
    """The SDK's state manager, finding partition states through a dict instead of a list scan."""

    def __init__(self, **kwargs: t.Any) -> None:
        super().__init__(**kwargs)
        self._index: dict[tuple, dict] = {}
        self._indexed: list[dict] | None = None
        # The SDK asks for the same partition once per record, with the same context.
        self._last: tuple[Context, dict] | None = None

    @override
    def get_context_state(self, context: Context | None) -> dict:
        last = self._last
        if last is not None and context is last[0] and self.stream_state.get("partitions") is self._indexed:
            return last[1]
        found = self._find(context)
        self._last = (context, found) if context is not None else None
        return found

    def _find(self, context: Context | None) -> dict:
        partition = self.get_state_partition_context(context)
        if not partition:
            return self.stream_state
        partitions = self.stream_state.setdefault("partitions", [])
        if partitions is not self._indexed:  # first use, or replaced
            self._index = {_key(p["context"]): p for p in partitions if isinstance(p.get("context"), dict)}
            self._indexed = partitions
        key = _key(partition)
        found = self._index.get(key)
        if found is None:
            # As the SDK's get_writeable_state_dict creates it.
            found = {"context": dict(partition)}
            partitions.append(found)
            self._index[key] = found
        return found


def _key(context: t.Mapping[str, t.Any]) -> tuple:
    try:
        return tuple(sorted(context.items()))
    except TypeError:  # a value that does not compare or hash: its text does
        return tuple(sorted((k, repr(v)) for k, v in context.items()))


def indexed_state_manager(stream: Stream) -> StreamStateManager:
    """A state manager for `stream`, built with the arguments the SDK's `state_manager` uses."""
    return IndexedStateManager(
        tap_name=stream.tap_name,
        stream_name=stream.name,
        tap_state=stream.tap_state,
        state_partitioning_keys=stream.state_partitioning_keys,
        is_sorted=stream.is_sorted,
        check_sorted=stream.check_sorted,
    )


# (5)


class SchemaOnce:
    """Stream mixin: the SCHEMA message once per stream and run, not once per partition."""

    _schema_written = False

    def _write_schema_message(self) -> None:
        if not self._schema_written:
            super()._write_schema_message()  # type: ignore[misc]
            self._schema_written = True


# (6)


def discard_progress(stream: Stream, context: Context) -> None:
    """Forget what a partition's sync saw so far, so that no bookmark is promoted from it."""
    stream.get_context_state(context).pop(sdk_state.PROGRESS_MARKERS, None)


# (8)


def batch_records(stream: Stream, context: Context | None) -> t.Iterator[dict]:
    """The records of one sync of `stream`, with state kept and no RECORD message written."""
    return stream._sync_records(context, write_messages=False)


# (7)

UNSORTED_WARNING = "Stream is assumed to be unsorted"


class _ResumableByDesign(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(UNSORTED_WARNING)


_FILTER = _ResumableByDesign()


def quiet_unsorted_warning() -> None:
    """Drop the SDK's per-partition "progress is not resumable" warning (idempotent)."""
    sdk_state.logger.addFilter(_FILTER)


# (9) and (10)

# The encoder singer-sdk's msgspec writer encodes every message with.
encode_record_into = sdk_msgspec.encoder.encode_into


class RecordWriter(t.Protocol):
    def write_record(self, message: dict[str, t.Any]) -> None:
        """Write one RECORD message, given as the dict singer-sdk's writer would encode."""


_UNDECIDED: t.Any = object()


class DirectRecords:
    """Stream mixin: records written as they are when singer-sdk's per-record steps would not change them.

    The stream's tap's `message_writer` must have `write_record` (`RecordWriter`);
    otherwise, and whenever a step could change a record, the SDK's own path is taken.
    """

    _direct_writer: RecordWriter | None = _UNDECIDED
    _direct_alias = ""
    _incremental: bool | None = None

    def _write_record_message(self, record: dict[str, t.Any]) -> None:
        writer = self._direct_writer
        if writer is _UNDECIDED:
            writer = self._direct_writer = self._direct_record_writer()
        if writer is None:
            super()._write_record_message(record)  # type: ignore[misc]
            return
        stream = t.cast("Stream", self)
        # As singer-sdk's RecordMessage.to_dict() builds it.
        message: dict[str, t.Any] = {"type": "RECORD", "stream": self._direct_alias, "record": record}
        if stream._stream_version is not None:
            message["version"] = stream._stream_version
        message["time_extracted"] = utc_now()
        writer.write_record(message)
        stream.state_manager.is_flushed = False

    def _direct_record_writer(self) -> RecordWriter | None:
        """The writer to write records to directly, or None if the SDK's steps may change a record."""
        stream = t.cast("Stream", self)
        writer = getattr(stream._tap, "message_writer", None)
        maps = stream.stream_maps
        direct = (
            callable(getattr(writer, "write_record", None))
            # Nobody changed what these steps do.
            and type(stream)._generate_record_messages is _Stream._generate_record_messages
            and type(stream._tap).write_message is BaseSingerWriter.write_message
            # conform_record_data_types returns the record as it is.
            and stream.TYPE_CONFORMANCE_LEVEL == TypeConformanceLevel.NONE
            # pop_deselected_record_properties pops nothing (an absent breadcrumb takes its parent's value).
            and all(stream.mask.values())
            # The one stream map returns the record itself.
            and len(maps) == 1
            and type(maps[0]) is SameRecordTransform
            and not maps[0].flattening_enabled
        )
        if not direct:
            return None
        self._direct_alias = maps[0].stream_alias
        return t.cast("RecordWriter", writer)

    def _increment_stream_state(self, latest_record: dict[str, t.Any], *, context: Context | None = None) -> None:
        if self._incremental is None:
            self._incremental = t.cast("Stream", self).replication_method == REPLICATION_INCREMENTAL
        if self._incremental:
            super()._increment_stream_state(latest_record, context=context)  # type: ignore[misc]
