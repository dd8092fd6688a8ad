"""Checking an event log: its hash chain, and its agreement with the stream.

The first problem found is reported with its stream sequence, so an operator
knows where the log stopped being trustworthy.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from nats.aio.client import Client
from nats.js import errors as js_errors

from hyperhive.bus import subjects
from hyperhive.bus.connect import open_reader
from hyperhive.bus.consume import StartAt, ack_info, read_ordered
from hyperhive.config import HiveConfig
from hyperhive.errors import NoStream
from hyperhive.eventlog.store import GENESIS, EventLog, StreamMessage, chain_hash, to_row


@dataclass
class Problem:
    seq: int
    message: str

    def __str__(self) -> str:
        return f"seq {self.seq}: {self.message}"


@dataclass
class VerifyReport:
    rows: int = 0
    first_seq: int | None = None
    last_seq: int | None = None
    position: int = 0
    stream_checked: int = 0
    stream_expired: int = 0
    stream_lag: int = 0
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def first_problem(self) -> Problem | None:
        return min(self.problems, key=lambda p: p.seq) if self.problems else None


def verify_chain(log: EventLog, report: VerifyReport) -> None:
    """Recompute every row's hash and derived columns, in sequence order."""
    prev, prev_seq = GENESIS, None
    gaps = log.gaps()
    for row in log.rows():
        report.rows += 1
        if report.first_seq is None:
            report.first_seq = row.seq
        report.last_seq = row.seq
        expected = 1 if prev_seq is None else prev_seq + 1
        if row.seq != expected and expected not in gaps:
            report.problems.append(
                Problem(
                    expected,
                    f"rows {expected}..{row.seq - 1} are missing from the log (deleted?)",
                )
            )
            return
        if row.hash != chain_hash(prev, row.seq, row.subject, row.raw):
            report.problems.append(
                Problem(row.seq, "row was altered or reordered (hash chain broken)")
            )
            return
        derived = to_row(StreamMessage(row.seq, row.subject, row.raw), row.hive, prev)
        if (derived.id, derived.ts, derived.agent, derived.kind, derived.hive) != (
            row.id,
            row.ts,
            row.agent,
            row.kind,
            row.hive,
        ):
            report.problems.append(
                Problem(row.seq, "row's columns disagree with its raw event (edited)")
            )
            return
        prev, prev_seq = row.hash, row.seq
    report.position = log.position()
    last = report.last_seq or 0
    if report.position > last:
        report.problems.append(
            Problem(
                last + 1,
                f"rows {last + 1}..{report.position} are missing from the end of the log (deleted?)",
            )
        )


async def verify_stream(nc: Client, log: EventLog, report: VerifyReport) -> None:
    """Compare every logged row with the stream message at the same sequence."""
    stream = subjects.stream_name(log.hive)
    info = await nc.jetstream().stream_info(stream)
    state = info.state
    report.stream_lag = max(0, state.last_seq - (report.last_seq or 0))
    if report.first_seq is None:
        return
    start = max(report.first_seq, state.first_seq)
    report.stream_expired = max(
        0, min(state.first_seq, (report.last_seq or 0) + 1) - report.first_seq
    )
    end = report.last_seq or 0
    if start > end:
        return
    logged = log.rows(after_seq=start - 1, until_seq=end)
    row = next(logged, None)
    async for msg in read_ordered(
        nc, stream, subjects.stream_subjects(log.hive), StartAt(seq=start), False, end
    ):
        seq = ack_info(msg).stream_seq
        while row is not None and row.seq < seq:
            report.problems.append(Problem(row.seq, "row is in the log but not in the stream"))
            return
        if row is None or row.seq > seq:
            report.problems.append(Problem(seq, "stream message is missing from the log"))
            return
        if row.subject != msg.subject or row.raw != msg.data:
            report.problems.append(Problem(seq, "row differs from the stream message"))
            return
        report.stream_checked += 1
        row = next(logged, None)
    if row is not None:
        report.problems.append(Problem(row.seq, "row is in the log but not in the stream"))


async def run_verify(cfg: HiveConfig, path: Path, stream: bool = True) -> VerifyReport:
    """Check the log at `path`: its chain, then (with `stream`) against the hive's stream."""
    log = EventLog(path, cfg.hive, readonly=True)
    try:
        report = VerifyReport()
        verify_chain(log, report)
        if stream and report.ok:
            async with open_reader(cfg, "verify") as nc:
                try:
                    await verify_stream(nc, log, report)
                except js_errors.NotFoundError:
                    raise NoStream(
                        f"hive {cfg.hive!r} has no stream on this NATS to verify against "
                        "(use --no-stream to check the hash chain only)"
                    ) from None
        return report
    finally:
        log.close()
