"""Fused feature documents by request fingerprint (media hashes, text, script, zone).

A learner who asks again about the same attempt — a follow-up question in another
language, a retry after a timeout — gets the extraction from here instead of running
every engine again. Only complete documents (nothing degraded) are kept, at most
`entries` of them for `ttl_s` seconds, in this process (derived numbers, never media).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable

from megacity.pipelines.multimodal.fuse import Features


class FeatureCache:
    """A small LRU with expiry; `entries` 0 turns it off. Injectable clock for tests."""

    def __init__(
        self, entries: int, ttl_s: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._entries = entries
        self._ttl_s = ttl_s
        self._clock = clock
        self._items: OrderedDict[str, tuple[float, Features]] = OrderedDict()

    def get(self, key: str) -> Features | None:
        item = self._items.get(key)
        if item is None:
            return None
        stored, features = item
        if self._clock() - stored > self._ttl_s:
            del self._items[key]
            return None
        self._items.move_to_end(key)
        return features

    def put(self, key: str, features: Features) -> None:
        if self._entries <= 0 or features.degraded:
            return
        self._items[key] = (self._clock(), features)
        self._items.move_to_end(key)
        while len(self._items) > self._entries:
            self._items.popitem(last=False)

    def __len__(self) -> int:
        return len(self._items)
