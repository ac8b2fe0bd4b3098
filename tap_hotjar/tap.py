"""tap-hotjar: the Tap class (settings, streams, state). The command line is `cli.py`."""

from __future__ import annotations

import copy
import typing as t

from singer_sdk import Tap
from typing_extensions import override

from tap_hotjar import sdk_internals, settings
from tap_hotjar.batches import BatchFiles, BatchRun, batch_config_problems
from tap_hotjar.checkpoints import CountingWriter, PacedStateWriter
from tap_hotjar.errors import HotjarConfigError, HotjarInterrupted
from tap_hotjar.http import HotjarConnection
from tap_hotjar.progress import Progress
from tap_hotjar.reconciliation import EvidenceRecorder, reconcile_problems
from tap_hotjar.streams import STREAM_TYPES
from tap_hotjar.streams.base import Run
from tap_hotjar.streams.handoff import SurveyHandoff
from tap_hotjar.streams.records import Malformed
from tap_hotjar.timestamps import normalize_start_date

if t.TYPE_CHECKING:
    from singer_sdk.streams import Stream


class TapHotjar(sdk_internals.ValidatedConfig, sdk_internals.TerminationWritesState, Tap):
    """Singer tap for Hotjar surveys, questions, responses and answers."""

    name = settings.TAP_NAME
    package_name = settings.TAP_NAME
    # singer-sdk's msgspec-based writer (the same Singer JSON lines, encoded faster),
    # counting bytes for the STATE pacing.
    message_writer_class = CountingWriter
    # A copy: singer-sdk adds its built-in settings to the class's schema in place, and
    # settings.CONFIG_SCHEMA (the tap's own settings, which the docs list) must stay as it is.
    config_jsonschema = copy.deepcopy(settings.CONFIG_SCHEMA)

    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        self._run: Run | None = None
        self._paced_writer: PacedStateWriter | None = None
        super().__init__(*args, **kwargs)
        sdk_internals.install_state_writer(self, self._state_pacer)
        if self.config.get("batch_config"):
            problems = batch_config_problems(self.config, self.streams.values())
            if problems:
                raise self.config_error(problems)
        if self.config.get("reconcile_evidence_path"):
            problems = reconcile_problems(self.config, self.streams.values())
            if problems:
                raise self.config_error(problems)

    @property
    def _state_pacer(self) -> PacedStateWriter:
        # Made on first use: the SDK may make the streams (and so the run) during __init__.
        if self._paced_writer is None:
            self._paced_writer = PacedStateWriter(t.cast("CountingWriter", self.message_writer))
        return self._paced_writer

    @property
    def run(self) -> Run:
        """What this run's streams share (made once, when the streams are)."""
        if self._run is None:
            config = self.config
            connection = HotjarConnection(
                api_url=str(config.get("api_url") or settings.DEFAULT_API_URL),
                client_id=str(config.get("client_id") or ""),
                client_secret=str(config.get("client_secret") or ""),
            )
            self._run = Run(
                connection=connection,
                handoff=SurveyHandoff(connection.latency, connection.pacer.rate),
                progress=Progress(self.logger, connection.pacer, settings.progress_interval()),
                malformed=Malformed(self.logger),
                state_writer=self._state_pacer,
                batch=BatchRun(config["batch_config"]) if config.get("batch_config") else None,
                evidence=self._evidence_recorder(),
            )
            if self._run.batch is not None:
                self._run.batch_files = BatchFiles(self._run.batch, t.cast("CountingWriter", self.message_writer))
        return self._run

    def _evidence_recorder(self) -> EvidenceRecorder | None:
        path = self.config.get("reconcile_evidence_path")
        if not path:
            return None
        start_date = self.config.get("start_date")
        return EvidenceRecorder(
            str(path),
            start_date=normalize_start_date(start_date) if start_date else None,
            tap_version=self.plugin_version,
            logger=self.logger,
        )

    @override
    def discover_streams(self) -> list[Stream]:
        return [stream_type(self, run=self.run) for stream_type in STREAM_TYPES]

    @override
    def load_state(self, state: dict[str, t.Any]) -> None:
        settings.check_state(state)
        if self.config.get("reconcile_evidence_path") and state.get("bookmarks"):
            # A reconciliation compares everything Hotjar has with the warehouse.
            self.logger.info("A reconciliation run: the state's bookmarks are ignored, every response is read")
            state = {}
        super().load_state(state)

    # sdk_internals.ValidatedConfig

    @override
    def check_settings(self, config: dict[str, t.Any]) -> tuple[dict[str, t.Any], list[str]]:
        return CONFIG_CHECK.normalized(config)

    @override
    def config_error(self, problems: list[str]) -> Exception:
        return HotjarConfigError("invalid config: " + "; ".join(problems))

    # sdk_internals.TerminationWritesState

    @override
    def on_termination(self, signum: int) -> None:
        # singer-sdk writes the state and exits 0; an unfinished sync must not look
        # finished to the orchestrator. cli.py turns this into one line and exit
        # status 128 + signum. A write under way is finished first, so that the
        # STATE is a line of its own.
        def interrupted() -> None:
            try:
                self._state_pacer.interrupted(self.state)
            finally:
                raise HotjarInterrupted(signum)

        t.cast("CountingWriter", self.message_writer).at_safe_point(interrupted)


CONFIG_CHECK = settings.config_check(TapHotjar.append_builtin_config)
