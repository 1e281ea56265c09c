"""The `megacity` command: serve the router, check a topology, run stand-in engines."""

from __future__ import annotations

import argparse
import logging
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pydantic import ValidationError

from megacity.auth.commands import add_commands

log = logging.getLogger("megacity.cli")
LOOPBACK = ("127.0.0.1", "localhost", "::1")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `megacity` console script; returns the exit code."""
    parser = _parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    return int(args.func(args))


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="megacity", description="MegaCity AI Router")
    sub = parser.add_subparsers(metavar="COMMAND")

    serve = sub.add_parser("serve", help="run the AI Router")
    _config_args(serve)
    serve.add_argument(
        "--workers",
        type=int,
        default=int(os.environ.get("MEGACITY_WORKERS", "1")),
        help="router processes sharing the port (default 1; $MEGACITY_WORKERS); each keeps"
        " its own balancer state and metrics, shared state lives in Redis/PostgreSQL",
    )
    serve.set_defaults(func=_serve)

    demo = sub.add_parser(
        "demo", help="run the router plus stand-in LLM servers for its loopback LLM nodes"
    )
    _config_args(demo)
    demo.set_defaults(func=_demo)

    check = sub.add_parser("check-config", help="validate a topology file and exit")
    check.add_argument("config", type=Path)
    check.set_defaults(func=_check)

    db = sub.add_parser("db", help="the relational database (SQLite default, DATABASE_URL)")
    db_actions = db.add_subparsers(metavar="ACTION")
    upgrade = db_actions.add_parser("upgrade", help="apply the schema migrations (idempotent)")
    upgrade.add_argument(
        "--database-url",
        help="database URL (default: $MEGACITY_DATABASE_URL, $DATABASE_URL, or SQLite in data_dir)",
    )
    upgrade.set_defaults(func=_db_upgrade)

    retention = sub.add_parser("retention", help="stored objects' retention (MEGACITY_RETENTION)")
    retention_actions = retention.add_subparsers(metavar="ACTION")
    sweep = retention_actions.add_parser(
        "sweep", help="delete the objects whose retention has passed, and report"
    )
    sweep.add_argument("--dry-run", action="store_true", help="report what is due, delete nothing")
    sweep.add_argument(
        "--orphans", action="store_true", help="also list store objects without a row (kept)"
    )
    sweep.set_defaults(func=_retention_sweep)

    worker = sub.add_parser(
        "worker", help="run job workers (Redis Streams with REDIS_URL, else the jobs table)"
    )
    worker.add_argument("--kinds", help="comma-separated job kinds to serve (default: all)")
    worker.add_argument("--concurrency", type=int, help="jobs at once (default: jobs_concurrency)")
    worker.add_argument(
        "--config", type=Path, help="topology YAML (default: examples/topology.yaml)"
    )
    worker.add_argument(
        "--handlers",
        help="module:function returning the Handlers to serve (default: the router's job"
        " kinds: thumbnail, tts, noop, with the topology's generation nodes)",
    )
    worker.set_defaults(func=_worker)

    standin = sub.add_parser("standin", help="run a stand-in vLLM server (tests, demos)")
    standin.add_argument("--host", default="127.0.0.1")
    standin.add_argument("--port", type=int, required=True)
    standin.add_argument("--name", default="standin")
    standin.add_argument("--latency-ms", type=float, default=0.0)
    standin.add_argument("--chunk-ms", type=float, default=0.0)
    standin.add_argument("--chunks", type=int, default=8)
    standin.add_argument("--models", nargs="*", default=[])
    standin.add_argument(
        "--simulate",
        action="store_true",
        help="time answers with a simulated engine: prefix cache, prefill/decode, slots",
    )
    standin.add_argument("--max-running", type=int, default=8, help="sequences at once")
    standin.add_argument("--prefill-ms-per-token", type=float, default=0.05)
    standin.add_argument("--decode-tokens-per-s", type=float, default=200.0)
    standin.add_argument("--cache-blocks", type=int, default=4096, help="prefix-cache blocks")
    standin.add_argument("--block-tokens", type=int, default=16)
    standin.set_defaults(func=_standin)

    engine = sub.add_parser("engine", help="run an engine node (speech, pose, image, tts)")
    kinds = engine.add_subparsers(metavar="ENGINE")
    speech = kinds.add_parser("speech", help="a faster-whisper speech node (OpenAI transcriptions)")
    _speech_args(speech)
    speech.set_defaults(func=_engine_speech)
    pose = kinds.add_parser("pose", help="a MediaPipe pose node (video → 33 keypoints per frame)")
    _pose_args(pose)
    pose.set_defaults(func=_engine_pose)
    image = kinds.add_parser("image", help="a diffusers text-to-image node (OpenAI images)")
    _image_args(image)
    image.set_defaults(func=_engine_image)
    tts = kinds.add_parser(
        "tts", help="a text-to-speech node, VITS/MMS or espeak-ng (OpenAI speech)"
    )
    _tts_args(tts)
    tts.set_defaults(func=_engine_tts)

    watermark = sub.add_parser("watermark", help="AI-generated watermarks of images and audio")
    watermark_actions = watermark.add_subparsers(metavar="ACTION")
    verify = watermark_actions.add_parser(
        "verify", help="does a PNG/JPEG image or a WAV file carry the MegaCity watermark?"
    )
    verify.add_argument("files", nargs="+", type=Path)
    verify.add_argument(
        "--key", help="watermark key (default: $MEGACITY_WATERMARK_KEY or the public key)"
    )
    verify.set_defaults(func=_watermark_verify)
    add_commands(sub)  # token issue, keys …, apikey … (megacity/auth/commands.py)
    return parser


def _node_args(p: argparse.ArgumentParser, kind: str, port: int) -> None:
    """What every `megacity engine <kind>` takes: address, node name, lazy loading."""
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=port)
    p.add_argument("--name", default=kind, help="node name, reported in X-MegaCity-Node")
    p.add_argument(
        "--no-preload", action="store_true", help="load the model on first use, not at start"
    )


def _image_args(p: argparse.ArgumentParser) -> None:
    _node_args(p, "image", 8103)
    p.add_argument(
        "--model",
        default=os.environ.get("MEGACITY_IMAGE_MODEL") or "stabilityai/sdxl-turbo",
        help="local diffusers folder or hub name (default $MEGACITY_IMAGE_MODEL or sdxl-turbo)",
    )
    p.add_argument("--device", default="auto", choices=["auto", "cuda", "cpu"])
    p.add_argument("--dtype", default="auto", help="auto: float16 on CUDA, float32 on CPU")
    p.add_argument("--steps", type=int, default=4, help="default num_inference_steps")
    p.add_argument("--max-concurrency", type=int, default=1, help="generations at once")


def _tts_args(p: argparse.ArgumentParser) -> None:
    _node_args(p, "tts", 8104)
    p.add_argument(
        "--model",
        default=os.environ.get("MEGACITY_TTS_MODEL") or "facebook/mms-tts-kor",
        help="local transformers VITS folder, hub name, or espeak-ng (default"
        " $MEGACITY_TTS_MODEL or facebook/mms-tts-kor)",
    )
    p.add_argument("--device", default="auto", choices=["auto", "cuda", "cpu"])
    p.add_argument("--voice", default="ko", help="default voice / language")
    p.add_argument("--no-fallback", action="store_true", help="fail instead of using espeak-ng")
    p.add_argument("--max-concurrency", type=int, default=1, help="syntheses at once")


def _speech_args(p: argparse.ArgumentParser) -> None:
    _node_args(p, "speech", 8101)
    p.add_argument(
        "--model",
        default=os.environ.get("MEGACITY_SPEECH_MODEL") or "small",
        help="local CTranslate2 Whisper folder or model name (default $MEGACITY_SPEECH_MODEL or small)",
    )
    p.add_argument("--device", default="auto", choices=["auto", "cuda", "cpu"])
    p.add_argument("--compute-type", default="auto", help="auto: float16 on CUDA, int8 on CPU")
    p.add_argument("--workers", type=int, default=1, help="transcriptions run at once")
    p.add_argument("--cpu-threads", type=int, default=0)
    p.add_argument("--vad", action="store_true", help="Silero VAD: skip silence")
    p.add_argument("--beam-size", type=int, default=5)
    p.add_argument("--max-new-tokens", type=int, default=None)
    p.add_argument("--temperature", type=float, default=None, help="one temperature (no fallback)")
    p.add_argument("--no-condition-on-previous-text", action="store_true")


def _pose_args(p: argparse.ArgumentParser) -> None:
    _node_args(p, "pose", 8102)
    p.add_argument(
        "--model",
        default=os.environ.get("MEGACITY_POSE_MODEL") or "pose_landmarker_full.task",
        help="MediaPipe Pose Landmarker .task file (default $MEGACITY_POSE_MODEL or"
        " pose_landmarker_full.task, looked up in $MEGACITY_MODELS_DIR)",
    )
    p.add_argument("--fps", type=float, default=15.0, help="frames per second sampled")
    p.add_argument("--workers", type=int, default=0, help="worker processes (0: one per core)")


def _config_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", type=Path, help="topology YAML (default: examples/topology.yaml)")
    p.add_argument("--host", help="listen address (default 127.0.0.1)")
    p.add_argument("--port", type=int, help="listen port (default 8000)")


def _load_settings(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from megacity.config.settings import Settings
    from megacity.config.topology import TopologyError

    overrides = {k: v for k in ("host", "port") if (v := getattr(args, k, None)) is not None}
    try:
        return Settings.load(args.config, **overrides)
    except TopologyError as exc:
        print(f"megacity: {exc}", file=sys.stderr)
    except ValidationError as exc:
        print(f"megacity: invalid settings (MEGACITY_* environment):\n{exc}", file=sys.stderr)
    return None


def _serve(args: argparse.Namespace) -> int:
    settings = _load_settings(args)
    if settings is None:
        return 2

    from megacity.api.app import create_app
    from megacity.observability.logging import configure_logging

    configure_logging(settings.log_level)
    workers = max(1, getattr(args, "workers", 1) or 1)
    if workers > 1:
        return _serve_workers(settings, workers)
    try:
        app = create_app(settings)
    except ValueError as exc:  # e.g. an invalid prompt strategy file
        print(f"megacity: {exc}", file=sys.stderr)
        return 2
    log.info(
        "router starting",
        extra={"host": settings.host, "port": settings.port, "config": str(settings.config)},
    )
    _run_server(app, settings.host, settings.port, settings.shutdown_grace_s)
    return 0


def _serve_workers(settings: Any, workers: int) -> int:
    """N router processes on one port (uvicorn's supervisor restarts a worker that dies).

    Each process builds its own app from the environment, so the command line's choices
    travel as MEGACITY_* variables.
    """
    import uvicorn

    os.environ["MEGACITY_CONFIG"] = str(settings.config)
    os.environ["MEGACITY_HOST"] = settings.host
    os.environ["MEGACITY_PORT"] = str(settings.port)
    log.info(
        "router starting",
        extra={"host": settings.host, "port": settings.port, "workers": workers},
    )
    uvicorn.run(
        "megacity.api.app:create_app_from_env",
        factory=True,
        workers=workers,
        host=settings.host,
        port=settings.port,
        loop="uvloop",
        http="httptools",
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=max(1, round(settings.shutdown_grace_s)),
    )
    return 0


def _run_server(app: Any, host: str, port: int, shutdown_grace_s: float = 5.0) -> None:
    """uvicorn with uvloop + httptools, our JSON logging, no access log (we log requests).

    On SIGTERM it stops accepting, then gives open requests (streams) shutdown_grace_s.
    """
    import uvicorn

    uvicorn.run(
        app,
        host=host,
        port=port,
        loop="uvloop",
        http="httptools",
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=max(1, round(shutdown_grace_s)),
    )


def _check(args: argparse.Namespace) -> int:
    from megacity.config.topology import TopologyError, load_topology
    from megacity.engines.local import engine_config

    try:
        topo = load_topology(args.config)
        for node in topo.nodes:
            if node.in_process:
                engine_config(node)
    except (TopologyError, ValueError) as exc:
        print(f"megacity: {exc}", file=sys.stderr)
        return 2
    print(
        f"{args.config}: ok — {len(topo.regions)} regions, {len(topo.nodes)} nodes,"
        f" {len(topo.models)} models, {len(topo.zones)} zones"
    )
    return 0


def _db_upgrade(args: argparse.Namespace) -> int:
    from sqlalchemy.exc import SQLAlchemyError

    from megacity.config.settings import Settings
    from megacity.db import DatabaseError, build_database

    overrides = {"database_url": args.database_url} if args.database_url else {}
    try:
        db = build_database(Settings(**overrides))  # environment only: no topology needed
    except ValidationError as exc:
        print(f"megacity db: invalid settings (MEGACITY_* environment):\n{exc}", file=sys.stderr)
        return 1
    except (ValueError, OSError) as exc:
        print(f"megacity db: {exc}", file=sys.stderr)
        return 1
    try:
        result = db.upgrade()
    except (DatabaseError, SQLAlchemyError, OSError) as exc:
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        print(f"megacity db: cannot upgrade {db.display_url}: {reason}", file=sys.stderr)
        return 1
    finally:
        db.close()
    if result.changed:
        before = result.before or "an empty database"
        print(f"{db.display_url}: upgraded from {before} to {result.after}")
    else:
        print(f"{db.display_url}: already at {result.after} (the newest revision)")
    return 0


def _retention_sweep(args: argparse.Namespace) -> int:
    from sqlalchemy.exc import SQLAlchemyError

    from megacity.config.settings import Settings
    from megacity.db import DatabaseError, build_database
    from megacity.errors import MegaCityError
    from megacity.storage import build_object_store
    from megacity.storage.retention import sweep

    try:
        settings = Settings()  # environment only: no topology needed
        db = build_database(settings)
        store = build_object_store(settings)
    except ValidationError as exc:
        print(f"megacity retention: invalid settings (environment):\n{exc}", file=sys.stderr)
        return 1
    except (ValueError, OSError) as exc:
        print(f"megacity retention: {exc}", file=sys.stderr)
        return 1
    try:
        report = sweep(
            db, store, settings.retention, dry_run=args.dry_run, find_orphans=args.orphans
        )
    except (DatabaseError, SQLAlchemyError, MegaCityError, OSError) as exc:
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        print(f"megacity retention: sweep failed ({db.display_url}): {reason}", file=sys.stderr)
        return 1
    finally:
        db.close()
    print("\n".join(report.lines()))
    return 0 if report.ok else 1


def _worker(args: argparse.Namespace) -> int:
    import asyncio

    from sqlalchemy.exc import SQLAlchemyError

    from megacity.api.services import serve_jobs
    from megacity.config.settings import Settings
    from megacity.config.topology import TopologyError
    from megacity.db import DatabaseError, build_database
    from megacity.jobs.serve import load_handlers, serve
    from megacity.observability.logging import configure_logging
    from megacity.storage import build_object_store

    kinds = [k.strip() for k in (args.kinds or "").split(",") if k.strip()]
    try:
        # Custom handlers need the environment only; the router's own job kinds (generation)
        # need its topology: nodes, models and zones.
        settings = Settings() if args.handlers else Settings.load(args.config)
        concurrency = args.concurrency or settings.jobs_concurrency
        if concurrency < 1:
            raise ValueError("--concurrency must be at least 1")
        if args.handlers:
            handlers = load_handlers(args.handlers)
            handlers = handlers.only(kinds) if kinds else handlers
            db = build_database(settings)
            store = build_object_store(settings) if settings.retention_sweep_interval_s else None
            if settings.db_auto_upgrade:
                db.upgrade()
            work = serve(settings, db, handlers, concurrency, store=store)
        else:
            db = None
            work = serve_jobs(settings, kinds or None, concurrency)
    except ValidationError as exc:
        print(
            f"megacity worker: invalid settings (MEGACITY_* environment):\n{exc}", file=sys.stderr
        )
        return 2
    except (TopologyError, ValueError, OSError) as exc:
        print(f"megacity worker: {exc}", file=sys.stderr)
        return 2
    except (DatabaseError, SQLAlchemyError) as exc:
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        print(f"megacity worker: database: {reason}", file=sys.stderr)
        return 1
    configure_logging(settings.log_level)
    try:
        asyncio.run(work)
    except (DatabaseError, SQLAlchemyError) as exc:
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        print(f"megacity worker: database: {reason}", file=sys.stderr)
        return 1
    finally:
        if db is not None:
            db.close()
    return 0


def _watermark_verify(args: argparse.Namespace) -> int:
    """Print one line per file: marked or not, and the detector's score; exit 1 if any is not."""
    from megacity.config.settings import Settings
    from megacity.engines.generation import watermark_key
    from megacity.safety.watermark import verify_file

    key = args.key or watermark_key(Settings())
    unmarked = 0
    for path in args.files:
        try:
            check = verify_file(path, key=key)
        except (OSError, ValueError) as exc:
            print(f"{path}: cannot check: {exc}", file=sys.stderr)
            return 2
        unmarked += not check.present
        verdict = "AI-generated watermark present" if check.present else "no watermark"
        print(f"{path}: {verdict} ({check.method}, score {check.score:.3f})")
    return 1 if unmarked else 0


def _standin(args: argparse.Namespace) -> int:
    import uvicorn

    from megacity.simulation import SimulationConfig
    from megacity.testing import StandinConfig, StandinLLM

    config = StandinConfig(
        name=args.name,
        latency_ms=args.latency_ms,
        chunk_ms=args.chunk_ms,
        chunks=args.chunks,
        models=list(args.models),
        simulate=args.simulate,
    )
    simulation = SimulationConfig(
        block_tokens=args.block_tokens,
        cache_blocks=args.cache_blocks,
        prefill_ms_per_token=args.prefill_ms_per_token,
        decode_tokens_per_s=args.decode_tokens_per_s,
        max_running=args.max_running,
    )
    uvicorn.run(
        StandinLLM(config, simulation),
        host=args.host,
        port=args.port,
        loop="uvloop",
        http="httptools",
        log_level="warning",
        access_log=False,
        lifespan="off",
    )
    return 0


def _engine_speech(args: argparse.Namespace) -> int:
    options: dict[str, object] = {
        "model": args.model,
        "device": args.device,
        "compute_type": args.compute_type,
        "workers": args.workers,
        "cpu_threads": args.cpu_threads,
        "vad": args.vad,
        "beam_size": args.beam_size,
        "max_new_tokens": args.max_new_tokens,
        "condition_on_previous_text": not args.no_condition_on_previous_text,
        "warmup": not args.no_preload,
    }
    if args.temperature is not None:
        options["temperature"] = args.temperature
    return _engine_node(args, "speech", options)


def _engine_pose(args: argparse.Namespace) -> int:
    options = {
        "model": args.model,
        "fps": args.fps,
        "workers": args.workers,
        "warmup": not args.no_preload,
    }
    return _engine_node(args, "pose", options)


def _engine_image(args: argparse.Namespace) -> int:
    options = {
        "model": args.model,
        "device": args.device,
        "dtype": args.dtype,
        "default_steps": args.steps,
        "max_concurrency": args.max_concurrency,
        "warmup": not args.no_preload,
    }
    return _engine_node(args, "image", options)


def _engine_tts(args: argparse.Namespace) -> int:
    options = {
        "model": args.model,
        "device": args.device,
        "voice": args.voice,
        "fallback": None if args.no_fallback else "espeak-ng",
        "max_concurrency": args.max_concurrency,
        "warmup": not args.no_preload,
    }
    return _engine_node(args, "tts", options)


def _node_app(kind: str, settings: Any, options: dict[str, object], name: str) -> tuple[str, Any]:
    """The model and app of `megacity engine <kind>` (ValueError for bad options)."""
    if kind == "speech":
        from megacity.api.speech_node import create_speech_node
        from megacity.engines.speech import SpeechEngineConfig

        speech = SpeechEngineConfig.from_options(options)
        return speech.model, create_speech_node(settings, speech, name)
    if kind == "pose":
        from megacity.api.pose_node import create_pose_node
        from megacity.engines.pose import PoseEngineConfig

        pose = PoseEngineConfig.from_options(options)
        return pose.model_path, create_pose_node(settings, pose, name)
    from megacity.api.generation_node import create_image_node, create_tts_node
    from megacity.engines.image import ImageEngineConfig
    from megacity.engines.tts import TTSEngineConfig

    if kind == "image":
        image = ImageEngineConfig.from_options(options)
        return image.model, create_image_node(settings, image, name)
    tts = TTSEngineConfig.from_options(options)
    return tts.model, create_tts_node(settings, tts, name)


def _engine_node(args: argparse.Namespace, kind: str, options: dict[str, object]) -> int:
    """Validate the node's options, then serve `megacity engine <kind>` until stopped."""
    from megacity.config.settings import Settings
    from megacity.observability.logging import configure_logging

    try:
        settings = Settings(host=args.host, port=args.port)
        model, app = _node_app(kind, settings, options, args.name)
    except (ValueError, ValidationError) as exc:
        print(f"megacity: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level)
    log.info(f"{kind} node starting", extra={"port": args.port, "model": model})
    _run_server(app, args.host, args.port, settings.shutdown_grace_s)
    return 0


def _demo(args: argparse.Namespace) -> int:
    # Local development: no tokens needed (the router says so loudly at start) unless
    # MEGACITY_AUTH_ENABLED is set explicitly.
    os.environ.setdefault("MEGACITY_AUTH_ENABLED", "false")
    # With auth off, switching a model version needs the admin token: make one up, so the
    # dashboard's activation can be tried at once.
    if "MEGACITY_ADMIN_TOKEN" not in os.environ:
        os.environ["MEGACITY_ADMIN_TOKEN"] = secrets.token_urlsafe(12)
        print(
            "megacity demo: admin token for model activation (dashboard, API): "
            + os.environ["MEGACITY_ADMIN_TOKEN"],
            file=sys.stderr,
        )
    settings = _load_settings(args)
    if settings is None:
        return 2
    print(
        f"megacity demo: open http://{settings.host}:{settings.port}/ "
        "(dashboard, voice and dance demos, tutor chat, API docs)",
        file=sys.stderr,
    )
    children = []
    for node in settings.topo.nodes:
        url = urlsplit(node.url)
        if node.engine not in ("llm", "vision") or url.hostname not in LOOPBACK or url.port is None:
            continue
        cmd = [
            sys.executable,
            "-m",
            "megacity",
            "standin",
            "--port",
            str(url.port),
            "--name",
            node.name,
            "--models",
            *node.models,
        ]
        children.append(subprocess.Popen(cmd, env=os.environ.copy()))
        print(f"megacity demo: stand-in {node.engine} {node.name} on {node.url}", file=sys.stderr)
    time.sleep(0.3 if children else 0)
    try:
        return _serve(args)
    finally:
        for child in children:
            child.terminate()
        for child in children:
            child.wait(timeout=5)
