"""Replay of a pending journal (lcp/tracking/journal.py): what a run could not send, sent exactly once.

What `lcp tracking sync` runs, and what a TrackedRun tries every `retry_secs` while offline:

- the run itself: found by its `lcp.run_key` tag before it is created, so a creation
  whose answer was lost is not repeated;
- metric points: only those (key, step, timestamp, value) the run does not hold yet;
- params, tags, artifacts and the final status: idempotent in MLflow.

Nothing is ever dropped: a record MLflow refuses (invalid value, a param that already holds
another value, a deleted run) stays queued and the replay says why; a run the target server
does not hold (a journal synced to another server) keeps all its records for the right one.
A finished run's journal is removed once all of it is sent.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from lcp.errors import LCPError
from lcp.tracking import settings
from lcp.tracking.client import Refused, is_transient, make_client, short_error
from lcp.tracking.journal import Journal
from lcp.tracking.sender import Sender

log = logging.getLogger("lcp.tracking")


@dataclass
class ReplayResult:
    journal: Path
    run_id: str | None
    sent: int
    remaining: int  # records still queued: not placed, for the reason in `error`
    refused: int = 0  # of those, the ones the target refused (sending again unchanged will not help)
    error: str | None = None
    uri: str | None = None

    @property
    def stopped(self) -> bool:
        """Whether records were left unsent because the target could not be reached."""
        return self.remaining > self.refused


def replay(journal: Journal, tracking_uri: str | None = None, client=None) -> ReplayResult:
    """Send a journal's unacknowledged records in order, each exactly once (see the module doc),
    to `tracking_uri`, else to the URI the journal recorded.

    Only a placed record is acknowledged. Stops at the first transient failure; a record the
    target refuses stays queued and the replay goes on with the next; a run the target does not
    hold (or holds deleted) keeps all its records.
    """
    with journal.exclusive():
        try:
            state = journal.read()
        except LCPError as exc:
            return ReplayResult(journal.path, None, 0, 1, 1, error=str(exc))
        if state.header is None or not state.pending:
            journal.remove_if_done()
            return ReplayResult(journal.path, state.run_id, 0, 0)
        recorded = state.header.get("tracking_uri")
        uri = tracking_uri or recorded
        pending = state.pending

        def kept(sent: int, remaining: int, refused: int, error: str) -> ReplayResult:
            return ReplayResult(journal.path, run_id, sent, remaining, refused, error=error, uri=uri)

        run_id = state.run_id
        # The recorded artifact location belongs to the recorded store (a folder on the machine
        # that ran): a run synced to another store keeps its artifacts where that store does.
        if uri != recorded:
            header = {
                **state.header,
                "tracking_uri": uri,
                "artifact_location": settings.target_of(uri).artifact_location,
            }
        else:
            header = state.header
        if not uri:
            return kept(
                0, len(pending), len(pending), "the journal records no tracking URI; name one with --tracking-uri"
            )
        try:
            sender = Sender(client or make_client(uri))
            if run_id is not None:
                sender.check_run(run_id, uri, recorded)
        except Exception as exc:  # noqa: BLE001  classified: nothing was sent
            refused = 0 if is_transient(exc) else len(pending)
            return kept(0, len(pending), refused, short_error(exc))
        sent, refusals = 0, []
        for index, record in enumerate(pending):
            try:
                if record["op"] == "create_run":
                    run_id = sender.create_run(header, record)
                elif run_id is None:
                    raise Refused("the run was never created (its create_run record is missing)")
                else:
                    sender.send(run_id, record, dedupe=True)
            except Exception as exc:  # noqa: BLE001  classified below
                left = len(pending) - index
                if is_transient(exc):
                    return kept(sent, left + len(refusals), len(refusals), short_error(exc))
                if run_id is None:  # nothing after it can be placed either
                    return kept(sent, left + len(refusals), left + len(refusals), short_error(exc))
                log.warning("MLflow refused %s record of %s (kept): %s", record["op"], journal.path, short_error(exc))
                refusals.append(f"{record['op']}: {short_error(exc)}")
                continue
            sent += 1
            journal.ack(record["id"], run_id)
        if refusals:
            more = f" (and {len(refusals) - 1} more)" if len(refusals) > 1 else ""
            return kept(sent, len(refusals), len(refusals), refusals[0] + more)
        journal.remove_if_done()
        return ReplayResult(journal.path, run_id, sent, 0, uri=uri)


def replay_all(journals: Iterable[Path], tracking_uri: str | None = None) -> Iterator[ReplayResult]:
    """Replay each journal in turn (one result each, as it is done)."""
    for path in journals:
        yield replay(Journal(path), tracking_uri)
