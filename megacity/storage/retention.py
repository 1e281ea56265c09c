"""The retention sweep: delete stored objects whose time is up, row and bytes both.

An object is due when its row's `expires_at` has passed, or, for a row without one,
when its kind's retention (config/retention.py) has passed since `created_at`. A row's
own `expires_at` wins over its kind's rule, both ways. Objects a dance reference points
at are never deleted (the foreign keys are ON DELETE RESTRICT): they are reported.

Order of work, so that a crash at any point never leaves a row that reads as present
while its object is gone:

1. tombstone: in one transaction, the due rows without `expires_at` get `expires_at =
   now`. From then on every such row reads as expired: **a row whose `expires_at` has
   passed is gone, whatever the store still holds.**
2. per object, in one transaction: delete the row (the foreign keys refuse it when a
   reference appeared meanwhile: the tombstone is undone and the object kept), delete
   the object from the store, commit. A store failure rolls the row back; a crash
   after the store delete leaves an expired row, which the next sweep removes (the
   object then missing from the store is fine and reported as such).

Store objects without a row (orphans) are found on request and reported, never deleted:
an upload between its put and its row looks the same.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from megacity.config.retention import KINDS, RetentionPolicy
from megacity.db.database import Database
from megacity.db.models import StoredObject, utcnow
from megacity.db.objects import expired_objects, recorded_keys, referenced_keys
from megacity.errors import MegaCityError
from megacity.storage.base import ObjectStore

log = logging.getLogger("megacity.retention")

BATCH = 500  # rows read and tombstoned per transaction


@dataclass
class KindTotal:
    """Objects and bytes of one kind."""

    count: int = 0
    bytes: int = 0


@dataclass
class SweepReport:
    """What one sweep deleted (or, in a dry run, would delete) and what it kept."""

    now: datetime
    dry_run: bool
    kinds: dict[str, KindTotal] = field(default_factory=dict)  # deleted (or due), per kind
    keys: list[str] = field(default_factory=list)  # deleted (or due), in key order
    missing: list[str] = field(default_factory=list)  # row removed, object already gone
    referenced: list[str] = field(default_factory=list)  # due, but a reference holds it
    failed: dict[str, str] = field(default_factory=dict)  # key -> reason; retried next time
    orphans: list[str] | None = None  # store objects without a row (when asked for)

    @property
    def count(self) -> int:
        return sum(t.count for t in self.kinds.values())

    @property
    def bytes(self) -> int:
        return sum(t.bytes for t in self.kinds.values())

    @property
    def ok(self) -> bool:
        return not self.failed

    def _add(self, kind: str, size: int, key: str) -> None:
        total = self.kinds.setdefault(kind, KindTotal())
        total.count += 1
        total.bytes += size
        self.keys.append(key)

    def lines(self) -> list[str]:
        """The report for a person: totals per kind, then keys worth a look."""
        verb = "would delete" if self.dry_run else "deleted"
        mode = " (dry run)" if self.dry_run else ""
        out = [
            f"retention sweep at {self.now.isoformat()}{mode}:"
            f" {verb} {self.count} objects, {self.bytes} bytes"
        ]
        for kind in sorted(self.kinds):
            total = self.kinds[kind]
            out.append(f"  {kind}: {total.count} objects, {total.bytes} bytes")
        if self.dry_run:
            out += [f"  {verb} {key}" for key in self.keys]
        out += [f"  already gone from the store: {key}" for key in self.missing]
        out += [f"  kept, a dance reference points at it: {key}" for key in self.referenced]
        out += [f"  failed: {key}: {reason}" for key, reason in self.failed.items()]
        if self.orphans is not None:
            out.append(f"  {len(self.orphans)} objects in the store have no row (kept)")
            out += [f"  orphan: {key}" for key in self.orphans]
        return out


def sweep(
    db: Database,
    store: ObjectStore,
    policy: RetentionPolicy,
    *,
    now: datetime | None = None,
    dry_run: bool = False,
    find_orphans: bool = False,
) -> SweepReport:
    """Delete every due object (row and bytes) at `now` (default: the clock); see the module."""
    now = now or utcnow()
    if now.tzinfo is None:
        raise ValueError("now must be an aware datetime")
    report = SweepReport(now=now, dry_run=dry_run)
    cutoffs = {
        kind: now - timedelta(days=days)
        for kind in KINDS
        if (rule := policy.rule(kind)) is not None and (days := rule.retention_days) is not None
    }
    after = ""
    while True:
        with db.session() as session:
            rows = expired_objects(session, now=now, cutoffs=cutoffs, after=after, limit=BATCH)
            if not rows:
                break
            after = rows[-1].key
            held = referenced_keys(session, [row.key for row in rows])
            report.referenced += [row.key for row in rows if row.key in held]
            due = [row for row in rows if row.key not in held]
            tombstoned = {row.key for row in due if row.expires_at is None}
            if not dry_run:
                for row in due:
                    if row.expires_at is None:
                        row.expires_at = now
            due_items = [(row.key, row.kind, row.size) for row in due]
        for key, kind, size in due_items:
            if dry_run:
                report._add(kind, size, key)
            else:
                _delete(db, store, key, kind, size, report, untombstone=key in tombstoned)
    if find_orphans:
        report.orphans = orphans(db, store)
    return report


def _delete(
    db: Database,
    store: ObjectStore,
    key: str,
    kind: str,
    size: int,
    report: SweepReport,
    *,
    untombstone: bool,
) -> None:
    """Row and object in one transaction: the row goes first, the commit last."""
    try:
        with db.session() as session:
            row = session.get(StoredObject, key)
            if row is None or row.expires_at is None or row.expires_at > report.now:
                return  # another sweep got there first, or the object was stored again
            session.delete(row)
            session.flush()  # IntegrityError: a reference points at it now
            existed = store.delete(key)
    except IntegrityError:
        report.referenced.append(key)
        if untombstone:
            with db.session() as session:
                row = session.get(StoredObject, key)
                if row is not None:
                    row.expires_at = None
        return
    except (MegaCityError, OSError) as exc:
        report.failed[key] = str(exc)
        log.warning("retention: deleting an object failed", extra={"key": key, "error": str(exc)})
        return
    report._add(kind, size, key)
    if not existed:
        report.missing.append(key)


def orphans(db: Database, store: ObjectStore, *, chunk: int = 500) -> list[str]:
    """Keys in the store that have no row, sorted (a full listing of the store)."""
    keys = store.list()
    found: list[str] = []
    with db.session() as session:
        for start in range(0, len(keys), chunk):
            part = keys[start : start + chunk]
            recorded = recorded_keys(session, part)
            found += [key for key in part if key not in recorded]
    return found


def log_report(report: SweepReport) -> None:
    """Log what a sweep deleted (objects and bytes, in all and per kind) and what it kept."""
    log.info(
        "retention sweep",
        extra={
            "deleted": report.count,
            "bytes": report.bytes,
            "kinds": {k: {"count": t.count, "bytes": t.bytes} for k, t in report.kinds.items()},
            "missing": len(report.missing),
            "referenced": len(report.referenced),
            "failed": len(report.failed),
        },
    )
    for key, reason in list(report.failed.items())[:20]:
        log.warning("retention: an object was not deleted", extra={"key": key, "error": reason})


async def sweep_periodically(
    db: Database,
    store: ObjectStore,
    policy: RetentionPolicy,
    *,
    interval_s: float,
    stop: asyncio.Event,
    on_report: Callable[[SweepReport], Any] | None = None,
    clock: Callable[[], datetime] = utcnow,
) -> None:
    """Sweep every `interval_s` seconds (in a thread) until `stop` is set; errors are logged.

    A job worker runs the sweep as one of its chores instead (jobs/chores.py): one worker
    at a time, every `retention_sweep_interval_s`.
    """
    while not stop.is_set():
        try:
            report = await asyncio.to_thread(sweep, db, store, policy, now=clock())
        except (SQLAlchemyError, MegaCityError, OSError):
            log.exception("retention sweep failed")
        else:
            log_report(report)
            if on_report is not None:
                on_report(report)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval_s)
