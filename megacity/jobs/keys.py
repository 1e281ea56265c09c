"""Every Redis key and Lua script of the job queue, in one place.

All keys share the hash tag ``{prefix}``, so a Redis Cluster keeps them in one slot and
the scripts below may touch several of them atomically.

* ``{prefix}:stream:<priority>:<kind>`` — one stream per priority and kind; an entry is
  ``{"job": <id>}``, the row in the database says the rest.
* ``{prefix}:delayed`` — sorted set of jobs waiting out a backoff (score: due time in
  ms); member = job id (32 hex characters) followed by its stream key.
* ``{prefix}:dead`` — the dead-letter stream: ``{"job", "kind", "code", "message"}``.
"""

from __future__ import annotations

from megacity.db.jobs import Priority

GROUP = "workers"  # the one consumer group every worker joins
JOB_ID_LENGTH = 32  # uuid4 hex, the fixed-width head of a delayed-set member
STREAM_MAXLEN = 1_000_000  # approximate cap on a stream (acknowledged entries linger)


class Keys:
    """The key names under one prefix (tests use a prefix of their own)."""

    def __init__(self, prefix: str = "megacity:jobs") -> None:
        if not prefix or any(c in prefix for c in "{} \n"):
            raise ValueError(f"invalid Redis key prefix {prefix!r}")
        self.prefix = prefix
        self._base = "{" + prefix + "}"
        self.delayed = f"{self._base}:delayed"
        self.dead = f"{self._base}:dead"

    def stream(self, priority: Priority, kind: str) -> str:
        return f"{self._base}:stream:{priority.label}:{kind}"

    def streams(self, priority: Priority, kinds: list[str]) -> list[str]:
        return [self.stream(priority, kind) for kind in kinds]

    def pattern(self) -> str:
        """A SCAN pattern matching every key under this prefix (for clean-up)."""
        return self._base.replace("[", "\\[").replace("]", "\\]") + ":*"


# KEYS[1] stream, KEYS[2] delayed set; ARGV[1] entry id, ARGV[2] due (ms), ARGV[3] member,
# ARGV[4] group
RETRY_LATER = """
redis.call('XACK', KEYS[1], ARGV[4], ARGV[1])
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[3])
return 1
"""

# KEYS[1] stream; ARGV[1] entry id, ARGV[2] job id, ARGV[3] group, ARGV[4] maxlen
REQUEUE = """
redis.call('XACK', KEYS[1], ARGV[3], ARGV[1])
redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[4], '*', 'job', ARGV[2])
return 1
"""

# KEYS[1] stream, KEYS[2] dead stream; ARGV[1] entry id, ARGV[2] group, ARGV[3] maxlen,
# ARGV[4..] the dead-letter entry's field/value pairs
DEAD_LETTER = """
redis.call('XACK', KEYS[1], ARGV[2], ARGV[1])
local entry = {}
for i = 4, #ARGV do entry[#entry + 1] = ARGV[i] end
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], '*', unpack(entry))
return 1
"""

# KEYS[1] delayed set; ARGV[1] now (ms), ARGV[2] batch size, ARGV[3] id length, ARGV[4] maxlen
# Moves due jobs into their streams (same hash tag, so the same slot); returns how many.
MOVE_DUE = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])
local n = tonumber(ARGV[3])
for _, member in ipairs(due) do
  redis.call('ZREM', KEYS[1], member)
  redis.call('XADD', string.sub(member, n + 1), 'MAXLEN', '~', ARGV[4], '*',
             'job', string.sub(member, 1, n))
end
return #due
"""
