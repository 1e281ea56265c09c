"""A PostgreSQL primary and its streaming replica on loopback, as this test's own processes.

The primary is `initdb`'s, not the shared 127.0.0.1:5432 server: that one's pg_hba.conf
admits no replication connection, and a test must not rewrite a system's configuration.
The replica is a `pg_basebackup -R` of it in a second data directory on another port,
streaming from it. PostgreSQL refuses to run as root, so as root both run as the
`postgres` account. The binaries are found under /usr/lib/postgresql/*/bin.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import psycopg

from megacity.testing import end_process, free_port, unavailable

START_S = 60.0  # a server start on a loaded machine


def _bin_dir() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_basebackup"), key=_version)
    return Path(found[-1]).parent if found else None


def _version(path: str) -> float:
    try:
        return float(Path(path).parts[4])
    except (IndexError, ValueError):
        return 0.0


def bin_dir_or_skip() -> Path:
    """The PostgreSQL binaries; the test fails under CI=true when they are missing."""
    found = _bin_dir()
    if found is None:
        unavailable("PostgreSQL server binaries not found under /usr/lib/postgresql/*/bin")
    return found


class PgServer:
    """One `postgres` process on 127.0.0.1:`port` serving `data`."""

    def __init__(self, bin_dir: Path, data: Path, port: int, user: str | None, log: Path):
        self.bin_dir, self.data, self.port, self.user, self.log = bin_dir, data, port, user, log
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def start(self, *settings: str) -> PgServer:
        args = [str(self.bin_dir / "postgres"), "-D", str(self.data), "-p", str(self.port)]
        args += ["-c", "listen_addresses=127.0.0.1", "-c", f"unix_socket_directories={self.data}"]
        for setting in settings:
            args += ["-c", setting]
        deadline = time.monotonic() + START_S
        self.proc = self._spawn(args)
        while True:
            if self.proc.poll() is not None:
                # After a kill, a child of the old postmaster may still hold its shared
                # memory for a moment: PostgreSQL refuses to start until it has gone.
                busy = "pre-existing shared memory block" in self.output()[-600:]
                if not busy or time.monotonic() > deadline:
                    raise RuntimeError(f"postgres exited: {self.output()[-2000:]}")
                time.sleep(0.2)
                self.proc = self._spawn(args)
                continue
            try:
                with psycopg.connect(self.url, connect_timeout=2):
                    return self
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"postgres not ready: {self.output()[-2000:]}") from None
                time.sleep(0.1)

    def _spawn(self, args: list[str]) -> subprocess.Popen[bytes]:
        with open(self.log, "ab") as out:
            # Its own process group: kill() takes the postmaster and its children at once.
            return subprocess.Popen(
                args,
                stdout=out,
                stderr=subprocess.STDOUT,
                user=self.user,
                cwd=self.data.parent,
                start_new_session=True,
            )

    def sql(self, statement: str) -> Any:
        with psycopg.connect(self.url, autocommit=True, connect_timeout=5) as conn:
            cursor = conn.execute(statement)
            row = cursor.fetchone() if cursor.description else None
        return row[0] if row else None

    def kill(self) -> None:
        """SIGKILL to the postmaster and its children, as a crashed machine would go."""
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)

    def stop(self) -> None:
        """Fast shutdown (SIGINT), then SIGKILL after 30 s."""
        if self.proc is not None:
            end_process(self.proc, signal.SIGINT, timeout_s=30)

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


class PgPair:
    """A primary and its streaming replica, in a temporary folder removed by `close()`."""

    def __init__(self) -> None:
        self.bin_dir = bin_dir_or_skip()
        self.root = Path(tempfile.mkdtemp(prefix="megacity-pg-", dir="/tmp"))
        self.user: str | None = None
        if os.geteuid() == 0:  # postgres will not run as root
            self.user = "postgres"
            account = pwd.getpwnam(self.user)
            os.chown(self.root, account.pw_uid, account.pw_gid)
        primary_dir, replica_dir = self.root / "primary", self.root / "replica"
        self.primary = PgServer(
            self.bin_dir, primary_dir, free_port(), self.user, self.root / "p.log"
        )
        self.replica = PgServer(
            self.bin_dir, replica_dir, free_port(), self.user, self.root / "r.log"
        )

    def start(self) -> PgPair:
        try:
            self._run(
                "initdb",
                *("-D", str(self.primary.data), "-U", "postgres", "-A", "trust"),
                *("--no-sync", "-E", "UTF8", "--locale=C"),
            )
            self.primary.start(
                "wal_level=replica", "max_wal_senders=4", "fsync=off", "max_connections=60"
            )
            self._run(
                "pg_basebackup",
                *("-h", "127.0.0.1", "-p", str(self.primary.port), "-U", "postgres"),
                *("-D", str(self.replica.data), "-R", "-X", "stream", "-c", "fast", "--no-sync"),
            )
            self.replica.start("hot_standby=on", "fsync=off", "max_connections=60")
        except BaseException:
            self.close()
            raise
        return self

    def _run(self, tool: str, *args: str) -> None:
        done = subprocess.run(
            [str(self.bin_dir / tool), *args],
            capture_output=True,
            user=self.user,
            cwd=self.root,
            timeout=START_S,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"{tool} failed: {done.stderr.decode()[-2000:]}")

    def wait_replayed(self, timeout_s: float = 60.0) -> None:
        """Until the replica has replayed everything the primary wrote so far."""
        target = self.primary.sql("SELECT pg_current_wal_lsn()::text")
        deadline = time.monotonic() + timeout_s
        while True:
            done = self.replica.sql(f"SELECT pg_last_wal_replay_lsn() >= '{target}'::pg_lsn")
            if done:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"the replica did not replay up to {target}")
            time.sleep(0.05)

    def close(self) -> None:
        for server in (self.replica, self.primary):
            with contextlib.suppress(Exception):
                server.stop()
        shutil.rmtree(self.root, ignore_errors=True)
