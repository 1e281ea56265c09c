"""Model-version activation shared by every replica: a database row, polled into the registry.

`activate` checks the version against the registry, writes the row (the database is the
truth: it survives restarts and every router and worker reads it) and applies it here at
once. Every process polls the rows every `interval_s` and applies what changed, so an
activation taken on one replica is the active version on all of them within
`interval_s` (plus one query). The poll reads the primary, never a read replica: the
delay stays the documented one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from sqlalchemy.exc import SQLAlchemyError

from megacity.db import Database
from megacity.db import activations as rows
from megacity.errors import BadRequest, ServiceUnavailable
from megacity.routing.registry import ModelRegistry, ResolvedModel
from megacity.safety.ratelimit import LogThrottle

log = logging.getLogger("megacity.registry")


class ActivationSync:
    """Keeps a registry's active versions in step with the `model_activations` table."""

    def __init__(self, registry: ModelRegistry, db: Database, *, interval_s: float = 2.0) -> None:
        self.registry = registry
        self.db = db
        self.interval_s = interval_s
        self._seen: dict[str, str] = {}  # the rows as last applied
        self._task: asyncio.Task[None] | None = None
        self._warn = LogThrottle(log, interval_s=60.0)

    async def start(self) -> None:
        """Apply the stored activations now, then poll in the background."""
        await self.refresh()
        self._task = asyncio.create_task(self._run(), name="megacity-activation-sync")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def activate(self, name: str, version: str, *, by: str | None = None) -> ResolvedModel:
        """Make `version` the active one on every replica (400 for an unknown version)."""
        model = self.registry.model(name).name
        previous = self.registry.resolve(model).version
        resolved = self.registry.activate(model, version)  # checks the version first

        def write() -> None:
            with self.db.session() as session:
                rows.activate(session, model, version, by=by)

        try:
            await asyncio.to_thread(write)
        except SQLAlchemyError as exc:
            if previous is not None:
                self.registry.activate(model, previous)
            log.warning("activation not stored", extra={"model": model, "error": str(exc)})
            raise ServiceUnavailable(
                "the activation could not be stored; nothing changed",
                code="activation_not_stored",
            ) from None
        self._seen[model] = version
        return resolved

    async def refresh(self) -> int:
        """Apply the rows that changed since the last look; how many were applied."""

        def read() -> dict[str, str]:
            with self.db.session() as session:
                return rows.activations(session)

        try:
            stored = await asyncio.to_thread(read)
        except Exception as exc:  # the database is away: keep the versions we have
            self._warn.warning("model activations not read: %s", exc)
            return 0
        applied = 0
        for model, version in stored.items():
            if self._seen.get(model) == version:
                continue
            self._seen[model] = version
            applied += self._apply(model, version)
        return applied

    def _apply(self, model: str, version: str) -> int:
        if model not in self.registry:
            log.warning("stored activation of an unknown model ignored", extra={"model": model})
            return 0
        if self.registry.resolve(model).version == version:
            return 0
        try:
            resolved = self.registry.activate(model, version)
        except BadRequest:  # the topology no longer lists that version
            log.warning(
                "stored activation of an unknown version ignored",
                extra={"model": model, "version": version},
            )
            return 0
        log.info(
            "model version activated",
            extra={"model": model, "version": version, "served_as": resolved.served_as},
        )
        return 1

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            await self.refresh()
