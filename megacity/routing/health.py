"""Background health probes and engine load signals; the request path never scrapes."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterable

import aiohttp

from megacity.routing.node_state import NodeState
from megacity.routing.signals import parse_signals

log = logging.getLogger("megacity.health")


class HealthMonitor:
    """Probes every remote node's /health and /metrics on an interval, concurrently."""

    def __init__(
        self,
        states: Iterable[NodeState],
        session: aiohttp.ClientSession,
        *,
        interval_s: float = 2.0,
        timeout_s: float = 1.0,
    ) -> None:
        self._states = [s for s in states if not s.node.in_process]
        self._session = session
        self._interval_s = interval_s
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Start probing in the background (the first round starts at once)."""
        self._task = asyncio.create_task(self._run(), name="megacity-health")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            try:
                await self.probe_all()
            except Exception:  # a probe bug must never kill the monitor
                log.exception("health probe round failed")
            await asyncio.sleep(self._interval_s)

    async def probe_all(self) -> None:
        await asyncio.gather(*(self.probe(s) for s in self._states))

    async def probe(self, state: NodeState) -> None:
        """One probe: /health decides health, /metrics (if any) refreshes the load figures."""
        url = state.node.url
        headers = _auth(state)
        try:
            async with self._session.get(
                f"{url}/health", timeout=self._timeout, headers=headers
            ) as resp:
                ok, reason = resp.status == 200, f"/health answered {resp.status}"
            if not ok and resp.status == 404:  # OpenAI-compatible servers without /health
                async with self._session.get(
                    f"{url}/v1/models", timeout=self._timeout, headers=headers
                ) as resp:
                    ok, reason = resp.status == 200, f"/v1/models answered {resp.status}"
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            ok, reason = False, f"unreachable: {type(exc).__name__}"
        self._set_health(state, ok, "ok" if ok else reason)
        if ok and state.node.server != "openai":  # a plain OpenAI server has no /metrics
            await self._scrape(state, headers)

    async def _scrape(self, state: NodeState, headers: dict[str, str]) -> None:
        try:
            async with self._session.get(
                f"{state.node.url}/metrics", timeout=self._timeout, headers=headers
            ) as resp:
                if resp.status != 200:
                    return
                text = await resp.text()
        except (aiohttp.ClientError, TimeoutError, OSError):
            return
        try:
            signals = parse_signals(text, state.node.server)
        except ValueError as exc:
            log.warning("node %s: unparseable /metrics (%s)", state.name, exc)
            return
        state.observe(signals)

    def _set_health(self, state: NodeState, ok: bool, reason: str) -> None:
        if ok != state.healthy:
            level = logging.INFO if ok else logging.WARNING
            log.log(level, "node %s is %s (%s)", state.name, "up" if ok else "down", reason)
        state.healthy = ok
        state.health_reason = reason
        state.last_probe = time.time()


def _auth(state: NodeState) -> dict[str, str]:
    key = state.node.api_key
    return {"Authorization": f"Bearer {key}"} if key else {}
