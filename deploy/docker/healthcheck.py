"""The images' HEALTHCHECK: ask the `megacity` process (PID 1) on the port it listens on.

The router answers /healthz (alive); an engine node answers /health, which is 503 while its
model loads or when it cannot load, so a container turns healthy once it can serve. The
port and the command come from PID 1's own arguments, so `docker run IMAGE pose --port
9000` is checked on 9000 without another setting. Kubernetes ignores HEALTHCHECK: the Helm
chart declares its own probes.
"""

from __future__ import annotations

import os
import sys
import urllib.request
from collections.abc import Mapping, Sequence

DEFAULT_PORTS = {"serve": 8000, "speech": 8101, "pose": 8102, "image": 8103, "tts": 8104}


def health_url(argv: Sequence[str], env: Mapping[str, str]) -> str:
    """The URL to probe for a process started with `argv` (`megacity serve …`, `… engine pose`)."""
    command = next((a for a in argv if a in DEFAULT_PORTS), "serve")
    port = str(DEFAULT_PORTS[command])
    if command == "serve":
        port = env.get("MEGACITY_PORT", port)
    for i, arg in enumerate(argv):
        if arg == "--port" and i + 1 < len(argv):
            port = argv[i + 1]
        elif arg.startswith("--port="):
            port = arg.partition("=")[2]
    path = "/healthz" if command == "serve" else "/health"
    return f"http://127.0.0.1:{int(port)}{path}"


def main() -> int:
    with open("/proc/1/cmdline", "rb") as f:
        argv = [a.decode() for a in f.read().split(b"\0") if a]
    try:
        with urllib.request.urlopen(health_url(argv, os.environ), timeout=2) as response:
            return 0 if response.status == 200 else 1
    except (OSError, ValueError) as exc:
        print(f"unhealthy: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
