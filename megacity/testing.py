"""Test and demo helpers: a stand-in vLLM server that speaks /v1/*, /health and /metrics.

It is a real HTTP server (run it with `megacity standin --port 8201`), not a model: it
answers with a fixed text naming itself and the model it was asked for, so routing can
be seen and tested. Latency, failures and hangs are configurable at start and at run
time (POST /_standin/config), and it counts what it received (GET /_standin/stats).
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import orjson
from starlette.types import Message, Receive, Scope, Send

from megacity.simulation import SimulatedEngine, SimulationConfig

if TYPE_CHECKING:
    import numpy as np

FAIL_MODES = ("none", "500", "hang", "drop", "break_stream", "unhealthy")


@dataclass
class StandinConfig:
    """Behaviour of the stand-in; every field can be changed at run time."""

    name: str = "standin"
    latency_ms: float = 0.0  # before the response headers
    chunk_ms: float = 0.0  # between two streamed chunks
    chunks: int = 8  # streamed content chunks per answer
    waiting: float = 0.0  # reported as vllm:num_requests_waiting
    fail: str = "none"  # one of FAIL_MODES
    models: list[str] = field(default_factory=list)  # for /v1/models; empty → echo anything
    echo: bool = False  # answer with the last user message (streamed 3 characters a chunk)
    # Time answers with the simulated engine (megacity.simulation): prefix cache, prefill
    # and decode time, max_running slots. Its settings are changed through the same
    # /_standin/config (block_tokens, cache_blocks, prefill_ms_per_token, …).
    simulate: bool = False
    reply: str | None = None  # answer with this text (streamed 8 characters a chunk)


@dataclass
class StandinStats:
    requests: int = 0
    completed: int = 0
    cancelled: int = 0
    in_flight: int = 0
    models: dict[str, int] = field(default_factory=dict)
    last_body: dict[str, Any] | None = None


class StandinLLM:
    """A raw ASGI app (no framework) so that it is never the bottleneck of a benchmark."""

    def __init__(
        self, config: StandinConfig | None = None, simulation: SimulationConfig | None = None
    ) -> None:
        self.config = config or StandinConfig()
        self.stats = StandinStats()
        self.engine = SimulatedEngine(simulation)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        path, method = scope["path"], scope["method"]
        if path == "/health":
            ok = self.config.fail != "unhealthy"
            await _json(send, 200 if ok else 503, {"status": "ok" if ok else "down"})
        elif path == "/metrics":
            await _text(send, 200, self._metrics())
        elif path == "/v1/models":
            await _json(send, 200, self._models())
        elif path == "/_standin/stats":
            await _json(send, 200, asdict(self.stats))
        elif path == "/_standin/config" and method == "POST":
            await self._configure(receive, send)
        elif path in ("/v1/chat/completions", "/v1/completions") and method == "POST":
            await self._complete(path, receive, send)
        else:
            await _json(send, 404, {"error": {"message": "not found", "type": "not_found"}})

    async def _configure(self, receive: Receive, send: Send) -> None:
        update = orjson.loads(await _body(receive))
        for key, value in update.items():
            if hasattr(self.config, key):
                setattr(self.config, key, value)
        self.engine.reconfigure(**update)
        if update.get("reset_stats"):
            self.stats = StandinStats()
        if update.get("reset_cache"):
            self.engine.reset()
        await _json(send, 200, asdict(self.config))

    async def _complete(self, path: str, receive: Receive, send: Send) -> None:
        body = orjson.loads(await _body(receive))
        cfg, stats = self.config, self.stats
        stats.requests += 1
        stats.last_body = body
        model = str(body.get("model", ""))
        stats.models[model] = stats.models.get(model, 0) + 1
        stats.in_flight += 1
        try:
            if cfg.fail == "hang" or cfg.latency_ms:
                delay = 3600.0 if cfg.fail == "hang" else cfg.latency_ms / 1000
                if await _client_left_within(receive, delay):
                    stats.cancelled += 1
                    return
            if cfg.fail == "500":
                await _json(send, 500, {"error": {"message": "engine failure", "type": "server"}})
                return
            if cfg.fail == "drop":
                raise ConnectionAbortedError("stand-in drops the connection")
            chat = path.endswith("chat/completions")
            if cfg.simulate:
                await self._simulated(send, body, model, chat)
                stats.completed += 1
                return
            echo = _last_user_text(body) if cfg.echo else cfg.reply
            if body.get("stream"):
                await self._stream(send, receive, model, chat, echo)
            else:
                await _json(send, 200, self._answer(model, chat, echo))
                stats.completed += 1
        finally:
            stats.in_flight -= 1

    async def _stream(
        self, send: Send, receive: Receive, model: str, chat: bool, echo: str | None
    ) -> None:
        cfg = self.config
        gone = asyncio.Event()
        watcher = asyncio.create_task(_watch_disconnect(receive, gone))
        size = 8 if cfg.reply is not None and not cfg.echo else 3
        pieces = None if echo is None else [echo[i : i + size] for i in range(0, len(echo), size)]
        try:
            await send(_start(200, b"text/event-stream"))
            for i in range(cfg.chunks if pieces is None else len(pieces)):
                if gone.is_set():
                    self.stats.cancelled += 1
                    return
                if cfg.fail == "break_stream" and i == cfg.chunks // 2:
                    raise ConnectionAbortedError("stand-in breaks the stream")
                piece = f"{cfg.name}:{i} " if i else f"[{cfg.name}] "
                if pieces is not None:
                    piece = pieces[i]
                event = self._chunk(model, chat, piece, None)
                await send({"type": "http.response.body", "body": event, "more_body": True})
                if cfg.chunk_ms:
                    await asyncio.sleep(cfg.chunk_ms / 1000)
            tail = self._chunk(model, chat, "", "stop") + b"data: [DONE]\n\n"
            await send({"type": "http.response.body", "body": tail, "more_body": False})
            self.stats.completed += 1
        finally:
            watcher.cancel()

    async def _simulated(self, send: Send, body: dict[str, Any], model: str, chat: bool) -> None:
        """Answer on the simulated engine's clock; usage says how much of the prompt was cached."""
        stream = bool(body.get("stream"))
        if stream:
            await send(_start(200, b"text/event-stream"))
        text: list[bytes] = []
        prefill = None
        async for piece, cost in self.engine.generate(body):
            prefill = cost
            text.append(piece)
            if stream:
                event = self._chunk(model, chat, piece.decode(), None)
                await send({"type": "http.response.body", "body": event, "more_body": True})
        assert prefill is not None
        completion = sum(len(t) for t in text) // 4
        usage = {
            "prompt_tokens": prefill.prompt_tokens,
            "completion_tokens": completion,
            "total_tokens": prefill.prompt_tokens + completion,
            "prompt_tokens_details": {"cached_tokens": prefill.cached_tokens},
        }
        if not stream:
            answer = self._answer(model, chat, b"".join(text).decode())
            answer["usage"] = usage
            await _json(send, 200, answer)
            return
        tail = self._chunk(model, chat, "", "stop")
        if (body.get("stream_options") or {}).get("include_usage"):
            last = {"id": "cmpl-standin", "object": "chat.completion.chunk", "choices": []}
            tail += b"data: " + orjson.dumps({**last, "model": model, "usage": usage}) + b"\n\n"
        tail += b"data: [DONE]\n\n"
        await send({"type": "http.response.body", "body": tail, "more_body": False})

    def _chunk(self, model: str, chat: bool, text: str, finish: str | None) -> bytes:
        if chat:
            delta = {"content": text} if text else {}
            choice: dict[str, Any] = {"index": 0, "delta": delta, "finish_reason": finish}
            obj = "chat.completion.chunk"
        else:
            choice = {"index": 0, "text": text, "finish_reason": finish, "logprobs": None}
            obj = "text_completion"
        data = {
            "id": "cmpl-standin",
            "object": obj,
            "created": int(time.time()),
            "model": model,
            "choices": [choice],
        }
        return b"data: " + orjson.dumps(data) + b"\n\n"

    def _answer(self, model: str, chat: bool, echo: str | None = None) -> dict[str, Any]:
        text = f"[{self.config.name}] answer from {model}" if echo is None else echo
        if chat:
            choice: dict[str, Any] = {
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "finish_reason": "stop",
            }
        else:
            choice = {"index": 0, "text": text, "finish_reason": "stop", "logprobs": None}
        return {
            "id": "cmpl-standin",
            "object": "chat.completion" if chat else "text_completion",
            "created": int(time.time()),
            "model": model,
            "choices": [choice],
            "usage": {"prompt_tokens": 5, "completion_tokens": 7, "total_tokens": 12},
        }

    def _models(self) -> dict[str, Any]:
        return {
            "object": "list",
            "data": [
                {"id": m, "object": "model", "owned_by": "standin"} for m in self.config.models
            ],
        }

    def _metrics(self) -> str:
        if self.config.simulate:
            return self.engine.metrics(self.config.waiting)
        return (
            "# TYPE vllm:num_requests_running gauge\n"
            f'vllm:num_requests_running{{model_name="any"}} {float(self.stats.in_flight)}\n'
            "# TYPE vllm:num_requests_waiting gauge\n"
            f'vllm:num_requests_waiting{{model_name="any"}} {float(self.config.waiting)}\n'
            "# TYPE vllm:gpu_cache_usage_perc gauge\n"
            f'vllm:gpu_cache_usage_perc{{model_name="any"}} {min(1.0, self.stats.in_flight / 100)}\n'
        )


def _last_user_text(body: dict[str, Any]) -> str:
    """The last user message of a chat, or the prompt of a completion, as text."""
    if "prompt" in body:
        prompt = body["prompt"]
        return prompt if isinstance(prompt, str) else " ".join(map(str, prompt))
    for message in reversed(body.get("messages") or []):
        if isinstance(message, dict) and message.get("role") == "user":
            content = message.get("content")
            return content if isinstance(content, str) else orjson.dumps(content).decode()
    return ""


async def _client_left_within(receive: Receive, seconds: float) -> bool:
    """Wait `seconds`; True as soon as the client disconnects (a real engine aborts then)."""
    gone = asyncio.Event()
    watcher = asyncio.create_task(_watch_disconnect(receive, gone))
    try:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(gone.wait(), seconds)
        return gone.is_set()
    finally:
        watcher.cancel()


async def _watch_disconnect(receive: Receive, gone: asyncio.Event) -> None:
    with contextlib.suppress(Exception):
        while (await receive())["type"] != "http.disconnect":
            pass
        gone.set()


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def _body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


def _start(status: int, ctype: bytes) -> Message:
    return {"type": "http.response.start", "status": status, "headers": [(b"content-type", ctype)]}


async def _json(send: Send, status: int, data: Any) -> None:
    await send(_start(status, b"application/json"))
    await send({"type": "http.response.body", "body": orjson.dumps(data)})


async def _text(send: Send, status: int, text: str) -> None:
    await send(_start(status, b"text/plain; version=0.0.4"))
    await send({"type": "http.response.body", "body": text.encode()})


# --- audio for tests and benchmarks ---------------------------------------------------


def wav_bytes(samples: np.ndarray, rate: int = 16_000) -> bytes:
    """Mono float samples in [-1, 1] as a 16-bit PCM WAV file, encoded with PyAV."""
    import av  # only speech tests and benchmarks need it
    import numpy as np

    pcm = (np.clip(samples, -1, 1) * 32767).astype("<i2")
    buf = io.BytesIO()
    with av.open(buf, "w", format="wav") as container:
        stream = container.add_stream("pcm_s16le", rate=rate, layout="mono")
        frame = av.AudioFrame.from_ndarray(pcm[None, :], format="s16", layout="mono")
        frame.rate = rate
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            container.mux(packet)
    return buf.getvalue()


# --- running servers as real processes (tests, benchmarks) ----------------------------


class FakeClock:
    """A clock for policies and breakers under test: seconds, moved by hand."""

    def __init__(self, now: float = 0.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def unavailable(message: str) -> NoReturn:
    """Something a test needs is missing: the test fails under CI=true (CI never silently
    skips), and is skipped, saying why, elsewhere."""
    import pytest

    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message)
    pytest.skip(message)


def end_process(
    proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM, timeout_s: float = 10.0
) -> None:
    """Send `sig` and wait for the exit; SIGKILL after `timeout_s`. Nothing if it has exited."""
    if proc.poll() is not None:
        return
    proc.send_signal(sig)
    try:
        proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServerProcess:
    """A `megacity ...` server in a child process on 127.0.0.1, killed on `stop()`."""

    def __init__(self, args: list[str], port: int, env: dict[str, str] | None = None) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self._args = args
        self.env = {**os.environ, **(env or {})}
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path: str | None = None

    def start(self, ready_path: str = "/health", timeout_s: float = 20.0) -> ServerProcess:
        """Start the process and wait until `ready_path` answers (any status < 500)."""
        fd, self.log_path = tempfile.mkstemp(prefix="megacity-", suffix=".log")
        with os.fdopen(fd, "wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "megacity", *self._args],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env,
            )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}: {self.output()}")
            try:
                with urllib.request.urlopen(self.url + ready_path, timeout=1) as resp:
                    if resp.status < 500:
                        return self
            except urllib.error.HTTPError as exc:
                if exc.code < 500:
                    return self
            except OSError:
                pass
            time.sleep(0.05)
        self.stop()
        raise TimeoutError(f"server on port {self.port} not ready: {self.output()}")

    def output(self) -> str:
        if self.log_path is None:
            return ""
        with open(self.log_path, encoding="utf-8", errors="replace") as f:
            return f.read()

    def kill(self) -> None:
        """SIGKILL, as a crashed node would die."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        """Terminate (SIGTERM, then SIGKILL after 10 s) and remove the log file."""
        if self.proc is not None:
            end_process(self.proc)
        if self.log_path is not None:
            with contextlib.suppress(OSError):
                os.unlink(self.log_path)
            self.log_path = None


class StandinProcess(ServerProcess):
    """`megacity standin` in a child process, with its run-time controls."""

    def __init__(self, name: str, port: int | None = None, *extra: str) -> None:
        port = port or free_port()
        super().__init__(["standin", "--port", str(port), "--name", name, *extra], port)
        self.name = name

    def configure(self, **changes: Any) -> dict[str, Any]:
        return _post_json(f"{self.url}/_standin/config", changes)

    def stats(self) -> dict[str, Any]:
        with urllib.request.urlopen(f"{self.url}/_standin/stats", timeout=5) as resp:
            data: dict[str, Any] = orjson.loads(resp.read())
            return data


class RouterProcess(ServerProcess):
    """`megacity serve` on a topology file, in a child process."""

    def __init__(self, config: str, port: int | None = None, env: dict[str, str] | None = None):
        port = port or free_port()
        super().__init__(["serve", "--config", config, "--port", str(port)], port, env)

    def start(self, ready_path: str = "/healthz", timeout_s: float = 20.0) -> ServerProcess:
        return super().start(ready_path, timeout_s)


def _post_json(url: str, data: dict[str, Any]) -> dict[str, Any]:
    req = urllib.request.Request(
        url, orjson.dumps(data), {"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(req, timeout=5) as resp:
        result: dict[str, Any] = orjson.loads(resp.read())
        return result


class EngineNodeProcess(ServerProcess):
    """`megacity engine <kind>` in a child process; ready once its model has loaded."""

    kind = ""

    def __init__(
        self,
        name: str,
        model: str,
        port: int | None = None,
        *extra: str,
        env: dict[str, str] | None = None,
    ) -> None:
        port = port or free_port()
        args = ["engine", self.kind, "--port", str(port), "--name", name, "--model", model]
        super().__init__([*args, *extra], port, env)
        self.name = name

    def start(self, ready_path: str = "/health", timeout_s: float = 30.0) -> ServerProcess:
        return super().start(ready_path, timeout_s)


class SpeechNodeProcess(EngineNodeProcess):
    """`megacity engine speech` in a child process."""

    kind = "speech"


class PoseNodeProcess(EngineNodeProcess):
    """`megacity engine pose` in a child process."""

    kind = "pose"


class ImageNodeProcess(EngineNodeProcess):
    """`megacity engine image` in a child process."""

    kind = "image"


class TTSNodeProcess(EngineNodeProcess):
    """`megacity engine tts` in a child process."""

    kind = "tts"


class AuthKit:
    """A region's signing key in a folder of its own, and tokens it signs (for tests).

    `env()` turns auth on in a router process trusting that folder; `headers()` gives
    the Authorization header of a fresh token.
    """

    def __init__(self, keys_dir: Path, region: str) -> None:
        from megacity.auth import KeySet, generate_key

        self.keys_dir = Path(keys_dir)
        self.region = region
        self.kid = generate_key(self.keys_dir, region)
        self.keys = KeySet(self.keys_dir, reload_interval_s=0.0)

    def env(self, reload_interval_s: float = 0.2) -> dict[str, str]:
        return {
            "MEGACITY_AUTH_ENABLED": "true",
            "MEGACITY_AUTH_KEYS_DIR": str(self.keys_dir),
            "MEGACITY_AUTH_RELOAD_INTERVAL_S": str(reload_interval_s),
        }

    def token(
        self,
        subject: str = "learner-1",
        *,
        scopes: tuple[str, ...] = ("ai:use",),
        zones: tuple[str, ...] | None = None,
        ttl_s: int = 600,
        region: str | None = None,
        group: str | None = None,
    ) -> str:
        from megacity.auth import issue_token

        self.keys.reload()
        return issue_token(
            self.keys,
            region or self.region,
            subject=subject,
            scopes=scopes,
            zones=zones,
            ttl_s=ttl_s,
            group=group,
        )

    def headers(self, subject: str = "learner-1", **kwargs: Any) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(subject, **kwargs)}"}
