"""Speech benchmark: transcription latency and real-time factor, and voice scoring throughput.

* The in-process engine (faster-whisper, CPU int8) on a 5 s clip: audio decoding, model
  load, transcription p50/p99 and real-time factor (transcription time / audio time),
  with and without word timings. The model is ../shared/models/whisper-random-tiny-ct2
  (random weights, tiny) decoded greedily with at most 16 new tokens per window, so the
  numbers measure the pipeline around the model, not a real model's decoding.
* Recognition quality and speed of the real multilingual Whisper base
  (../shared/models/whisper-base-ct2) beside the random one, on the five LibriVox clips of
  real human speech (../shared/audio/librivox): word and character error rates as the
  voice scores count them (normalised: case, punctuation, "Mr." = "mister"), and the
  real-time factor (transcription time / audio time), greedy decoding, CPU int8.
* The same clip through a router process (/v1/audio/transcriptions, in-process engine).
* /api/v1/kzone/voice/score through the router (no transcription) at concurrency 1 and 16.

Usage: python bench/speech.py [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import numpy as np
import orjson
import uvloop
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from common import closed_loop, pct, secured_router_env, table  # noqa: E402

from megacity.engines.audio import SAMPLE_RATE, decode_audio  # noqa: E402
from megacity.engines.speech import (  # noqa: E402
    SpeechEngine,
    SpeechEngineConfig,
    TranscribeOptions,
)
from megacity.testing import RouterProcess, wav_bytes  # noqa: E402

SHARED = ROOT / ".." / "shared"
MODEL = str((SHARED / "models" / "whisper-random-tiny-ct2").resolve())
REAL_MODEL = str((SHARED / "models" / "whisper-base-ct2").resolve())
LIBRIVOX = SHARED / "audio" / "librivox"
OPTIONS = {
    "model": MODEL,
    "device": "cpu",
    "compute_type": "int8",
    "beam_size": 1,
    "max_new_tokens": 16,
    "temperature": 0.0,
    "condition_on_previous_text": False,
}
CLIP_S = 5.0
KO_TEXT = "저는 매일 아침 커피를 마십니다. 오늘 날씨가 정말 좋네요."
SCORE_BODY = {
    "reference_text": KO_TEXT,
    "language": "ko",
    "mode": "read",
    "transcript": "저는 매일 아침 커피를 마심니다 오늘 날씨가 정말 존네요",
    "words": [
        {"word": f" {w}", "start": 0.3 + 0.45 * i, "end": 0.7 + 0.45 * i, "probability": 0.8}
        for i, w in enumerate(
            ["저는", "매일", "아침", "커피를", "마심니다", "오늘", "날씨가", "정말", "존네요"]
        )
    ],
}


def _clip() -> tuple[np.ndarray, bytes]:
    """A 5.0 s clip of the shared espeak-ng sentences, as samples and as a WAV file."""
    parts = [
        decode_audio((SHARED / "audio" / f"{n}.wav").read_bytes(), max_seconds=60)
        for n in ("en1", "ko2")
    ]
    samples = np.concatenate(parts)[: int(CLIP_S * SAMPLE_RATE)]
    samples = np.pad(samples, (0, int(CLIP_S * SAMPLE_RATE) - samples.size))
    return samples.astype(np.float32), wav_bytes(samples, SAMPLE_RATE)


def _engine(samples: np.ndarray, wav: bytes, runs: int) -> None:
    decode_ms = []
    for _ in range(20):
        t0 = time.perf_counter()
        decode_audio(wav, max_seconds=600)
        decode_ms.append((time.perf_counter() - t0) * 1000)
    engine = SpeechEngine(SpeechEngineConfig.from_options(OPTIONS))
    engine.load()
    rows = [
        ["decode 5 s WAV → 16 kHz float32 (p50)", f"{statistics.median(decode_ms):.2f} ms", ""],
        ["model load (tiny, int8)", f"{(engine.load_seconds or 0) * 1000:.0f} ms", ""],
    ]

    async def measure(words: bool) -> list[float]:
        options = TranscribeOptions(language="en", word_timestamps=words)
        await engine.transcribe(samples, options)  # warm-up
        times = []
        for _ in range(runs):
            t0 = time.perf_counter()
            await engine.transcribe(samples, options)
            times.append((time.perf_counter() - t0) * 1000)
        return times

    for words in (False, True):
        times = asyncio.run(measure(words))
        p50 = statistics.median(times)
        rows.append(
            [
                f"transcribe 5 s clip{' + word timings' if words else ''} p50 / p99",
                f"{p50:.0f} / {pct(times, 0.99):.0f} ms",
                f"RTF {p50 / 1000 / CLIP_S:.3f}",
            ]
        )
    engine.close()
    table(
        "In-process speech engine, CPU int8, 1 worker (random tiny model, ≤ 16 tokens per window)",
        ["what", "time", "real-time factor"],
        rows,
    )


def _recognition(runs: int) -> None:
    """WER, CER and real-time factor of each model on the LibriVox clips."""
    from megacity.scoring.pronunciation import assess

    refs = [row.split("\t") for row in (LIBRIVOX / "refs.tsv").read_text().splitlines()[1:]]
    clips = [(decode_audio((LIBRIVOX / f"{ident}.wav").read_bytes(), max_seconds=60), text)
             for ident, _, text in refs]  # fmt: skip
    audio_s = sum(samples.size for samples, _ in clips) / SAMPLE_RATE
    rows = []
    for name, path, extra in (
        ("whisper base (real)", REAL_MODEL, {"max_new_tokens": None}),
        ("random tiny", MODEL, {}),
    ):
        if not Path(path, "model.bin").is_file():
            rows.append([name, "missing", "", "", "", ""])
            continue
        engine = SpeechEngine(SpeechEngineConfig.from_options({**OPTIONS, "model": path, **extra}))
        engine.load()

        async def all_clips(eng: SpeechEngine = engine) -> tuple[float, float, float]:
            options = TranscribeOptions(language="en", word_timestamps=True)
            await eng.transcribe(clips[0][0], options)  # warm-up
            wer = cer = seconds = 0.0
            for _ in range(runs):
                for samples, text in clips:
                    t0 = time.perf_counter()
                    heard = await eng.transcribe(samples, options)
                    seconds += time.perf_counter() - t0
                    scored = assess(text, heard.text[:4000], "en")
                    wer, cer = wer + scored.wer, cer + scored.cer
            n = runs * len(clips)
            return wer / n, cer / n, seconds / runs

        wer, cer, seconds = asyncio.run(all_clips())
        engine.close()
        rows.append([name, f"{len(clips)} × {runs}", f"{wer * 100:.1f} %", f"{cer * 100:.1f} %",
                     f"{seconds / audio_s:.3f}", f"{(engine.load_seconds or 0) * 1000:.0f} ms"])  # fmt: skip
    table(
        f"Recognition on the LibriVox clips ({audio_s:.1f} s of real speech), CPU int8, greedy",
        ["model", "clips", "WER", "CER", "real-time factor", "load"],
        rows,
    )


async def _post_many(
    url: str,
    make: callable,
    concurrency: int,
    total: int,  # type: ignore[valid-type]
) -> tuple[float, float, float]:
    latencies: list[float] = []
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def one() -> None:
            t0 = time.perf_counter()
            async with session.post(url, **make()) as resp:
                body = await resp.read()
                if resp.status != 200:
                    raise RuntimeError(f"HTTP {resp.status}: {body[:300]!r}")
            latencies.append((time.perf_counter() - t0) * 1000)

        warmup = min(20, total // 10 + 1)
        elapsed = await closed_loop(one, concurrency, total, warmup)
    latencies = latencies[warmup:]
    return total / elapsed, statistics.median(latencies), pct(latencies, 0.99)


def _router(router: RouterProcess, wav: bytes, scale: float, auth: dict[str, str]) -> None:
    def transcription() -> dict[str, object]:
        form = aiohttp.FormData()
        form.add_field("file", wav, filename="clip.wav", content_type="audio/wav")
        form.add_field("model", "whisper-1")
        form.add_field("language", "en")
        return {"data": form, "headers": auth}

    body = orjson.dumps(SCORE_BODY)
    score_request = {"data": body, "headers": {"Content-Type": "application/json", **auth}}
    rows = []
    n = max(10, int(40 * scale))
    rps, p50, p99 = asyncio.run(
        _post_many(f"{router.url}/v1/audio/transcriptions", transcription, 1, n)
    )
    rows.append(
        [
            "/v1/audio/transcriptions, 5 s WAV",
            "1",
            f"{rps:,.1f}",
            f"{p50:.0f}/{p99:.0f}",
            f"RTF {p50 / 1000 / CLIP_S:.3f}",
        ]
    )
    for concurrency, total in ((1, 1000), (16, 4000)):
        rps, p50, p99 = asyncio.run(
            _post_many(
                f"{router.url}/api/v1/kzone/voice/score",
                lambda: score_request,
                concurrency,
                max(100, int(total * scale)),
            )
        )
        rows.append(
            [
                "/api/v1/kzone/voice/score, 10 ko words",
                str(concurrency),
                f"{rps:,.0f}",
                f"{p50:.2f}/{p99:.2f}",
                "",
            ]
        )
    table(
        "Through one router process (in-process engine; scoring excludes transcription)",
        ["endpoint", "conc", "req/s", "p50/p99 ms", ""],
        rows,
    )


def _topology() -> dict[str, object]:
    return {
        "regions": [{"name": "local"}],
        "nodes": [
            {
                "name": "speech-local",
                "engine": "speech",
                "url": "local",
                "models": ["whisper-bench"],
                "region": "local",
                "max_concurrency": 64,
                "options": OPTIONS,
            }
        ],
        "models": [{"name": "whisper-bench", "engine": "speech", "aliases": ["whisper-1"]}],
        "zones": {"bench": {"engines": {"speech": "whisper-bench"}, "default_locale": "ko"}},
        "default_zone": "bench",
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="fewer requests")
    args = parser.parse_args()
    scale = 0.25 if args.quick else 1.0
    uvloop.install()
    samples, wav = _clip()
    _engine(samples, wav, max(10, int(40 * scale)))
    _recognition(1 if args.quick else 2)
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "speech.yaml"
        config.write_text(yaml.safe_dump(_topology()), encoding="utf-8")
        env, auth = secured_router_env(Path(tmp) / "keys", "local")
        router = RouterProcess(str(config), env={**env, "MEGACITY_REQUEST_LOG": "false"})
        t0 = time.perf_counter()
        router.start(timeout_s=30)
        startup = time.perf_counter() - t0
        try:
            _router(router, wav, scale, auth)
        finally:
            router.stop()
    print(f"\nrouter start-up with an in-process speech node (lazy model load): {startup:.2f} s")
    print("GPU node target (large-v3, float16, CUDA): < 900 ms for a 5 s clip.")


if __name__ == "__main__":
    main()
