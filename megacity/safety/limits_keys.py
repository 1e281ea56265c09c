"""Every Redis key and Lua script of the rate limiter and the abuse detector, in one place.

All keys under one prefix share the hash tag ``{prefix}``, so a Redis Cluster keeps them
in one slot and a script may touch several of them atomically. Every script reads the
time with ``redis.call('TIME')``: one clock for every router replica.

Rate limiter (``LimitKeys``, default prefix ``megacity:limits``):

* ``{prefix}:bucket:<bucket key>`` — hash ``{tokens, ts}``: the level (may be negative:
  debt) at ``ts`` (µs since the epoch, Redis time). A missing hash is a full bucket; the
  hash expires when the bucket would be full again, so idle buckets disappear.

Abuse detector (``AbuseKeys``, default prefix ``megacity:abuse``):

* ``{prefix}:requests:<user>`` — sorted set, one member per request (score: µs), trimmed
  to the burst window.
* ``{prefix}:prompt:<user>:<sha256>`` — sorted set, one member per sending of the same
  normalised prompt (score: µs), trimmed to the repeat window.
* ``{prefix}:firewall:<user>`` — sorted set, one member per firewall hit (score: µs).
* ``{prefix}:block:<user>`` — the block as JSON ``{user, reason, detail, since_ms,
  until_ms, scope: "user"}``, expiring when the block ends.
* ``{prefix}:throttle:<user>:<sha256>`` — a short throttle of one prompt of one user, the
  same JSON with ``scope: "prompt"``, expiring when the throttle ends.
* ``{prefix}:blocks`` — sorted set index of blocked users (score: until, ms), for listing;
  it expires with the longest block.
"""

from __future__ import annotations


class _Prefixed:
    """Key names under one prefix wrapped in a hash tag."""

    def __init__(self, prefix: str) -> None:
        if not prefix or any(c in prefix for c in "{} \n"):
            raise ValueError(f"invalid Redis key prefix {prefix!r}")
        self.prefix = prefix
        self._base = "{" + prefix + "}"

    def pattern(self) -> str:
        """A SCAN pattern matching every key under this prefix (for clean-up)."""
        return self._base.replace("[", "\\[").replace("]", "\\]") + ":*"


class LimitKeys(_Prefixed):
    """The rate limiter's key names (tests use a prefix of their own)."""

    def __init__(self, prefix: str = "megacity:limits") -> None:
        super().__init__(prefix)

    def bucket(self, key: str) -> str:
        return f"{self._base}:bucket:{key}"


class AbuseKeys(_Prefixed):
    """The abuse detector's key names (tests use a prefix of their own)."""

    def __init__(self, prefix: str = "megacity:abuse") -> None:
        super().__init__(prefix)
        self.index = f"{self._base}:blocks"

    def requests(self, user: str) -> str:
        return f"{self._base}:requests:{user}"

    def prompt(self, user: str, digest: str) -> str:
        return f"{self._base}:prompt:{user}:{digest}"

    def firewall(self, user: str) -> str:
        return f"{self._base}:firewall:{user}"

    def block(self, user: str) -> str:
        return f"{self._base}:block:{user}"

    def throttle(self, user: str, digest: str) -> str:
        return f"{self._base}:throttle:{user}:{digest}"


# Numbers leave Lua as strings: Redis truncates a Lua number reply to an integer, and
# tostring() keeps only 14 digits.
_NOW_US = """
local clock = redis.call('TIME')
local now_us = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local function num(x) return string.format('%.17g', x) end
local function int(x) return string.format('%.0f', x) end
"""

# Refills a bucket to now; writes its new level, or deletes it when full (missing = full).
_BUCKET_FUNCTIONS = """
local function level(key, cap, rate)
  local h = redis.call('HMGET', key, 'tokens', 'ts')
  if not h[1] then return cap end
  local elapsed = math.max(0, now_us - tonumber(h[2])) / 1000000
  return math.min(cap, tonumber(h[1]) + elapsed * rate)
end
local function store(key, cap, rate, tokens)
  if tokens >= cap then
    redis.call('DEL', key)
  else
    redis.call('HSET', key, 'tokens', num(tokens), 'ts', int(now_us))
    redis.call('PEXPIRE', key, int(math.ceil((cap - tokens) / rate * 1000)))
  end
end
"""

# KEYS: one hash per bucket; ARGV[1] slack (a fraction of the capacity that counts as
# rounding), then capacity, refill per second, cost, for each bucket.
# Refills every bucket, then charges all of them or none. Returns {refused (1-based index
# of the first bucket that lacks tokens, 0: allowed), wait (s), level of each bucket}.
# A cost above capacity never fits: its wait is the bucket's full refill time.
TAKE = (
    _NOW_US
    + _BUCKET_FUNCTIONS
    + """
local slack = tonumber(ARGV[1])
local levels, refused, wait = {}, 0, 0
for i = 1, #KEYS do
  local cap, rate, cost = tonumber(ARGV[3*i-1]), tonumber(ARGV[3*i]), tonumber(ARGV[3*i+1])
  levels[i] = level(KEYS[i], cap, rate)
  local lack = nil
  if cost > cap then lack = cap / rate
  elseif levels[i] < cost - slack * cap then lack = (cost - levels[i]) / rate end
  if lack then
    if refused == 0 then refused = i end
    wait = math.max(wait, lack)
  end
end
if refused == 0 then
  for i = 1, #KEYS do
    local cap, rate, cost = tonumber(ARGV[3*i-1]), tonumber(ARGV[3*i]), tonumber(ARGV[3*i+1])
    levels[i] = levels[i] - cost
    store(KEYS[i], cap, rate, levels[i])
  end
end
local out = {refused, num(wait)}
for i = 1, #KEYS do out[#out + 1] = num(levels[i]) end
return out
"""
)

# KEYS[1] bucket; ARGV[1] capacity, ARGV[2] refill per second, ARGV[3] amount (positive:
# charge, may leave debt; negative: refund, up to full). Returns the new level.
ADJUST = (
    _NOW_US
    + _BUCKET_FUNCTIONS
    + """
local cap, rate = tonumber(ARGV[1]), tonumber(ARGV[2])
local tokens = math.min(cap, level(KEYS[1], cap, rate) - tonumber(ARGV[3]))
store(KEYS[1], cap, rate, tokens)
return num(tokens)
"""
)

# Writes a block (JSON with a TTL) and indexes it; drops index entries already over.
# A throttle is the same document on one prompt's key, not indexed: it lasts seconds.
_BLOCK_FUNCTION = """
local function block_doc(user, reason, detail, block_ms, scope)
  local now_ms = math.floor(now_us / 1000)
  local until_ms = now_ms + block_ms
  local doc = cjson.encode({user = user, reason = reason, detail = detail,
                            since_ms = now_ms, until_ms = until_ms, scope = scope})
  return doc, until_ms
end
local function make_block(key, index, user, reason, detail, block_ms)
  local doc, until_ms = block_doc(user, reason, detail, block_ms, 'user')
  redis.call('SET', key, doc, 'PX', int(block_ms))
  redis.call('ZREMRANGEBYSCORE', index, '-inf', int(math.floor(now_us / 1000)))
  redis.call('ZADD', index, int(until_ms), user)
  if redis.call('PTTL', index) < block_ms then redis.call('PEXPIRE', index, int(block_ms)) end
  return doc
end
local function make_throttle(key, user, reason, detail, throttle_ms)
  local doc = block_doc(user, reason, detail, throttle_ms, 'prompt')
  redis.call('SET', key, doc, 'PX', int(throttle_ms))
  return doc
end
"""

# KEYS[1] block, KEYS[2] index, KEYS[3] the prompt's throttle, KEYS[4..] window sorted
# sets; ARGV[1] member (unique per call), ARGV[2] block length (ms), ARGV[3] user, ARGV[4]
# throttle length (ms), then for each window: limit, length (ms), reason, detail template
# (one %d: the count), scope ("user": a block of the user; "prompt": a throttle of
# KEYS[3]). Nothing is counted while the user is blocked (returns nil) or the prompt is
# throttled (returns {throttle, 0}). Otherwise counts the event in every window; the first
# window over its limit makes a block (every window cleared) or a throttle (its window
# cleared). Returns {document, 1} for what it made, or nil.
RECORD = (
    _NOW_US
    + _BLOCK_FUNCTION
    + """
if redis.call('EXISTS', KEYS[1]) == 1 then return false end
local throttled = redis.call('GET', KEYS[3])
if throttled then return {throttled, 0} end
local hit, hit_count = 0, 0
for i = 4, #KEYS do
  local j = 5 * (i - 4) + 5
  local window_ms = tonumber(ARGV[j + 1])
  redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', int(now_us - window_ms * 1000))
  redis.call('ZADD', KEYS[i], int(now_us), ARGV[1])
  redis.call('PEXPIRE', KEYS[i], int(window_ms))
  local count = redis.call('ZCARD', KEYS[i])
  if hit == 0 and count > tonumber(ARGV[j]) then hit, hit_count = i, count end
end
if hit == 0 then return false end
local j = 5 * (hit - 4) + 5
local detail = string.format(ARGV[j + 3], hit_count)
if ARGV[j + 4] == 'prompt' then
  redis.call('DEL', KEYS[hit])
  return {make_throttle(KEYS[3], ARGV[3], ARGV[j + 2], detail, tonumber(ARGV[4])), 1}
end
for i = 4, #KEYS do redis.call('DEL', KEYS[i]) end
return {make_block(KEYS[1], KEYS[2], ARGV[3], ARGV[j + 2], detail, tonumber(ARGV[2])), 1}
"""
)

# KEYS[1] block, KEYS[2] index; ARGV[1] user, ARGV[2] reason, ARGV[3] detail, ARGV[4]
# length (ms). Blocks the user (replacing any block); returns the block's JSON.
BLOCK = (
    _NOW_US
    + _BLOCK_FUNCTION
    + """
return make_block(KEYS[1], KEYS[2], ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4]))
"""
)

# KEYS[1] block, KEYS[2] index; ARGV[1] user. Returns 1 if the user was blocked.
UNBLOCK = """
redis.call('ZREM', KEYS[2], ARGV[1])
return redis.call('DEL', KEYS[1])
"""
