"""Rolling aggregates: buckets per tier on a fake clock, percentiles, merging, JSON round trip."""

from __future__ import annotations

import random

import orjson
import pytest

from megacity.observability.rolling import (
    BASE_S,
    MAX_GROUPS,
    NO_GROUP,
    OTHER,
    TIERS,
    WINDOWS,
    Bucket,
    RollingStats,
    latency_bin,
    quantile,
    window_ids,
)
from megacity.observability.windows import SHOWN_GROUPS, summarize


class Clock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def window(stats: RollingStats, name: str, *replicas: RollingStats):
    """The summary of a window over `stats` and any other replicas' buckets."""
    tier = WINDOWS[name]
    now = stats.now()
    first, last = window_ids(tier, now)
    ids: dict[int, list[Bucket]] = {}
    for source in (stats, *replicas):
        for bid, bucket in source.buckets(tier, first, last):
            ids.setdefault(bid, []).append(bucket)
    return summarize(tier, now, sorted(ids.items()))


@pytest.mark.parametrize("seconds", [1e-5, 1e-4, 0.00123, 0.01, 0.5, 3.0, 45.0, 10_000.0])
def test_a_latency_lands_in_a_bin_that_holds_it(seconds: float) -> None:
    b = latency_bin(seconds)
    low, high = BASE_S * 2 ** (b / 4), BASE_S * 2 ** ((b + 1) / 4)
    if b == 0:
        assert seconds < high
    elif b == 99:
        assert seconds >= low
    else:
        assert low <= seconds < high


def test_quantiles_are_within_ten_percent_of_the_exact_ones() -> None:
    rng = random.Random(7)
    samples = [rng.lognormvariate(-3.5, 0.9) for _ in range(20_000)]
    hist: dict[int, int] = {}
    for s in samples:
        b = latency_bin(s)
        hist[b] = hist.get(b, 0) + 1
    ordered = sorted(samples)
    for q in (0.5, 0.95, 0.99):
        exact = ordered[int(q * len(ordered)) - 1]
        approx = quantile(hist, len(samples), q)
        assert approx is not None and abs(approx - exact) / exact < 0.10, (q, approx, exact)
    assert quantile({}, 0, 0.5) is None


def test_a_window_counts_requests_errors_and_rates_per_route_and_node() -> None:
    clock = Clock()
    stats = RollingStats(clock)
    for i in range(90):
        status = 502 if i % 10 == 0 else (429 if i % 15 == 1 else 200)
        stats.record("llm", "kr-14b", "seoul-a" if i % 2 else "seoul-b", "edu", status, 0.020)
        clock.now += 1.0
    stats.record("speech", "whisper", "speech-1", "ktube", 200, 0.5)
    s = window(stats, "5m")
    route = s.routes[("llm", "kr-14b", "edu")]
    assert route.requests == 90 and route.errors == 9 and route.rejected == 6
    assert route.error_rate == pytest.approx(0.1)
    assert route.p50_ms == pytest.approx(20, rel=0.1) and route.p99_ms == pytest.approx(20, rel=0.1)
    assert route.rate == pytest.approx(90 / s.span_s, rel=1e-3)
    assert 290 <= s.span_s <= 300
    assert s.nodes["seoul-a"].requests == 45 and s.nodes["speech-1"].requests == 1
    assert s.total.requests == 91
    assert set(s.series) == {"llm", "speech"}
    assert len(s.series["llm"].times) == 30  # 10 s buckets over 5 min
    assert sum(r * 10 for r in s.series["llm"].rate) == pytest.approx(90)


def test_ttft_is_kept_for_streams_only() -> None:
    stats = RollingStats(Clock())
    stats.record("llm", "m", "n", "z", 200, 2.0, ttft_s=0.05)
    stats.record("llm", "m", "n", "z", 200, 1.0)
    row = window(stats, "5m").routes[("llm", "m", "z")]
    assert row.ttft_p50_ms == pytest.approx(50, rel=0.1)
    assert row.p50_ms is not None and row.p50_ms > 900


def test_old_buckets_leave_each_window_and_are_pruned() -> None:
    clock = Clock()
    stats = RollingStats(clock)
    stats.record("llm", "m", "n", "z", 200, 0.01)
    clock.now += 400  # past the 5-minute window, inside the hour
    stats.record("llm", "m", "n", "z", 200, 0.01)
    assert window(stats, "5m").total.requests == 1
    assert window(stats, "1h").total.requests == 2
    assert window(stats, "24h").total.requests == 2
    clock.now += 3 * 3600
    stats.record("llm", "m", "n", "z", 200, 0.01)
    assert window(stats, "1h").total.requests == 1
    assert window(stats, "24h").total.requests == 3
    tier = TIERS[0]
    kept = list(stats.buckets(tier, 0, int(clock.now // tier.step_s)))
    assert len(kept) <= tier.keep  # the 10 s tier holds minutes, not hours


def test_events_are_counted_per_window() -> None:
    clock = Clock()
    stats = RollingStats(clock)
    stats.event(("failover", "kr-14b", "seoul-a"))
    stats.event(("failover", "kr-14b", "seoul-a"))
    stats.event(("safety", "firewall", "blocked", "edu"))
    s = window(stats, "1h")
    assert s.events[("failover", "kr-14b", "seoul-a")] == 2
    assert s.events[("safety", "firewall", "blocked", "edu")] == 1


def test_replicas_merge_like_one_and_survive_json() -> None:
    clock = Clock()
    a, b = RollingStats(clock), RollingStats(clock)
    for i in range(40):
        a.record("llm", "m", "n1", "z", 200, 0.01 * (i + 1))
        b.record("llm", "m", "n2", "z", 500, 0.5)
    b.event(("upstream_error", "n2", "status"))
    one = RollingStats(clock)
    for i in range(40):
        one.record("llm", "m", "n1", "z", 200, 0.01 * (i + 1))
        one.record("llm", "m", "n2", "z", 500, 0.5)
    # b's buckets as another replica would read them back from Redis
    tier = WINDOWS["5m"]
    first, last = window_ids(tier, clock.now)
    wire = [
        (
            bid,
            [
                Bucket.from_json(
                    orjson.loads(orjson.dumps(bk.to_json(), option=orjson.OPT_NON_STR_KEYS))
                )
            ],
        )
        for bid, bk in b.buckets(tier, first, last)
    ]
    merged_ids = {bid: [bk] for bid, bk in a.buckets(tier, first, last)}
    for bid, bks in wire:
        merged_ids.setdefault(bid, []).extend(bks)
    merged = summarize(tier, clock.now, sorted(merged_ids.items()))
    single = window(one, "5m")
    assert merged.total == single.total
    assert merged.nodes == single.nodes
    assert merged.events == {("upstream_error", "n2", "status"): 1}


def test_the_sliding_window_agrees_with_a_full_recount_as_time_goes_by() -> None:
    """Buckets added once final and subtracted when they leave give the recount's figures."""
    import asyncio

    from megacity.observability.replicas import LocalBoard

    clock = Clock()
    stats = RollingStats(clock)
    board = LocalBoard(stats, list, replica="me")
    rng = random.Random(3)
    for step in range(400):  # 400 × 7 s: the 5-minute window slides many times
        for _ in range(rng.randrange(0, 6)):
            node = rng.choice(("a", "b", "c"))
            status = rng.choice((200, 200, 200, 500, 429))
            stats.record("llm", "m", node, rng.choice(("z1", "z2")), status, rng.random(), None)
            if rng.random() < 0.2:
                stats.event(("failover", "m", node))
        clock.now += 7
        if step % 9 == 0:
            for name in ("5m", "1h"):
                kept = asyncio.run(board.snapshot(WINDOWS[name])).summary
                full = window(stats, name)
                assert kept.total == full.total, (step, name)
                assert kept.routes == full.routes and kept.nodes == full.nodes
                assert kept.events == full.events
                assert kept.series == full.series


def test_usage_is_counted_per_user_group_with_its_tokens() -> None:
    stats = RollingStats(Clock())
    for _ in range(3):
        stats.record("llm", "m", "n", "z", 200, 0.05, None, "school-a", 12)
    stats.record("llm", "m", "n", "z", 500, 0.5, None, "school-a", 0)
    stats.record("llm", "m", "n", "z2", 200, 0.05, None, "school-b", 30)
    stats.record("speech", "w", "s", "z", 429, 0.01)  # no group: counted under "-"
    for name in WINDOWS:
        s = window(stats, name)
        assert list(s.groups) == ["school-a", "-", "school-b"]  # busiest first, then by name
        a, b, none = s.groups["school-a"], s.groups["school-b"], s.groups[NO_GROUP]
        assert (a.requests, a.errors, a.tokens) == (4, 1, 36)
        assert (b.requests, b.errors, b.tokens) == (1, 0, 30)
        assert (none.requests, none.rejected, none.tokens) == (1, 1, 0)
        assert a.p95_ms is not None and a.error_rate == 0.25
        # the routes carry the same tokens
        assert s.routes[("llm", "m", "z")].tokens == 36
        assert sum(r.requests for r in s.groups.values()) == s.total.requests == 6


def test_a_bucket_holds_at_most_max_groups_and_the_rest_count_as_other() -> None:
    stats = RollingStats(Clock())
    for i in range(MAX_GROUPS + 30):
        stats.record("llm", "m", "n", "z", 200, 0.01, None, f"g{i:03d}", 1)
    tier = WINDOWS["5m"]
    first, last = window_ids(tier, stats.now())
    ((_, bucket),) = stats.buckets(tier, first, last)
    assert len(bucket.groups) == MAX_GROUPS + 1  # the first MAX_GROUPS named, then "other"
    assert bucket.groups[OTHER].count == 30
    s = window(stats, "5m")
    assert len(s.groups) == SHOWN_GROUPS  # the window lists the busiest; the rest are summed
    assert s.groups[OTHER].requests == MAX_GROUPS + 30 - (SHOWN_GROUPS - 1)
    assert sum(r.requests for r in s.groups.values()) == MAX_GROUPS + 30
    assert sum(r.tokens for r in s.groups.values()) == MAX_GROUPS + 30


def test_groups_merge_across_replicas_and_survive_json() -> None:
    clock = Clock()
    a, b = RollingStats(clock), RollingStats(clock)
    for _ in range(5):
        a.record("llm", "m", "n1", "z", 200, 0.02, None, "school-a", 10)
        b.record("llm", "m", "n2", "z", 200, 0.02, None, "school-a", 10)
        b.record("llm", "m", "n2", "z", 502, 0.2, None, "school-b", 0)
    tier = WINDOWS["1h"]
    first, last = window_ids(tier, clock.now)
    ids: dict[int, list[Bucket]] = {bid: [bk] for bid, bk in a.buckets(tier, first, last)}
    for bid, bk in b.buckets(tier, first, last):  # b's buckets as read back from Redis
        wire = orjson.loads(orjson.dumps(bk.to_json(), option=orjson.OPT_NON_STR_KEYS))
        ids.setdefault(bid, []).append(Bucket.from_json(wire))
    s = summarize(tier, clock.now, sorted(ids.items()))
    assert (s.groups["school-a"].requests, s.groups["school-a"].tokens) == (10, 100)
    assert (s.groups["school-b"].requests, s.groups["school-b"].errors) == (5, 5)
    # a bucket from a replica of the version before groups: no "g", no tokens in its cells
    old = {"c": [["llm", "m", "z", "n3", 2, 0, 0, 0, {"40": 2}, {}]], "e": []}
    legacy = Bucket.from_json(old)
    assert legacy.groups == {} and legacy.cells[("llm", "m", "z", "n3")].tokens == 0
    # a replica with a larger cap sends more groups than this one keeps: they join "other"
    many = {"c": [], "e": [], "g": [[f"g{i}", 1, 0, 0, 0, {"40": 1}, {}, 2] for i in range(150)]}
    capped = Bucket.from_json(many)
    assert len(capped.groups) == MAX_GROUPS + 1 and capped.groups[OTHER].count == 50
    assert sum(c.count for c in capped.groups.values()) == 150
    assert sum(c.tokens for c in capped.groups.values()) == 300
