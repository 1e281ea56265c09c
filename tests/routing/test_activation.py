"""Activations shared through the database: one process activates, the others follow."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from megacity.config.topology import load_topology
from megacity.db import Database
from megacity.db import activations as rows
from megacity.errors import BadRequest
from megacity.routing.activation import ActivationSync
from megacity.routing.registry import ModelRegistry

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "topology.yaml"


def _registry() -> ModelRegistry:
    return ModelRegistry(load_topology(EXAMPLE, env={}))


def test_an_activation_reaches_another_process_and_survives_a_restart(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'megacity.db'}")
    db.upgrade()

    async def run() -> None:
        one, other = ActivationSync(_registry(), db), ActivationSync(_registry(), db)
        await other.refresh()
        assert other.registry.resolve("seoul-medium-kr").version == "v1"
        resolved = await one.activate("kr-essay-tutor", "v2", by="ops")  # an alias works
        assert (resolved.name, resolved.version) == ("seoul-medium-kr", "v2")
        assert await other.refresh() == 1
        assert other.registry.resolve("seoul-medium-kr").served_as == "seoul-medium-kr-v2"
        assert await other.refresh() == 0  # nothing new
        restarted = ActivationSync(_registry(), db)
        await restarted.refresh()
        assert restarted.registry.resolve("seoul-medium-kr").version == "v2"
        with pytest.raises(BadRequest):
            await one.activate("seoul-medium-kr", "v9")
        assert one.registry.resolve("seoul-medium-kr").version == "v2"  # unchanged

    try:
        asyncio.run(run())
        with db.session() as session:
            assert rows.activations(session) == {"seoul-medium-kr": "v2"}
    finally:
        db.close()


def test_a_stored_version_the_topology_no_longer_has_is_ignored(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db = Database(f"sqlite:///{tmp_path / 'megacity.db'}")
    db.upgrade()
    with db.session() as session:
        rows.activate(session, "seoul-medium-kr", "v7")
        rows.activate(session, "retired-model", "v1")
    try:
        sync = ActivationSync(_registry(), db)
        with caplog.at_level(logging.WARNING, logger="megacity.registry"):
            assert asyncio.run(sync.refresh()) == 0
        assert sync.registry.resolve("seoul-medium-kr").version == "v1"
        messages = [r.getMessage() for r in caplog.records]
        assert "stored activation of an unknown version ignored" in messages
        assert "stored activation of an unknown model ignored" in messages
    finally:
        db.close()
