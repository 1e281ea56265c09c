"""Soak: mixed traffic on three router replicas and two workers behind nginx, for minutes,
while LLM nodes, one replica and a worker are killed and restarted on a schedule (make soak).

The set-up is megacity/replicas.py's: PostgreSQL (a throwaway database), Redis (a key
prefix of its own), Debian's nginx rendered from examples/nginx.conf, auth and limits
on. LLM nodes are stand-in vLLM servers (two: one is always up); TTS jobs run on the
workers' in-process espeak-ng engine. Clients are a school's LMS: one service API key
acting for many named learners. Traffic: LLM chat (plain and streamed), pronunciation
scores (no audio), dance keypoint analyses, and TTS jobs submitted with an
Idempotency-Key (a failed submission is retried with the same key) and polled to the end.

Printed: requests and failures by cause, p95 per engine per minute, every router's RSS
per minute, and jobs submitted / succeeded / failed / lost / duplicated — against the
goals: 0 lost or duplicated jobs, 0 failed requests while a healthy node existed (one of
each kind always is), router RSS growth under 10 % after the first minute. Exit code 1
when a goal is missed. Not in `make test`: `make soak SOAK_MINUTES=10`.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import json
import math
import os
import random
import secrets
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the project, run as a script

from common import pct, table

from megacity.auth import create_api_key
from megacity.db import Database
from megacity.db.jobs import Priority
from megacity.jobs.testing import REDIS_URL, wipe
from megacity.replicas import (
    ReplicaSet,
    find_nginx,
    scale_topology,
    throwaway_database,
)
from megacity.testing import AuthKit, StandinProcess

ADMIN_URL = os.environ.get(
    "MEGACITY_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
ENGINES = ("llm", "speech-score", "dance", "job")
RSS_GOAL = 0.10
DRAIN_S = 180.0  # after the traffic: how long the last jobs may take to finish


@dataclass
class Sample:
    engine: str
    minute: int
    ms: float
    failure: str | None  # None: answered as expected


@dataclass
class Record:
    """What the clients, the poller and the schedule saw (guarded by `lock`)."""

    started: float = field(default_factory=time.monotonic)
    lock: threading.Lock = field(default_factory=threading.Lock)
    samples: list[Sample] = field(default_factory=list)
    jobs: dict[str, tuple[str, float]] = field(default_factory=dict)  # id → (learner, sent at)
    keys: dict[str, set[str]] = field(default_factory=lambda: collections.defaultdict(set))
    finished: dict[str, tuple[str, float]] = field(default_factory=dict)  # id → (status, s)
    events: list[str] = field(default_factory=list)
    rss: dict[int, list[float]] = field(default_factory=lambda: collections.defaultdict(list))
    restarted: set[int] = field(default_factory=set)  # router replicas killed at some point

    def minute(self) -> int:
        return int((time.monotonic() - self.started) // 60)

    def note(self, engine: str, ms: float, failure: str | None) -> None:
        with self.lock:
            self.samples.append(Sample(engine, self.minute(), ms, failure))

    def event(self, text: str) -> None:
        at = time.monotonic() - self.started
        with self.lock:
            self.events.append(f"{int(at // 60):02d}:{int(at % 60):02d} {text}")


# --- traffic ---------------------------------------------------------------------------


def _dancer(seconds: float, fps: float, phase: float) -> list[list[list[float]]]:
    """33 MediaPipe landmarks of a figure waving its arms, image-normalised."""
    frames = []
    base = np.array([[0.5, 0.15 + 0.025 * (i % 11), 0.0, 0.99] for i in range(33)])
    for t in np.arange(0, seconds, 1 / fps):
        pose = base.copy()
        swing = 0.12 * math.sin(2 * math.pi * 0.8 * t + phase)
        for wrist, elbow, side in ((15, 13, -1), (16, 14, 1)):
            pose[elbow, :2] = [0.5 + side * 0.12, 0.35 + swing / 2]
            pose[wrist, :2] = [0.5 + side * 0.2, 0.3 + swing]
        frames.append(pose.round(4).tolist())
    return frames


REFERENCE = {"fps": 15, "keypoints": _dancer(2.0, 15, 0.0)}


def _one(http: httpx.Client, engine: str, headers: dict[str, str], n: int) -> str | None:
    """One request of `engine`; None when it was answered as expected, else the cause."""
    if engine == "llm":
        body: dict[str, Any] = {
            "model": "chat-7b",
            "max_tokens": 16,
            "stream": n % 2 == 0,
            "messages": [{"role": "user", "content": f"설명해 주세요 {n}"}],
        }
        resp = http.post("/v1/chat/completions", json=body, headers=headers)
        if resp.status_code == 200 and body["stream"] and "upstream_error" in resp.text:
            return "stream cut"
        return _cause(resp)
    if engine == "speech-score":
        body = {
            "reference_text": "안녕하세요 반갑습니다",
            "language": "ko",
            "transcript": "안녕하세요 반갑",
        }
        return _cause(http.post("/api/v1/kzone/voice/score", json=body, headers=headers))
    body = {
        "attempt": {"fps": 15, "keypoints": _dancer(2.0, 15, n % 7 / 7)},
        "reference": REFERENCE,
    }
    return _cause(http.post("/api/v1/kzone/dance/analyze-keypoints", json=body, headers=headers))


def _cause(resp: httpx.Response) -> str | None:
    if resp.status_code == 200:
        return None
    try:
        code = resp.json()["error"]["code"]
    except (ValueError, KeyError, TypeError):
        code = resp.text[:40]
    return f"HTTP {resp.status_code} {code}"


def _submit(http: httpx.Client, record: Record, headers: dict[str, str], n: int) -> str | None:
    """A TTS job with an Idempotency-Key, retried with the same key when the answer is lost."""
    key = f"soak-{secrets.token_hex(8)}"
    body = {"text": f"오늘의 문장 {n}번을 따라 읽어 보세요.", "voice": "ko"}
    failure = None
    for _ in range(3):
        try:
            resp = http.post(
                "/api/v1/kzone/tts", json=body, headers={**headers, "Idempotency-Key": key}
            )
        except httpx.HTTPError as exc:
            failure = f"{type(exc).__name__}"
            continue
        if resp.status_code == 202:
            job = resp.json()["id"]
            with record.lock:
                record.keys[key].add(job)
                record.jobs.setdefault(job, (headers["X-User-Id"], time.monotonic()))
            return failure
        failure = _cause(resp)
    return failure or "no answer"


def client(base: str, api_key: str, record: Record, stop: threading.Event, rate: float, n: int):  # type: ignore[no-untyped-def]
    """One LMS connection: learners take turns, one request every 1/`rate` s."""
    rng = random.Random(n)
    learners = [f"learner-{n}-{i}" for i in range(40)]
    weights = (0.5, 0.2, 0.12, 0.18)
    with httpx.Client(base_url=base, timeout=60) as http:
        count = 0
        next_at = time.monotonic()
        while not stop.is_set():
            engine = rng.choices(ENGINES, weights)[0]
            headers = {"X-API-Key": api_key, "X-User-Id": learners[count % len(learners)]}
            started = time.perf_counter()
            try:
                if engine == "job":
                    failure = _submit(http, record, headers, count)
                else:
                    failure = _one(http, engine, headers, count)
            except httpx.HTTPError as exc:
                failure = type(exc).__name__
            record.note(engine, (time.perf_counter() - started) * 1000, failure)
            count += 1
            next_at += rng.expovariate(rate)
            stop.wait(max(0.0, next_at - time.monotonic()))


def poller(base: str, api_key: str, record: Record, stop: threading.Event) -> None:
    """Polls the open jobs until each has finished; their end-to-end time."""
    with httpx.Client(base_url=base, timeout=30) as http:
        while not stop.is_set():
            with record.lock:
                open_jobs = [(j, v) for j, v in record.jobs.items() if j not in record.finished]
            for job, (learner, sent) in open_jobs:
                headers = {"X-API-Key": api_key, "X-User-Id": learner}
                with contextlib.suppress(httpx.HTTPError, ValueError, KeyError):
                    status = http.get(f"/api/v1/jobs/{job}", headers=headers).json()["status"]
                    if status in ("succeeded", "failed", "cancelled"):
                        with record.lock:
                            record.finished[job] = (status, time.monotonic() - sent)
            stop.wait(1.0)  # each learner's polls stay within their request budget


# --- the schedule and the RSS ------------------------------------------------------------


def schedule(replicas: ReplicaSet, llm: dict[str, StandinProcess], record: Record,
             stop: threading.Event, period_s: float) -> None:  # fmt: skip
    """Every `period_s`: kill one thing (never two of a kind), restart it a third later."""

    def again(node: StandinProcess) -> None:
        node.stop()  # its log goes; the same port again
        node.start()

    def kill_router() -> None:
        record.restarted.add(1)
        replicas.kill_router(1)

    actions = [
        ("LLM node llm-a", llm["llm-a"].kill, lambda: again(llm["llm-a"])),
        ("router replica 2", kill_router, lambda: replicas.restart_router(1)),
        ("LLM node llm-b", llm["llm-b"].kill, lambda: again(llm["llm-b"])),
        ("worker 1", lambda: replicas.kill_worker(0), lambda: replicas.restart_worker(0)),
    ]
    turn = 0
    while not stop.wait(period_s):
        name, kill, restart = actions[turn % len(actions)]
        turn += 1
        record.event(f"SIGKILL {name}")
        kill()
        if stop.wait(period_s / 3):
            restart()
            return
        restart()
        record.event(f"restarted {name}")


def sample_rss(replicas: ReplicaSet, record: Record, stop: threading.Event) -> None:
    """Each router's RSS (MiB), sampled every 5 s; the per-minute figure is the last sample."""
    while not stop.wait(5.0):
        for index, router in enumerate(replicas.routers):
            if router.proc is None or router.proc.poll() is not None:
                continue
            with contextlib.suppress(OSError, ValueError):
                status = Path(f"/proc/{router.proc.pid}/status").read_text()
                kib = next(
                    int(line.split()[1])
                    for line in status.splitlines()
                    if line.startswith("VmRSS:")
                )
                with record.lock:
                    minute_list = record.rss[index]
                    while len(minute_list) <= record.minute():
                        minute_list.append(math.nan)
                    minute_list[record.minute()] = kib / 1024


# --- the report ------------------------------------------------------------------------------


def report(record: Record, minutes: int, db_url: str, queue_state: Callable[[str], str]) -> bool:
    """Print the figures and the goals; True when every goal is met."""
    samples = record.samples
    table(
        "requests by engine",
        ["engine", "requests", "ok", "failed", "p50 ms", "p95 ms"],
        [
            [
                e,
                str(len(mine := [s for s in samples if s.engine == e])),
                str(sum(s.failure is None for s in mine)),
                str(sum(s.failure is not None for s in mine)),
                f"{pct([s.ms for s in mine], 0.5):.0f}" if mine else "-",
                f"{pct([s.ms for s in mine], 0.95):.0f}" if mine else "-",
            ]
            for e in ENGINES
        ],
    )
    causes = collections.Counter(f"{s.engine}: {s.failure}" for s in samples if s.failure)
    if causes:
        table(
            "failures by cause", ["cause", "count"], [[c, str(n)] for c, n in causes.most_common()]
        )
    else:
        print("\nfailures by cause: none")
    rows = []
    for minute in range(minutes):
        row = [str(minute + 1)]
        for e in ENGINES:
            ms = [
                s.ms for s in samples if s.engine == e and s.minute == minute and s.failure is None
            ]
            row.append(f"{pct(ms, 0.95):.0f}" if ms else "-")
        for index in sorted(record.rss):
            values = record.rss[index]
            row.append(
                f"{values[minute]:.0f}"
                if minute < len(values) and not math.isnan(values[minute])
                else "-"
            )
        rows.append(row)
    rss_cols = [f"router {i + 1} RSS MiB" for i in sorted(record.rss)]
    table("p95 (ms) per engine per minute, and router RSS", ["minute", *ENGINES, *rss_cols], rows)
    print("\nschedule:", "; ".join(record.events) or "none")

    jobs = set(record.jobs)
    rows, stored_twice = _from_database(db_url, jobs)  # the table is the truth
    status = {job: rows.get(job, ("missing", 0))[0] for job in jobs}
    succeeded = sum(1 for s in status.values() if s == "succeeded")
    failed = sum(1 for s in status.values() if s in ("failed", "cancelled"))
    lost = len(jobs) - succeeded - failed
    retried = sum(1 for job in jobs if rows.get(job, ("", 0))[1] > 1)
    twice = sum(len(ids) - 1 for ids in record.keys.values() if len(ids) > 1) + stored_twice
    for job in sorted(j for j in jobs if status[j] not in ("succeeded", "failed", "cancelled")):
        print(
            f"  lost job {job}: {rows.get(job)} submitted at {record.jobs[job][1] - record.started:.0f} s"
        )
    finished = record.finished
    job_ms = [s * 1000 for status, s in finished.values() if status == "succeeded"]
    table(
        "jobs (tts, through the queue)",
        ["submitted", "succeeded", "failed", "lost", "duplicated", "run again", "p95 s"],
        [[str(len(jobs)), str(succeeded), str(failed), str(lost), str(twice), str(retried),
          f"{pct(job_ms, 0.95) / 1000:.1f}" if job_ms else "-"]],
    )  # fmt: skip
    failures = sum(s.failure is not None for s in samples)
    growth = _rss_growth(record)
    goals = [
        ("lost jobs", f"{lost}", lost == 0),
        ("duplicated jobs", f"{twice}", twice == 0),
        ("failed jobs", f"{failed}", failed == 0),
        ("failed requests while a healthy node existed", f"{failures}", failures == 0),
        (
            "router RSS growth after the first minute (goal < 10 %)",
            "-" if growth is None else f"{growth * 100:+.1f} %",
            growth is None or growth < RSS_GOAL,
        ),
    ]
    table(
        "goals", ["goal", "measured", "met"], [[g, m, "yes" if ok else "NO"] for g, m, ok in goals]
    )
    return all(ok for _, _, ok in goals)


def _rss_growth(record: Record) -> float | None:
    """The largest RSS growth of a router never restarted, from the end of the first
    minute to the end of the run (None: the run was too short to tell)."""
    growths = []
    for index, values in record.rss.items():
        known = [v for v in values if not math.isnan(v)]
        if index not in record.restarted and len(values) >= 2 and len(known) >= 2:
            growths.append(known[-1] / known[0] - 1)
    return max(growths) if growths else None


def _from_database(db_url: str, jobs: set[str]) -> tuple[dict[str, tuple[str, int]], int]:
    """Each job's (status, attempts), and how many jobs stored their audio under more
    than one key (a job run again writes the same key: not a duplicate)."""
    from sqlalchemy import text

    db = Database(db_url)
    try:
        with db.session() as session:
            keys = (
                session.execute(
                    text("SELECT key FROM stored_objects WHERE key LIKE 'kzone/generated/%'")
                )
                .scalars()
                .all()
            )
            found = session.execute(text("SELECT id, status, attempts FROM jobs")).all()
    finally:
        db.close()
    rows = {job: (status, attempts) for job, status, attempts in found}
    per_job = collections.Counter(k.rsplit("/", 1)[1].split(".")[0].split("-")[0] for k in keys)
    return rows, sum(n - 1 for job, n in per_job.items() if job in jobs and n > 1)


def _queue(replicas: ReplicaSet, job: str) -> str:
    """Where a job's message is in Redis (for a lost job's line)."""
    import redis

    client = redis.Redis.from_url(REDIS_URL, decode_responses=True)
    try:
        live = client.zscore(replicas.keys.live, job) is not None
        stream = replicas.keys.stream(Priority.LOW, "tts", "seoul")
        pending: Any = client.xpending(stream, "workers")
        entries = [e for _, e in client.xrange(stream) if e.get("job") == job]
        return f"live {live}, {len(entries)} stream entries, stream pending {pending['pending']}"
    finally:
        client.close()


# --- main --------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="traffic duration (default 10)")
    parser.add_argument("--clients", type=int, default=4, help="LMS connections (default 4)")
    parser.add_argument("--rate", type=float, default=3.0, help="requests/s per client (default 3)")
    args = parser.parse_args()
    if find_nginx() is None:
        print("soak: nginx is not installed (apt-get install nginx)", file=sys.stderr)
        return 2
    duration = args.minutes * 60
    record = Record()
    with contextlib.ExitStack() as stack:
        root = Path(tempfile.mkdtemp(prefix="megacity-soak-"))
        stack.callback(shutil.rmtree, root, ignore_errors=True)
        db_url = stack.enter_context(throwaway_database(ADMIN_URL))
        llm = {
            n: StandinProcess(n, None, "--latency-ms", "40", "--chunk-ms", "5")
            for n in ("llm-a", "llm-b")
        }
        for node in llm.values():
            stack.callback(node.stop)
            node.start()
        kit = AuthKit(root / "keys", "seoul")
        env = {
            **kit.env(reload_interval_s=10.0),
            "DATABASE_URL": db_url,
            "REDIS_URL": REDIS_URL,
            "MEGACITY_LOG_LEVEL": "WARNING",
            "MEGACITY_REQUEST_LOG": "false",
            "MEGACITY_HEALTH_INTERVAL_S": "0.5",
            "MEGACITY_JOBS_VISIBILITY_TIMEOUT_S": "15",
            "MEGACITY_RETENTION_SWEEP_INTERVAL_S": "0",
            "MEGACITY_LIMITS": json.dumps({"burst_requests": 1000}),
        }
        replicas = ReplicaSet(root, scale_topology({n: s.url for n, s in llm.items()}), env)
        stack.callback(wipe, REDIS_URL, replicas.keys)
        stack.callback(replicas.stop)
        print(
            f"soak: starting 3 router replicas, 2 workers, nginx ({os.cpu_count()} cores, shared)"
        )
        replicas.start()
        db = Database(db_url)
        api_key = create_api_key(db, "lms", ["ai:use"], None).key
        db.close()
        stop, drained = threading.Event(), threading.Event()
        record.started = time.monotonic()
        threads = [
            threading.Thread(
                target=client, args=(replicas.url, api_key, record, stop, args.rate, n)
            )
            for n in range(args.clients)
        ]
        threads.append(
            threading.Thread(target=poller, args=(replicas.url, api_key, record, drained))
        )
        period = max(15.0, duration / 8)
        threads.append(
            threading.Thread(target=schedule, args=(replicas, llm, record, stop, period))
        )
        threads.append(threading.Thread(target=sample_rss, args=(replicas, record, drained)))
        print(f"soak: {args.minutes:g} min of traffic, {args.clients} clients × {args.rate:g} req/s,"
              f" one kill every {period:.0f} s")  # fmt: skip
        for thread in threads:
            thread.start()
        stop.wait(duration)
        stop.set()
        deadline = time.monotonic() + DRAIN_S
        while time.monotonic() < deadline:
            with record.lock:
                if set(record.jobs) <= set(record.finished):
                    break
            time.sleep(0.5)
        drained.set()
        for thread in threads:
            thread.join(60)
        met = report(record, math.ceil(args.minutes), db_url, lambda job: _queue(replicas, job))
        return 0 if met else 1


if __name__ == "__main__":
    raise SystemExit(main())
