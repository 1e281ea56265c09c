"""`megacity db upgrade`: upgrades, says what it did, and fails with exit code 1 and a reason."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from megacity.testing import free_port


def _db_upgrade(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MEGACITY_")}
    clean.pop("DATABASE_URL", None)
    return subprocess.run(
        [sys.executable, "-m", "megacity", "db", "upgrade", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**clean, **(env or {})},
    )


def test_upgrade_the_default_sqlite_then_again(tmp_path: Path) -> None:
    env = {"MEGACITY_DATA_DIR": str(tmp_path / "var")}
    first = _db_upgrade(env=env)
    assert first.returncode == 0, first.stderr
    assert "upgraded from an empty database to 0006_scale" in first.stdout
    assert str(tmp_path / "var" / "megacity.db") in first.stdout
    second = _db_upgrade(env=env)
    assert second.returncode == 0, second.stderr
    assert "already at 0006_scale" in second.stdout


def test_upgrade_postgresql_from_a_plain_database_url(pg_url: str) -> None:
    result = _db_upgrade(env={"DATABASE_URL": pg_url})
    assert result.returncode == 0, result.stderr
    assert "postgresql+psycopg://" in result.stdout and "to 0006_scale" in result.stdout


def test_failures_exit_1_with_the_reason_and_no_password() -> None:
    port = free_port()  # nothing listens there
    down = _db_upgrade("--database-url", f"postgresql://u:hunter2@127.0.0.1:{port}/x")
    assert down.returncode == 1
    assert "cannot upgrade" in down.stderr and "refused" in down.stderr.lower()
    assert "hunter2" not in down.stderr + down.stdout
    assert "Traceback" not in down.stderr
    unsupported = _db_upgrade("--database-url", "mysql://u@h/db")
    assert unsupported.returncode == 1
    assert "unsupported database 'mysql'" in unsupported.stderr
