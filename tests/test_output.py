"""The tap's output: buffered by the tap whatever PYTHONUNBUFFERED says, flushed with every
STATE (and BATCH) message and at exit, so that nothing a STATE covers waits in a buffer."""

from __future__ import annotations

import contextlib
import io
import json
import typing as t

import pytest

from hotjar_simulator import HotjarSimulator
from tap_hotjar.checkpoints import OUTPUT_BUFFER_BYTES, CountingWriter
from tap_hotjar.tap import TapHotjar
from tests.expected import expected_records, keyed

STREAMS = ("surveys", "survey_questions", "survey_responses", "survey_answers")


class RecordingStdout(io.RawIOBase):
    """A binary stdout that records each write and flush it is given.

    `take`: the most bytes one write takes, as an unbuffered pipe may take part of a
    write only (PYTHONUNBUFFERED makes sys.stdout.buffer such a raw file).
    """

    def __init__(self, take: int | None = None) -> None:
        super().__init__()
        self.take = take
        self.calls: list[bytes | None] = []  # the bytes of each write; None for a flush
        self.during_write: t.Callable[[], None] | None = None

    def writable(self) -> bool:
        return True

    def write(self, data: t.Any) -> int:
        chunk = bytes(data[: self.take] if self.take else data)
        self.calls.append(chunk)
        if self.during_write is not None:
            action, self.during_write = self.during_write, None
            action()
        return len(chunk)

    def flush(self) -> None:
        self.calls.append(None)

    @property
    def output(self) -> bytes:
        return b"".join(c for c in self.calls if c is not None)


def _sync(config: dict, stdout: RecordingStdout) -> None:
    tap = TapHotjar(config=config)
    with contextlib.redirect_stdout(io.TextIOWrapper(stdout, encoding="utf-8", write_through=True)):
        tap.sync_all()


@pytest.mark.parametrize("take", [None, 1000], ids=["stdout-takes-all", "stdout-takes-part-of-each-write"])
def test_output_goes_in_large_writes_and_each_state_is_flushed_with_what_it_covers(shared_sim, take):
    stdout = RecordingStdout(take)
    _sync(shared_sim.config(), stdout)
    lines = stdout.output.splitlines(keepends=True)
    messages = [json.loads(line) for line in lines]
    # Every byte arrived, in order: the records are the ground truth.
    records: dict[str, list[dict]] = {s: [] for s in STREAMS}
    for m in messages:
        if m["type"] == "RECORD":
            records[m["stream"]].append(m["record"])
    expected = expected_records(shared_sim)
    for stream in STREAMS:
        assert keyed(stream, records[stream]) == keyed(stream, expected[stream]), stream
    # Not a write per message: at most one per full buffer, per flushed message and per part a write took.
    writes = [c for c in stdout.calls if c is not None]
    flushed_messages = sum(m["type"] != "RECORD" for m in messages)
    parts = -(-OUTPUT_BUFFER_BYTES // take) if take else 1
    assert len(writes) <= (len(stdout.output) // OUTPUT_BUFFER_BYTES + flushed_messages) * parts
    if take is None:
        assert len(writes) * 20 < len(messages)
    # Each STATE line is the last thing written before a flush: no record it covers waits.
    position = 0
    ends_at_flush = set()
    for call in stdout.calls:
        if call is None:
            ends_at_flush.add(position)
        else:
            position += len(call)
    offset = 0
    states = 0
    for line in lines:
        offset += len(line)
        if line.startswith(b'{"type":"STATE"'):
            states += 1
            assert offset in ends_at_flush, "a STATE line was left in a buffer"
    assert states >= 2


def test_a_signal_handler_writing_during_a_write_waits_for_it(monkeypatch):
    stdout = RecordingStdout(take=100)
    monkeypatch.setattr("sys.stdout", io.TextIOWrapper(stdout, encoding="utf-8", write_through=True))
    writer = CountingWriter()
    state = b'{"type":"STATE","value":{}}\n'
    for n in range(OUTPUT_BUFFER_BYTES // 40):
        writer.write_record({"type": "RECORD", "stream": "s", "record": {"n": n}})
    # SIGTERM's handler arrives while the buffer is being written, part by part.
    stdout.during_write = lambda: writer.at_safe_point(lambda: writer.write_line(state))
    writer.flush()
    lines = stdout.output.splitlines(keepends=True)
    assert lines[-1] == state
    assert [json.loads(line)["record"]["n"] for line in lines[:-1]] == list(range(OUTPUT_BUFFER_BYTES // 40))
    assert writer.bytes_written == len(stdout.output)


def test_a_state_written_between_a_record_and_its_newline_is_a_line_of_its_own(monkeypatch):
    stdout = RecordingStdout()
    monkeypatch.setattr("sys.stdout", io.TextIOWrapper(stdout, encoding="utf-8", write_through=True))
    writer = CountingWriter()
    # What a signal handler finds when it runs between encoding a record and adding its newline.
    record, state = b'{"type":"RECORD","stream":"s","record":{"n":1}}', b'{"type":"STATE","value":{}}'
    writer._buffer += record
    writer.write_line(state + b"\n")
    assert stdout.output.splitlines() == [record, state]


@pytest.mark.parametrize("unbuffered", ["1", None], ids=["PYTHONUNBUFFERED=1", "PYTHONUNBUFFERED-unset"])
def test_records_written_before_a_failure_reach_the_output(tap, unbuffered, monkeypatch):
    """A sync that fails part way: what it wrote before failing is not lost in a buffer."""
    if unbuffered is None:
        monkeypatch.delenv("PYTHONUNBUFFERED", raising=False)
    else:
        monkeypatch.setenv("PYTHONUNBUFFERED", unbuffered)
    with HotjarSimulator(seed=5, sites=1, surveys_per_site=3, responses_per_survey=40, empty_surveys=0) as sim:
        site = sim.site_ids[0]
        first, second, _ = sim.survey_ids(site)

        def refuse_the_second_survey(request: t.Any) -> tuple[int, bytes, dict] | None:
            if request.route == "responses" and request.args[1] == second:
                return 400, b'{"code":"bad_request","msg":"no"}', {"Content-Type": "application/json"}
            return None

        sim.set_request_hook(before=refuse_the_second_survey)
        run = tap(sim.config(page_size=10))
        assert run.returncode != 0
        assert run.stderr_lines[-1].startswith("tap-hotjar: error:"), run.stderr[-2000:]
        assert run.stdout.endswith("\n")
        want = {r["id"] for r in sim.responses(site, first)}
        got = {r["id"] for r in run.records["survey_responses"] if r["survey_id"] == first}
        assert got == want
        answers = {(a["response_id"], a["position"]) for a in run.records["survey_answers"]}
        assert answers == {(r["id"], i) for r in sim.responses(site, first) for i in range(len(r["answers"]))}
