"""Many router replicas and workers on one machine, behind nginx: the scale-out set-up.

`ReplicaSet` runs N `megacity serve` processes and M `megacity worker` processes that
share one PostgreSQL database, one Redis (under a key prefix of their own), one object
store folder, one auth keys folder and one user-hash key, with Debian's nginx in front
rendered from examples/nginx.conf (its own prefix, config and logs in a temporary
folder). The tests of tests/scale and the soak (bench/soak.py) use it; it is also a
recipe: what replicas must share, and what nginx must do.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from megacity.jobs.keys import Keys
from megacity.jobs.testing import WorkerProcess, wait_for_workers
from megacity.testing import RouterProcess, end_process, free_port

NGINX_TEMPLATE = Path(__file__).resolve().parents[1] / "examples" / "nginx.conf"
START_S = 120.0  # a process start on a loaded machine
_UPSTREAM_SERVER = re.compile(r"^\s*server 127\.0\.0\.1:\d+ (.*);$", re.MULTILINE)


def find_nginx() -> str | None:
    """The nginx binary (Debian: /usr/sbin/nginx), or None."""
    return shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if os.access(p, os.X_OK)), None
    )


def render_nginx(template: str, listen_port: int, routers: list[int], prefix: Path) -> str:
    """examples/nginx.conf with these routers, this port, and files under `prefix`."""
    options = _UPSTREAM_SERVER.search(template)
    if options is None:
        raise ValueError("the nginx template has no `server 127.0.0.1:PORT ...;` upstream line")
    servers = "\n".join(f"        server 127.0.0.1:{p} {options[1]};" for p in routers)
    text = re.sub(_UPSTREAM_SERVER.pattern + r"\n", "", template, flags=re.MULTILINE)
    text = text.replace("upstream megacity_routers {", "upstream megacity_routers {\n" + servers, 1)
    text = re.sub(r"listen \d+;", f"listen 127.0.0.1:{listen_port};", text, count=1)
    files = "\n".join(
        f"    {name}_temp_path {prefix / name};"
        for name in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    text = text.replace("http {", f"http {{\n    access_log {prefix / 'access.log'};\n{files}", 1)
    return f"pid {prefix / 'nginx.pid'};\nerror_log {prefix / 'error.log'} info;\n" + text


def scale_topology(llm: dict[str, str], region: str = "seoul") -> dict[str, Any]:
    """The set-up's topology: `llm` nodes (name → URL, stand-ins in tests) serving `chat-7b`
    (versions v1 active, v2), speech in jobs through an in-process espeak-ng TTS node, and
    an in-process image node whose model is not installed (its jobs wait or fail)."""
    nodes: list[dict[str, Any]] = [
        {"name": name, "engine": "llm", "url": url, "models": ["chat-7b"], "region": region}
        for name, url in llm.items()
    ]
    nodes += [
        {
            "name": "tts-local",
            "engine": "tts",
            "url": "local",
            "models": ["voice"],
            "region": region,
            "max_concurrency": 4,
            "options": {"model": "espeak-ng", "voice": "ko"},
        },
        {
            "name": "image-local",
            "engine": "image",
            "url": "local",
            "models": ["thumb"],
            "region": region,
            "max_concurrency": 1,
            "options": {"model": "/nonexistent/image-model"},
        },
    ]
    versions = [
        {"version": "v1", "served_as": "chat-7b-v1", "active": True},
        {"version": "v2", "served_as": "chat-7b-v2"},
    ]
    return {
        "regions": [{"name": region}],
        "default_zone": "school",
        "nodes": nodes,
        "models": [
            {"name": "chat-7b", "tier": "7b", "versions": versions},
            {"name": "voice", "engine": "tts", "aliases": ["tts-1"]},
            {"name": "thumb", "engine": "image", "aliases": ["thumbnail"]},
        ],
        "zones": {
            "school": {
                "engines": {"llm": "chat-7b", "tts": "voice", "image": "thumb"},
                "default_locale": "ko",
                "tiers": {"models": {"7b": "chat-7b"}, "max": "7b"},
            }
        },
    }


class NginxProcess:
    """nginx in the foreground with a config and prefix of its own (stop: SIGTERM)."""

    def __init__(self, routers: list[int], port: int | None = None) -> None:
        binary = find_nginx()
        if binary is None:
            raise FileNotFoundError("nginx is not installed (apt-get install nginx)")
        self.binary = binary
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        # Not under a 0700 folder: nginx's workers run as another user and write temp files.
        self.prefix = Path(tempfile.mkdtemp(prefix="megacity-nginx-", dir="/tmp"))
        self.prefix.chmod(0o755)
        for name in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
            (self.prefix / name).mkdir(mode=0o777)
            (self.prefix / name).chmod(0o777)
        self.conf = self.prefix / "nginx.conf"
        template = NGINX_TEMPLATE.read_text(encoding="utf-8")
        self.conf.write_text(render_nginx(template, self.port, routers, self.prefix))
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout_s: float = START_S) -> NginxProcess:
        args = [self.binary, "-p", str(self.prefix), "-c", str(self.conf), "-e", "stderr"]
        with open(self.prefix / "stderr.log", "wb") as out:
            self.proc = subprocess.Popen(
                [*args, "-g", "daemon off;"], stdout=out, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + timeout_s
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"nginx exited with {self.proc.returncode}: {self.output()}")
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), timeout=1),
            ):
                return self
            if time.monotonic() > deadline:
                raise TimeoutError(f"nginx not listening after {timeout_s} s: {self.output()}")
            time.sleep(0.05)

    def output(self) -> str:
        parts = []
        for name in ("stderr.log", "error.log"):
            path = self.prefix / name
            if path.exists():
                parts.append(path.read_text(errors="replace")[-4000:])
        return "\n".join(parts)

    def stop(self) -> None:
        if self.proc is not None:
            end_process(self.proc, timeout_s=15)
        shutil.rmtree(self.prefix, ignore_errors=True)


class ReplicaSet:
    """`routers` router replicas and `workers` workers sharing state, behind nginx.

    `env` is every process's environment on top of what they must share (made here):
    DATABASE_URL and REDIS_URL must be in it. Routers keep their port across restarts,
    so nginx's upstream list stays right.
    """

    def __init__(
        self,
        root: Path,
        topology: dict[str, Any],
        env: dict[str, str],
        *,
        routers: int = 3,
        workers: int = 2,
        worker_args: tuple[str, ...] = (),
    ) -> None:
        if "DATABASE_URL" not in env or "REDIS_URL" not in env:
            raise ValueError("replicas share PostgreSQL and Redis: set DATABASE_URL and REDIS_URL")
        self.root = Path(root)
        self.config = self.root / "topology.yaml"
        self.config.write_text(yaml.safe_dump(topology, allow_unicode=True), encoding="utf-8")
        self.keys = Keys(
            env.get("MEGACITY_JOBS_KEY_PREFIX") or f"megacity:set:{secrets.token_hex(4)}"
        )
        self.ports = [free_port() for _ in range(routers)]
        self.nginx = NginxProcess(self.ports)
        shared = {
            "MEGACITY_JOBS_KEY_PREFIX": self.keys.prefix,
            "MEGACITY_STORAGE_DIR": str(self.root / "objects"),
            "MEGACITY_URL_SIGNING_KEY": secrets.token_hex(32),
            "MEGACITY_USER_HASH_KEY": secrets.token_hex(32),
            "MEGACITY_AUTH_KEYS_DIR": str(self.root / "keys"),
            "MEGACITY_PUBLIC_URL": self.nginx.url,
        }
        self.env = {**shared, **env}
        self.routers = [
            RouterProcess(
                str(self.config),
                port,
                {**self.env, "MEGACITY_DATA_DIR": str(self.root / f"router-{i}")},
            )
            for i, port in enumerate(self.ports)
        ]
        self.worker_args = ("--config", str(self.config), *worker_args)
        self.workers: list[WorkerProcess] = []
        self._worker_count = workers

    @property
    def url(self) -> str:
        """nginx: where clients go."""
        return self.nginx.url

    def start(self) -> ReplicaSet:
        """Routers (the first one migrates the database), workers, nginx; all ready."""
        try:
            self.routers[0].start(timeout_s=START_S)
            for router in self.routers[1:]:
                router.start(timeout_s=START_S)
            self.workers = [self._worker(i) for i in range(self._worker_count)]
            if self.workers:
                wait_for_workers(self.env["REDIS_URL"], self.keys, len(self.workers), START_S)
            self.nginx.start()
        except BaseException:
            self.stop()
            raise
        return self

    def kill_router(self, index: int) -> None:
        """SIGKILL one replica, as a crashed pod dies."""
        self.routers[index].kill()

    def restart_router(self, index: int) -> None:
        """Start a killed or stopped replica again, on the same port."""
        self.routers[index].stop()
        self.routers[index].start(timeout_s=START_S)

    def kill_worker(self, index: int) -> None:
        """SIGKILL one worker: its jobs are taken over once their lease runs out."""
        self.workers[index].kill()

    def restart_worker(self, index: int) -> None:
        """A new worker process in place of one that was killed or stopped."""
        self.workers[index].close()
        self.workers[index] = self._worker(index)

    def _worker(self, index: int) -> WorkerProcess:
        env = {**self.env, "MEGACITY_DATA_DIR": str(self.root / f"worker-{index}")}
        return WorkerProcess(list(self.worker_args), env)

    def healthy(self) -> list[bool]:
        """Each replica's /healthz, asked directly."""
        return [_answers(f"{r.url}/healthz") for r in self.routers]

    def stop(self) -> None:
        """Everything down, whatever state it is in (nginx first: no new requests)."""
        with contextlib.suppress(Exception):
            self.nginx.stop()
        for worker in self.workers:
            with contextlib.suppress(Exception):
                worker.close()
        for router in self.routers:
            with contextlib.suppress(Exception):
                router.stop()


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return bool(resp.status == 200)
    except (urllib.error.URLError, OSError):
        return False


@contextlib.contextmanager
def throwaway_database(admin_url: str) -> Iterator[str]:
    """A new, empty PostgreSQL database next to `admin_url`'s, dropped afterwards; its URL."""
    import psycopg
    from psycopg import sql

    name = f"megacity_test_{os.getpid()}_{secrets.token_hex(4)}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield admin_url.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            drop = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
            conn.execute(drop.format(sql.Identifier(name)))
