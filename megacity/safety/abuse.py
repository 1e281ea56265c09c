"""Abuse detection: block a user on bursts or firewall hits; throttle repeated prompts.

Sliding windows per user; a count above the policy's number acts, and the window that
tripped starts again empty:

* a burst (more than ``burst_requests`` within ``burst_window_s``) or firewall hits block
  the user — every request refused — for ``block_s`` seconds (long: this is abuse);
* the same prompt more than ``repeat_prompts`` times within ``repeat_window_s`` throttles
  that prompt only, for ``repeat_throttle_s`` seconds (short: a "regenerate" button, a
  client's own retries, a class typing the same exercise are not abuse).

While blocked (or, for its prompt, throttled), nothing more is counted. Callers that act
for many people at once (a service key without a user, one client address) pass
``burst=False`` and count no firewall hits: a long block would take a whole population
down. The ``user`` is an anonymised id (the caller HMACs it); prompts are kept only as
the SHA-256 of their normalised text, and a block's ``detail`` is machine-made, never
user content.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import re
import secrets
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Literal, NamedTuple, Protocol

if TYPE_CHECKING:  # redis is imported only when REDIS_URL is set
    from redis.asyncio import Redis

from megacity.safety import limits_keys as lk
from megacity.safety.ratelimit import LogThrottle

log = logging.getLogger("megacity.abuse")

_KIND = re.compile(r"^[a-z0-9_.-]{1,40}$")  # firewall hit kinds: machine-made labels
_MAX_USER_LEN = 200
_MAX_DIGESTS = 256  # distinct prompts remembered per user (memory detector)
BlockScope = Literal["user", "prompt"]  # every request of the user, or one prompt of theirs


class AbuseReason(StrEnum):
    BURST = "burst"
    REPEATED_PROMPT = "repeated_prompt"
    FIREWALL_HITS = "firewall_hits"
    MANUAL = "manual"


@dataclass(frozen=True, slots=True)
class AbusePolicy:
    """The most events allowed per window (s) before a block of ``block_s`` seconds."""

    burst_requests: int = 60
    burst_window_s: float = 10.0
    repeat_prompts: int = 8
    repeat_window_s: float = 60.0
    firewall_hits: int = 3
    firewall_window_s: float = 600.0
    block_s: float = 900.0
    repeat_throttle_s: float = 10.0

    def __post_init__(self) -> None:
        for name in ("burst_requests", "repeat_prompts", "firewall_hits"):
            if getattr(self, name) < 1:
                raise ValueError(f"AbusePolicy.{name} must be at least 1")
        seconds = ("burst_window_s", "repeat_window_s", "firewall_window_s", "block_s")
        for name in (*seconds, "repeat_throttle_s"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"AbusePolicy.{name} must be a positive number of seconds")


@dataclass(frozen=True, slots=True)
class Block:
    """A user blocked (or one prompt of theirs throttled) from ``since`` to ``until`` (unix s)."""

    user: str
    reason: AbuseReason
    detail: str  # machine-made, e.g. "61 requests in 10 s"
    since: float
    until: float
    scope: BlockScope = "user"

    @classmethod
    def from_json(cls, text: str | bytes) -> Block:
        """The block as the Redis scripts write it (times in ms)."""
        doc = json.loads(text)
        return cls(
            user=doc["user"],
            reason=AbuseReason(doc["reason"]),
            detail=doc["detail"],
            since=doc["since_ms"] / 1000,
            until=doc["until_ms"] / 1000,
            scope="prompt" if doc.get("scope") == "prompt" else "user",
        )

    def as_json(self) -> dict[str, Any]:
        """The block for the admin API (user is the keyed hash, never the id)."""
        return {
            "user": self.user,
            "reason": self.reason.value,
            "detail": self.detail,
            "scope": self.scope,
            "since": self.since,
            "until": self.until,
        }


class AbuseDetector(Protocol):
    """Counts what users do and blocks those who abuse the service, for a while."""

    async def blocked(self, user: str) -> Block | None: ...

    async def record_request(
        self, user: str, prompt: str | None = None, *, burst: bool = True
    ) -> Block | None:
        """Count a request (in the burst window unless ``burst`` is off) and its prompt's
        hash; the block or prompt throttle now in force, if this request met one."""
        ...

    async def record_firewall_hit(self, user: str, kind: str) -> Block | None: ...

    async def block(self, user: str, reason: AbuseReason, detail: str, seconds: float) -> Block: ...

    async def unblock(self, user: str) -> bool: ...

    async def blocks(self, limit: int = 100) -> list[Block]:
        """Current blocks, the latest-ending first."""
        ...

    async def close(self) -> None: ...


def prompt_digest(prompt: str) -> str:
    """SHA-256 (hex) of the prompt stripped, whitespace collapsed, casefolded."""
    return hashlib.sha256(" ".join(prompt.split()).casefold().encode()).hexdigest()


def _check_user(user: str) -> None:
    if not user or len(user) > _MAX_USER_LEN or any(c.isspace() for c in user):
        raise ValueError("invalid user id (non-empty, no spaces, at most 200 characters)")


def _check_kind(kind: str) -> None:
    if not _KIND.match(kind):
        raise ValueError(f"invalid firewall hit kind {kind!r} (expected [a-z0-9_.-]{{1,40}})")


def _check_seconds(seconds: float) -> None:
    if not (math.isfinite(seconds) and seconds > 0):
        raise ValueError(f"a block lasts a positive number of seconds, not {seconds!r}")


class _Rule(NamedTuple):
    """More than ``limit`` events within ``window_s`` seconds blocks (or throttles)."""

    limit: int
    window_s: float
    reason: AbuseReason
    template: str  # the block's detail; one %d: the count (Lua's string.format reads it too)
    scope: BlockScope = "user"


def _burst(p: AbusePolicy) -> _Rule:
    detail = f"%d requests in {p.burst_window_s:g} s"
    return _Rule(p.burst_requests, p.burst_window_s, AbuseReason.BURST, detail)


def _repeat(p: AbusePolicy, digest: str) -> _Rule:
    detail = f"%d identical prompts in {p.repeat_window_s:g} s (sha256 {digest[:12]})"
    reason = AbuseReason.REPEATED_PROMPT
    return _Rule(p.repeat_prompts, p.repeat_window_s, reason, detail, "prompt")


def _firewall(p: AbusePolicy, kind: str) -> _Rule:
    detail = f"%d firewall hits in {p.firewall_window_s:g} s (last: {kind})"
    return _Rule(p.firewall_hits, p.firewall_window_s, AbuseReason.FIREWALL_HITS, detail)


def _announce(block: Block) -> Block:
    """Log a new block (WARNING) or prompt throttle (INFO: ordinary traffic meets them)."""
    level, what = (
        (logging.WARNING, "blocked")
        if block.scope == "user"
        else (logging.INFO, "throttled a prompt of")
    )
    log.log(
        level,
        "abuse: %s user=%s reason=%s detail=%r until=%.3f",
        what,
        block.user,
        block.reason.value,
        block.detail,
        block.until,
    )
    return block


def _slide(events: deque[float], now: float, window_s: float) -> int:
    """Count an event at ``now`` in a window of ``window_s`` seconds; the count."""
    events.append(now)
    while events and events[0] <= now - window_s:
        events.popleft()
    return len(events)


@dataclass
class _Windows:
    """One user's sliding windows (each deque keeps one event more than its limit)."""

    requests: deque[float]
    firewall: deque[float]
    prompts: dict[str, deque[float]] = field(default_factory=dict)


class MemoryAbuseDetector:
    """Windows and blocks in dicts, for a router on its own; at most ``max_users`` of each."""

    def __init__(
        self,
        policy: AbusePolicy | None = None,
        *,
        clock: Callable[[], float] = time.time,
        max_users: int = 100_000,
    ) -> None:
        if max_users < 1:
            raise ValueError("max_users must be at least 1")
        self.policy = policy or AbusePolicy()
        self._clock = clock
        self._max_users = max_users
        self._windows: OrderedDict[str, _Windows] = OrderedDict()  # LRU order
        self._blocks: dict[str, Block] = {}
        self._throttles: dict[tuple[str, str], Block] = {}  # (user, prompt digest) → throttle

    async def blocked(self, user: str) -> Block | None:
        return self._active(user, self._clock())

    async def record_request(
        self, user: str, prompt: str | None = None, *, burst: bool = True
    ) -> Block | None:
        _check_user(user)
        now, policy = self._clock(), self.policy
        if self._active(user, now) is not None:
            return None
        digest = None if prompt is None else prompt_digest(prompt)
        if digest is not None and (throttle := self._throttled(user, digest, now)) is not None:
            return throttle
        windows = self._windows_of(user)
        counted = []
        if burst:
            counted.append((_burst(policy), _slide(windows.requests, now, policy.burst_window_s)))
        if digest is not None:
            sent = self._prompt_events(windows, digest)
            counted.append((_repeat(policy, digest), _slide(sent, now, policy.repeat_window_s)))
        tripped = next(((rule, n) for rule, n in counted if n > rule.limit), None)
        if tripped is None:
            return None
        rule, count = tripped
        if digest is not None:
            del windows.prompts[digest]
        if rule.scope == "prompt" and digest is not None:
            throttle = Block(
                user,
                rule.reason,
                rule.template % count,
                now,
                now + policy.repeat_throttle_s,
                "prompt",
            )
            self._throttles[(user, digest)] = throttle
            if len(self._throttles) > self._max_users:
                del self._throttles[next(iter(self._throttles))]
            return _announce(throttle)
        windows.requests.clear()
        return self._make(user, rule.reason, rule.template % count, now)

    def _throttled(self, user: str, digest: str, now: float) -> Block | None:
        throttle = self._throttles.get((user, digest))
        if throttle is not None and throttle.until <= now:
            del self._throttles[(user, digest)]
            return None
        return throttle

    async def record_firewall_hit(self, user: str, kind: str) -> Block | None:
        _check_user(user)
        _check_kind(kind)
        now, policy = self._clock(), self.policy
        if self._active(user, now) is not None:
            return None
        windows = self._windows_of(user)
        rule = _firewall(policy, kind)
        count = _slide(windows.firewall, now, rule.window_s)
        if count <= rule.limit:
            return None
        windows.firewall.clear()
        return self._make(user, rule.reason, rule.template % count, now)

    async def block(self, user: str, reason: AbuseReason, detail: str, seconds: float) -> Block:
        _check_user(user)
        _check_seconds(seconds)
        return self._make(user, reason, detail, self._clock(), seconds)

    async def unblock(self, user: str) -> bool:
        return self._blocks.pop(user, None) is not None

    async def blocks(self, limit: int = 100) -> list[Block]:
        now = self._clock()
        live = [b for b in self._blocks.values() if b.until > now]
        return sorted(live, key=lambda b: b.until, reverse=True)[:limit]

    async def close(self) -> None:
        self._windows.clear()
        self._blocks.clear()
        self._throttles.clear()

    def _active(self, user: str, now: float) -> Block | None:
        block = self._blocks.get(user)
        if block is not None and block.until <= now:
            del self._blocks[user]
            return None
        return block

    def _windows_of(self, user: str) -> _Windows:
        windows = self._windows.get(user)
        if windows is None:
            policy = self.policy
            windows = _Windows(
                requests=deque(maxlen=policy.burst_requests + 1),
                firewall=deque(maxlen=policy.firewall_hits + 1),
            )
            self._windows[user] = windows
            if len(self._windows) > self._max_users:
                self._windows.popitem(last=False)
        self._windows.move_to_end(user)
        return windows

    def _prompt_events(self, windows: _Windows, digest: str) -> deque[float]:
        # Re-inserted on every sending, so the first entry is the longest unsent prompt.
        sent = windows.prompts.pop(digest, None)
        if sent is None:
            sent = deque(maxlen=self.policy.repeat_prompts + 1)
            if len(windows.prompts) >= _MAX_DIGESTS:
                del windows.prompts[next(iter(windows.prompts))]
        windows.prompts[digest] = sent
        return sent

    def _make(
        self, user: str, reason: AbuseReason, detail: str, now: float, seconds: float | None = None
    ) -> Block:
        until = now + (self.policy.block_s if seconds is None else seconds)
        block = Block(user, reason, detail, now, until)
        self._blocks[user] = block
        if len(self._blocks) > self._max_users:
            self._blocks = {u: b for u, b in self._blocks.items() if b.until > now}
            if len(self._blocks) > self._max_users:
                del self._blocks[min(self._blocks.values(), key=lambda b: b.until).user]
        return _announce(block)


_NO_PROMPT = "-"  # the throttle key of a call without a prompt (never set)


def _ms(seconds: float) -> str:
    return str(max(1, math.ceil(seconds * 1000)))


class RedisAbuseDetector:
    """Windows as sorted sets and blocks as expiring keys in Redis, shared by every replica.

    Detection (``blocked``, ``record_*``) fails open when Redis fails: no block, one
    warning per 10 s at most. The admin calls (``block``, ``unblock``, ``blocks``) raise.
    """

    def __init__(
        self,
        redis: Redis,
        policy: AbusePolicy | None = None,
        *,
        prefix: str = "megacity:abuse",
        owns_client: bool = False,
    ) -> None:
        from redis.exceptions import RedisError

        self._errors = (RedisError, OSError)
        self.redis = redis
        self.policy = policy or AbusePolicy()
        self.keys = lk.AbuseKeys(prefix)
        self._owns_client = owns_client
        self._record = redis.register_script(lk.RECORD)
        self._block = redis.register_script(lk.BLOCK)
        self._unblock = redis.register_script(lk.UNBLOCK)
        self._warn = LogThrottle(log)

    @classmethod
    def from_url(
        cls,
        url: str,
        policy: AbusePolicy | None = None,
        *,
        prefix: str = "megacity:abuse",
        timeout_s: float = 0.5,
    ) -> RedisAbuseDetector:
        """A detector with its own client (closed by ``close``); ``timeout_s`` bounds each call."""
        from redis.asyncio import Redis

        client = Redis.from_url(
            url, socket_connect_timeout=timeout_s, socket_timeout=timeout_s, decode_responses=True
        )
        return cls(client, policy, prefix=prefix, owns_client=True)

    async def blocked(self, user: str) -> Block | None:
        try:
            doc = await self.redis.get(self.keys.block(user))
        except self._errors as exc:
            self._warn.warning("abuse detector: Redis failed, not checking blocks: %s", exc)
            return None
        return None if doc is None else Block.from_json(doc)

    async def record_request(
        self, user: str, prompt: str | None = None, *, burst: bool = True
    ) -> Block | None:
        _check_user(user)
        windows = [(self.keys.requests(user), _burst(self.policy))] if burst else []
        digest = _NO_PROMPT
        if prompt is not None:
            digest = prompt_digest(prompt)
            windows.append((self.keys.prompt(user, digest), _repeat(self.policy, digest)))
        if not windows:
            return None
        return await self._count(user, windows, self.keys.throttle(user, digest))

    async def record_firewall_hit(self, user: str, kind: str) -> Block | None:
        _check_user(user)
        _check_kind(kind)
        windows = [(self.keys.firewall(user), _firewall(self.policy, kind))]
        return await self._count(user, windows, self.keys.throttle(user, _NO_PROMPT))

    async def block(self, user: str, reason: AbuseReason, detail: str, seconds: float) -> Block:
        _check_user(user)
        _check_seconds(seconds)
        doc = await self._block(
            keys=[self.keys.block(user), self.keys.index],
            args=[user, AbuseReason(reason).value, detail, _ms(seconds)],
        )
        return _announce(Block.from_json(doc))

    async def unblock(self, user: str) -> bool:
        removed = await self._unblock(keys=[self.keys.block(user), self.keys.index], args=[user])
        return int(removed) == 1

    async def blocks(self, limit: int = 100) -> list[Block]:
        if limit < 1:
            return []
        # Ordered by end: the blocks over (if the index still holds them) come last.
        users = await self.redis.zrevrange(self.keys.index, 0, limit - 1)
        if not users:
            return []
        docs = await self.redis.mget([self.keys.block(_text(u)) for u in users])
        return [Block.from_json(doc) for doc in docs if doc is not None]

    async def close(self) -> None:
        if self._owns_client:
            await self.redis.aclose()

    async def _count(
        self, user: str, windows: list[tuple[str, _Rule]], throttle_key: str
    ) -> Block | None:
        """Count one event in each (key, rule) window, in one RECORD call; the block or
        throttle in force, if any (announced when this call made it)."""
        policy = self.policy
        args = [secrets.token_hex(8), _ms(policy.block_s), user, _ms(policy.repeat_throttle_s)]
        for _, rule in windows:
            args += [str(rule.limit), _ms(rule.window_s), rule.reason.value, rule.template]
            args.append(rule.scope)
        keys = [self.keys.block(user), self.keys.index, throttle_key]
        keys += [key for key, _ in windows]
        try:
            reply: Any = await self._record(keys=keys, args=args)
        except self._errors as exc:
            self._warn.warning("abuse detector: Redis failed, request not counted: %s", exc)
            return None
        if reply is None:
            return None
        block = Block.from_json(reply[0])
        return _announce(block) if int(reply[1]) else block


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value
