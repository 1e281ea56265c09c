"""Every Redis key and Lua script of the job queue, in one place.

All keys share the hash tag ``{prefix}``, so a Redis Cluster keeps them in one slot and
the scripts below may touch several of them atomically.

* ``{prefix}:<region>:stream:<priority>:<kind>`` — one stream per region, priority and
  kind (``jobs:{region}:…``); an entry is ``{"job": <id>}``, the row in the database says
  the rest. A region's workers read its streams; other regions' workers read them too
  while no worker of that region serves the kind (see ``workers`` below).
* ``{prefix}:delayed`` — sorted set of jobs waiting out a backoff (score: due time in
  ms); member = job id (32 hex characters) followed by its stream key.
* ``{prefix}:dead`` — the dead-letter stream: ``{"job", "kind", "code", "message"}``.
* ``{prefix}:live`` — sorted set of the jobs that have a message, in a stream or the
  delayed set (score: when it was published, ms). Publishing adds the job in the same
  script as its XADD, and only the acknowledgements that end a job (done, dead-lettered)
  remove it, so a job the table says is waiting but that is not here has lost its
  message (the XADD after the commit failed): the reconciler publishes it again.
* ``{prefix}:lock:<name>`` — "someone did <name> recently" (SET NX PX): periodic chores
  run on one worker per interval.
* ``{prefix}:queues`` — set of ``"<region> <kind>"``: every region and kind a job was ever
  published to (the publish script adds it).
* ``{prefix}:workers`` — sorted set of ``"<region> <kind>"``: when a worker of that region
  serving that kind last said it is alive (score: ms). A queue whose entry is stale has
  no worker: the other regions' workers adopt it.
* ``{prefix}:consumers`` — sorted set of ``"<region> <consumer>"``: each worker's last
  beat (score: ms), for operators and tests ("which workers are alive, where").
"""

from __future__ import annotations

from megacity.db.jobs import Priority

GROUP = "workers"  # the one consumer group every worker joins
DEFAULT_REGION = "default"  # the region of a queue that names none (no topology)
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
        self.live = f"{self._base}:live"
        self.queues = f"{self._base}:queues"
        self.workers = f"{self._base}:workers"
        self.consumers = f"{self._base}:consumers"

    def stream(self, priority: Priority, kind: str, region: str = DEFAULT_REGION) -> str:
        return f"{self._base}:{region}:stream:{priority.label}:{kind}"

    def streams(
        self, priority: Priority, kinds: list[str], region: str = DEFAULT_REGION
    ) -> list[str]:
        return [self.stream(priority, kind, region) for kind in kinds]

    def lock(self, name: str) -> str:
        return f"{self._base}:lock:{name}"

    def pattern(self) -> str:
        """A SCAN pattern matching every key under this prefix (for clean-up)."""
        return self._base.replace("[", "\\[").replace("]", "\\]") + ":*"


# KEYS[1] live set, KEYS[2] queues set, KEYS[3..] streams; ARGV[1] now (ms), ARGV[2]
# maxlen, then for each stream its job id and its "<region> <kind>". Publishes each job,
# marks it live and notes its queue, atomically, in one round trip.
PUBLISH = """
local n = #KEYS - 2
for i = 1, n do
  redis.call('XADD', KEYS[i + 2], 'MAXLEN', '~', ARGV[2], '*', 'job', ARGV[i + 2])
  redis.call('ZADD', KEYS[1], ARGV[1], ARGV[i + 2])
  redis.call('SADD', KEYS[2], ARGV[n + i + 2])
end
return n
"""

# KEYS[1] stream, KEYS[2] live set; ARGV[1] group, ARGV[2] job id, ARGV[3..] entry ids
# The job is finished (or gone): acknowledge its messages, and it is live no more.
FINISH = """
redis.call('XACK', KEYS[1], ARGV[1], unpack(ARGV, 3))
redis.call('ZREM', KEYS[2], ARGV[2])
return 1
"""

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

# KEYS[1] stream, KEYS[2] dead stream, KEYS[3] live set; ARGV[1] entry id, ARGV[2] group,
# ARGV[3] maxlen, ARGV[4..] the dead-letter entry's field/value pairs (the job id second)
DEAD_LETTER = """
redis.call('XACK', KEYS[1], ARGV[2], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[5])
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


def queue_name(region: str, kind: str) -> str:
    """A member of the queues and workers sets (names hold no space: topology rules)."""
    return f"{region} {kind}"
