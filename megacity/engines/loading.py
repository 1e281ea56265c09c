"""Load an in-process engine's model once, thread-safely, and remember a failure for a while.

The speech, TTS and image engines share this: the first caller builds the model (from a
worker thread), callers arriving meanwhile wait on the lock and get the same model; a
failed load is remembered for ``retry_s`` so a broken model does not make every request
pay the load again, and its reason is what ``/health`` and ModelUnavailable report.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import math
import os
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Generic, TypeVar

from megacity.engines.errors import ModelUnavailable

FAILED_LOAD_RETRY_S = 30.0  # a model that failed to load is not retried on every request
MODELS_DIR_ENV = "MEGACITY_MODELS_DIR"  # where a bare model file name is also looked for

T = TypeVar("T")


def model_file(name: str, env: Mapping[str, str] | None = None) -> Path:
    """A model file: the path as given if it exists, else a bare file name in
    ``$MEGACITY_MODELS_DIR``; the path as given when neither exists."""
    path = Path(name).expanduser()
    models_dir = (os.environ if env is None else env).get(MODELS_DIR_ENV)
    if not path.exists() and models_dir and path.name == name:
        candidate = Path(models_dir).expanduser() / path.name
        if candidate.exists():
            path = candidate
    return path.resolve()


def option_values(
    config: type[Any], options: Mapping[str, Any], what: str, *, file_option: bool = True
) -> dict[str, Any]:
    """A node's `options` as the fields of a config dataclass; `model` is `model_path`
    when `file_option`. ValueError names an unknown key (``pose engine: unknown option``)."""
    known = {f.name for f in dataclasses.fields(config)}
    values: dict[str, Any] = {}
    for key, value in options.items():
        name = "model_path" if file_option and key == "model" else key
        if name not in known:
            raise ValueError(f"{what}: unknown option {key!r}")
        if name in values:
            raise ValueError(f"{what}: give `model` or `model_path`, not both")
        values[name] = value
    return values


def is_number(value: object) -> bool:
    """A finite int or float (never a bool)."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def failure_detail(exc: BaseException) -> str:
    """ "Type: first line of the message" (at most 300 characters of it)."""
    message = str(exc).splitlines()[0][:300] if str(exc) else ""
    return f"{type(exc).__name__}: {message}"


class ModelSlot(Generic[T]):
    """Holds one engine's model: built on first `get()`, failures remembered `retry_s`."""

    def __init__(
        self,
        what: str,
        model: str,
        build: Callable[[], T],
        unavailable: Callable[[str], ModelUnavailable],
        *,
        log: logging.Logger,
        retry_s: float = FAILED_LOAD_RETRY_S,
    ) -> None:
        self._what = what  # "speech", "tts", "image": names the model in logs
        self._model = model
        self._build = build
        self._unavailable = unavailable
        self._log = log
        self._retry_s = retry_s
        self._lock = threading.Lock()
        self._value: T | None = None
        self._failure: tuple[float, str] | None = None
        self.load_seconds: float | None = None

    @property
    def value(self) -> T | None:
        return self._value

    @property
    def loaded(self) -> bool:
        return self._value is not None

    @property
    def failure(self) -> str | None:
        """Why the last load failed, while that is remembered (None when loaded or untried)."""
        return self._failure[1] if self._failure else None

    def get(self) -> T:
        """The model, built now if need be (blocking); ModelUnavailable if it cannot be."""
        if self._value is not None:
            return self._value
        with self._lock:
            if self._value is not None:
                return self._value
            if self._failure and time.monotonic() - self._failure[0] < self._retry_s:
                raise self._unavailable(self._failure[1])
            started = time.perf_counter()
            try:
                value = self._build()
            except Exception as exc:  # every loading error means the same thing to a client
                detail = failure_detail(exc)
                self._failure = (time.monotonic(), detail)
                extra = {"model": self._model, "error": detail}
                self._log.error(f"{self._what} model failed to load", extra=extra)
                raise self._unavailable(detail) from None
            self._failure = None
            self._value = value
            self.load_seconds = time.perf_counter() - started
            seconds = round(self.load_seconds, 3)
            self._log.info(
                f"{self._what} model loaded", extra={"model": self._model, "seconds": seconds}
            )
            return value

    def clear(self) -> None:
        """Drop the model (the engine is closing)."""
        self._value = None


class SlotEngine:
    """An engine built on a ModelSlot: its model, a worker pool, and the state its node's
    /health and /metrics report (loaded, failure, requests running and waiting)."""

    def __init__(self, what: str, model: str, workers: int, thread_name: str) -> None:
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix=thread_name)
        log = logging.getLogger(f"megacity.{what}")
        self._slot: ModelSlot[Any] = ModelSlot(what, model, self._build, self._unavailable, log=log)
        self._counts = threading.Lock()
        self.running = 0
        self.waiting = 0

    def _build(self) -> Any:
        raise NotImplementedError

    def _unavailable(self, detail: str) -> ModelUnavailable:
        raise NotImplementedError

    @property
    def loaded(self) -> bool:
        return self._slot.loaded

    @property
    def failure(self) -> str | None:
        """Why the last load failed, while that is remembered (None when loaded or untried)."""
        return self._slot.failure

    @property
    def load_seconds(self) -> float | None:
        return self._slot.load_seconds

    def load(self) -> Any:
        """The model, loaded once (blocking: call from a worker thread); ModelUnavailable."""
        return self._slot.get()

    async def warm_up(self) -> None:
        """Load the model in a worker thread; failures are logged, not raised."""
        with contextlib.suppress(ModelUnavailable):
            await asyncio.get_running_loop().run_in_executor(self._pool, self.load)

    async def _in_line(self, work: Callable[[Any], T]) -> T:
        """`work(model)` in the worker pool, counted as waiting, then running."""
        begun = threading.Event()

        def run() -> T:
            begun.set()
            self._count(waiting=-1, running=1)
            try:
                return work(self.load())
            finally:
                self._count(running=-1)

        self._count(waiting=1)
        try:
            return await asyncio.get_running_loop().run_in_executor(self._pool, run)
        finally:
            if not begun.is_set():  # cancelled while still in line
                self._count(waiting=-1)

    def _count(self, *, waiting: int = 0, running: int = 0) -> None:
        with self._counts:
            self.waiting += waiting
            self.running += running

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
