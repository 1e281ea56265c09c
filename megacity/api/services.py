"""The composition root: every component the handlers use, built once from the settings.

What an LLM request needs is built at once. The rest — the speech, pose and generation
gateways and their in-process engines, the object store, the database and the job
queue — is built on first use: a router whose topology has only LLM nodes then never
imports numpy, PyAV, SQLAlchemy or boto3, and starts in a fraction of the time. With
other engines in the topology the database is migrated and the job worker started at
start-up, as before.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from megacity.auth.apikeys import ApiKeyVerifier
from megacity.auth.authenticator import Authenticator
from megacity.auth.keys import KeySet
from megacity.auth.tokens import TokenVerifier
from megacity.config.settings import Settings
from megacity.config.topology import Engine, Topology
from megacity.engines.fetch import FetchLimits, MediaFetcher
from megacity.engines.openai_http import OpenAIHTTPClient, Timeouts
from megacity.observability.anonymize import UserHasher
from megacity.observability.metrics import Metrics
from megacity.observability.nodes import node_view
from megacity.observability.replicas import Board, LocalBoard, build_board
from megacity.observability.rolling import RollingStats
from megacity.pipelines.guard import LLMGuard
from megacity.prompts.library import StrategyLibrary
from megacity.routing.balancer import Balancer
from megacity.routing.chat_media import ChatMedia, MediaLimits
from megacity.routing.dispatch import Dispatcher
from megacity.routing.gateway import LLMGateway
from megacity.routing.health import HealthMonitor
from megacity.routing.registry import ModelRegistry
from megacity.routing.selector import ModelSelector
from megacity.safety.abuse import (
    AbuseDetector,
    AbusePolicy,
    MemoryAbuseDetector,
    RedisAbuseDetector,
)
from megacity.safety.firewall import PromptFirewall
from megacity.safety.identity import ProtectedIdentities
from megacity.safety.moderation import load_moderator
from megacity.safety.pii import PIIMasker
from megacity.safety.ratelimit import MemoryRateLimiter, RateLimiter, RedisRateLimiter
from megacity.safety.ssrf import AddressPolicy

if TYPE_CHECKING:
    from megacity.db import Database
    from megacity.db.replica import Reads
    from megacity.engines.face import FaceEngine
    from megacity.engines.image import ImageEngine
    from megacity.engines.pose import PoseEngine
    from megacity.engines.speech import SpeechEngine
    from megacity.engines.tts import TTSEngine
    from megacity.jobs import Handlers, JobService
    from megacity.pipelines.dance import DanceLab
    from megacity.pipelines.generation import GenerationStudio
    from megacity.pipelines.multimodal.job import MultimodalJobs
    from megacity.pipelines.multimodal.tutor import MultimodalTutor
    from megacity.pipelines.voice import VoiceAnalyzer
    from megacity.pipelines.voice_references import VoiceReferences
    from megacity.routing.activation import ActivationSync
    from megacity.routing.face import FaceGateway
    from megacity.routing.generation import GenerationGateway
    from megacity.routing.pose import PoseGateway
    from megacity.routing.speech import SpeechGateway
    from megacity.storage import ObjectStore

log = logging.getLogger("megacity.services")
T = TypeVar("T")
MULTIMODAL_PROMPTS = Path(__file__).resolve().parents[1] / "prompts" / "strategies" / "multimodal"


class Services:
    """Holds the router's components; `start()`/`stop()` run in the app's lifespan."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.topology: Topology = settings.topo
        self.started_at = time.time()
        self.registry = ModelRegistry(self.topology)
        self.selector = ModelSelector(self.topology, self.registry)
        self.strategies = StrategyLibrary.load()
        self.balancer = Balancer(
            self.topology,
            default_region=settings.region,
            breaker_failures=settings.breaker_failures,
            breaker_reset_s=settings.breaker_reset_s,
        )
        self.rolling = RollingStats()
        self.metrics = Metrics(lambda: self.balancer.nodes.values(), self.rolling)
        self.client = OpenAIHTTPClient(
            Timeouts(
                connect_s=settings.connect_timeout_s,
                first_byte_s=settings.first_byte_timeout_s,
                read_s=settings.read_timeout_s,
            )
        )
        self.dispatcher = Dispatcher(
            self.balancer,
            self.client,
            self.metrics,
            queue_timeout_s=settings.queue_timeout_s,
            retry_after_s=settings.retry_after_s,
        )
        self.fetcher = MediaFetcher(  # image/video URLs of chats: opened on first use
            AddressPolicy(settings.media_fetch_allow_networks),
            FetchLimits(
                max_bytes=settings.media_max_image_bytes,
                timeout_s=settings.media_fetch_timeout_s,
                max_redirects=settings.media_fetch_max_redirects,
            ),
        )
        self.chat_media = ChatMedia(self.fetcher, _media_limits(settings))
        self.llm = LLMGateway(self.selector, self.strategies, self.dispatcher, self.chat_media)
        self.health: HealthMonitor | None = None
        self.speech_engines: dict[str, SpeechEngine] = {}
        self.pose_engines: dict[str, PoseEngine] = {}
        self.image_engines: dict[str, ImageEngine] = {}
        self.tts_engines: dict[str, TTSEngine] = {}
        self.face_engines: dict[str, FaceEngine] = {}
        if any(n.in_process for n in self.topology.nodes):
            self._local_engines()
        # Only LLM nodes: the database, object store and job queue wait for a request
        # that needs them (API keys, feedback, consents, jobs) instead of the start.
        self.llm_only = all(n.engine is Engine.LLM for n in self.topology.nodes)
        self._versioned = any(len(m.versions) > 1 for m in self.topology.models)
        self._build_lock = threading.RLock()
        self._warmups: list[asyncio.Task[None]] = []
        self._jobs_started: asyncio.Task[None] | None = None
        self._safety(settings)
        self.board: Board = build_board(
            settings.redis_url,
            self.rolling,
            self.node_views,
            prefix=settings.dashboard_key_prefix,
            flush_s=settings.dashboard_flush_s,
        )

    def _local_engines(self) -> None:
        """Build the in-process engines of `url: local` nodes (their models load lazily)."""
        from megacity.engines.face import FaceEngine, FaceEngineConfig
        from megacity.engines.image import ImageEngine, ImageEngineConfig
        from megacity.engines.local import engine_config
        from megacity.engines.pose import PoseEngine, PoseEngineConfig
        from megacity.engines.speech import SpeechEngine, SpeechEngineConfig
        from megacity.engines.tts import TTSEngine, TTSEngineConfig

        for state in self.balancer.nodes.values():
            node = state.node
            if not node.in_process:
                continue
            config = engine_config(node)
            if isinstance(config, SpeechEngineConfig):
                self.speech_engines[node.name] = SpeechEngine(config, node.name)
                state.health_reason = f"in-process speech engine, model {config.model!r}"
            elif isinstance(config, PoseEngineConfig):
                self.pose_engines[node.name] = PoseEngine(config, node.name)
                state.health_reason = f"in-process pose engine, model {config.model_path!r}"
            elif isinstance(config, ImageEngineConfig):
                self.image_engines[node.name] = ImageEngine(config, node.name)
                state.health_reason = f"in-process image engine, model {config.model!r}"
            elif isinstance(config, TTSEngineConfig):
                self.tts_engines[node.name] = TTSEngine(config, node.name)
                state.health_reason = f"in-process TTS engine, model {config.model!r}"
            elif isinstance(config, FaceEngineConfig):
                self.face_engines[node.name] = FaceEngine(config, node.name)
                state.health_reason = f"in-process face engine, model {config.model_path!r}"
            else:
                # In-process engines register themselves here once they are built in.
                state.healthy = False
                state.health_reason = f"in-process {node.engine} engine is not available"

    # --- built on first use ------------------------------------------------------------

    def _lazy(self, name: str, build: Callable[[], T]) -> T:
        """The component `name`, built once (threads may ask at the same time)."""
        value = self.__dict__.get(name)
        if value is None:
            with self._build_lock:
                value = self.__dict__.get(name)
                if value is None:
                    value = build()
                    self.__dict__[name] = value
        return value

    def built(self, name: str) -> bool:
        """Whether a lazily built component exists yet (stop() closes only those)."""
        return name in self.__dict__

    @property
    def speech(self) -> SpeechGateway:
        return self._lazy("speech", self._build_speech)

    def _build_speech(self) -> SpeechGateway:
        from megacity.routing.speech import SpeechGateway

        s = self.settings
        gateway = SpeechGateway(
            self.selector,
            self.balancer,
            self.speech_engines,
            self.metrics,
            max_audio_s=s.speech_max_audio_s,
            queue_timeout_s=s.queue_timeout_s,
            retry_after_s=s.retry_after_s,
        )
        self._connect(gateway)
        return gateway

    def _connect(self, gateway: SpeechGateway | PoseGateway | GenerationGateway) -> None:
        """Give an engine gateway its HTTP client (the session exists once started)."""
        if self.client.session_or_none is None or gateway.client is not None:
            return
        from megacity.engines.generation_http import GenerationHTTPClient
        from megacity.engines.pose_http import PoseHTTPClient
        from megacity.engines.speech_http import SpeechHTTPClient
        from megacity.routing.generation import GenerationGateway
        from megacity.routing.pose import PoseGateway

        s, session = self.settings, self.client.session
        if isinstance(gateway, PoseGateway):
            gateway.client = PoseHTTPClient(
                session, connect_s=s.connect_timeout_s, total_s=s.pose_timeout_s
            )
        elif isinstance(gateway, GenerationGateway):
            gateway.client = GenerationHTTPClient(
                session, connect_s=s.connect_timeout_s, total_s=s.generation_timeout_s
            )
        else:
            gateway.client = SpeechHTTPClient(
                session, connect_s=s.connect_timeout_s, total_s=s.speech_timeout_s
            )

    @property
    def voice_references(self) -> VoiceReferences:
        from megacity.pipelines.voice_references import VoiceReferences

        return self._lazy(
            "voice_references",
            lambda: VoiceReferences(
                self.speech, self.storage, self.db, max_audio_s=self.settings.speech_max_audio_s
            ),
        )

    @property
    def voice(self) -> VoiceAnalyzer:
        from megacity.pipelines.voice import VoiceAnalyzer

        return self._lazy(
            "voice",
            lambda: VoiceAnalyzer(
                self.speech, self.voice_references, max_audio_s=self.settings.speech_max_audio_s
            ),
        )

    @property
    def pose(self) -> PoseGateway:
        return self._lazy("pose", self._build_pose)

    def _build_pose(self) -> PoseGateway:
        from megacity.routing.pose import PoseGateway

        s = self.settings
        gateway = PoseGateway(
            self.selector,
            self.balancer,
            self.pose_engines,
            self.metrics,
            max_video_s=s.dance_max_video_s,
            timeout_s=s.pose_timeout_s,
            queue_timeout_s=s.queue_timeout_s,
            retry_after_s=s.retry_after_s,
        )
        self._connect(gateway)
        return gateway

    @property
    def storage(self) -> ObjectStore:
        from megacity.storage import build_object_store

        return self._lazy("storage", lambda: build_object_store(self.settings))

    @property
    def db(self) -> Database:
        return self._lazy("db", self._open_database)

    def _open_database(self) -> Database:
        from megacity.db import build_database

        db = build_database(self.settings)
        if self.llm_only and self.settings.db_auto_upgrade:
            db.upgrade()  # the first request that needs it; otherwise start() did
        return db

    @property
    def reads(self) -> Reads:
        """Where a read goes: the read replica, or the primary after the caller's own write."""
        return self._lazy("reads", self._build_reads)

    def _build_reads(self) -> Reads:
        from megacity.db.replica import MemoryWriteMarks, Reads, RedisWriteMarks, WriteMarks

        s = self.settings
        marks: WriteMarks = (
            RedisWriteMarks.from_url(s.redis_url)
            if s.redis_url and self.db.replica is not None
            else MemoryWriteMarks()
        )
        return Reads(self.db, marks, window_s=s.db_read_your_writes_s)

    @property
    def activations(self) -> ActivationSync:
        """Model-version activations, stored and shared by every replica."""
        return self._lazy("activations", self._build_activations)

    def _build_activations(self) -> ActivationSync:
        from megacity.routing.activation import ActivationSync

        return ActivationSync(
            self.registry, self.db, interval_s=self.settings.registry_sync_interval_s
        )

    @property
    def dance(self) -> DanceLab:
        from megacity.pipelines.dance import DanceLab

        return self._lazy("dance", lambda: DanceLab(self.pose, self.storage, self.db))

    @property
    def generation(self) -> GenerationGateway:
        return self._lazy("generation", self._build_generation)

    def _build_generation(self) -> GenerationGateway:
        from megacity.engines.generation import watermark_key
        from megacity.routing.generation import GenerationGateway

        s = self.settings
        gateway = GenerationGateway(
            self.selector,
            self.registry,
            self.balancer,
            self.image_engines,
            self.tts_engines,
            self.metrics,
            watermark_key=watermark_key(s),
            timeout_s=s.generation_timeout_s,
            queue_timeout_s=s.queue_timeout_s,
            retry_after_s=s.retry_after_s,
        )
        self._connect(gateway)
        return gateway

    @property
    def studio(self) -> GenerationStudio:
        from megacity.pipelines.generation import GenerationStudio

        return self._lazy(
            "studio", lambda: GenerationStudio(self.generation, self.storage, self.db)
        )

    @property
    def face(self) -> FaceGateway:
        return self._lazy("face", self._build_face)

    def _build_face(self) -> FaceGateway:
        from megacity.routing.face import FaceGateway

        s = self.settings
        return FaceGateway(
            self.selector,
            self.balancer,
            self.face_engines,
            self.metrics,
            max_video_s=s.multimodal.max_video_s,
            queue_timeout_s=s.queue_timeout_s,
            retry_after_s=s.retry_after_s,
        )

    @property
    def tutor(self) -> MultimodalTutor:
        """The multimodal tutor; it pulls in the motion, speech and vision stacks."""
        return self._lazy("tutor", self._build_tutor)

    def _build_tutor(self) -> MultimodalTutor:
        from megacity.pipelines.multimodal.extractors import Tools
        from megacity.pipelines.multimodal.tutor import MultimodalTutor
        from megacity.pipelines.multimodal.voice import SpokenSummary

        s = self.settings
        tools = Tools(
            selector=self.selector,
            speech=self.speech,
            pose=self.pose,
            dance=self.dance,
            face=self.face,
            llm=self.llm,
            prompts=StrategyLibrary.load(MULTIMODAL_PROMPTS),
            policy=s.multimodal,
            max_pixels=s.media_max_pixels,
            voices=self.voice_references,
            max_audio_s=s.speech_max_audio_s,
        )
        # The job service is read when a summary is spoken: it registers the tutor's job.
        voice = SpokenSummary(self.generation, lambda: self.jobs, s.tts_max_chars)
        return MultimodalTutor(tools, self.guard, self.metrics, voice=voice)

    @property
    def multimodal_jobs(self) -> MultimodalJobs:
        return self._lazy("multimodal_jobs", self._build_multimodal_jobs)

    def _build_multimodal_jobs(self) -> MultimodalJobs:
        from megacity.pipelines.multimodal.job import MultimodalJobs

        return MultimodalJobs(self.tutor, self.storage, self.db, self.selector, self.hasher)

    @property
    def job_handlers(self) -> Handlers:
        return self._lazy("job_handlers", self._build_handlers)

    def _build_handlers(self) -> Handlers:
        from megacity.jobs import default_handlers

        handlers = default_handlers()
        self.studio.register(handlers)
        self.multimodal_jobs.register(handlers)
        return handlers

    @property
    def jobs(self) -> JobService:
        return self._lazy("jobs", self._build_jobs)

    def _build_jobs(self) -> JobService:
        from megacity.jobs import JobService

        jobs = JobService.from_settings(
            self.settings, self.db, self.job_handlers, store=self.storage
        )
        if self.llm_only and self.client.session_or_none is not None:
            # Built after start-up by a request: its embedded worker starts now.
            self._jobs_started = asyncio.get_running_loop().create_task(jobs.start())
        return jobs

    def node_views(self) -> list[dict[str, Any]]:
        """Every node as the dashboard shows it (this replica's view)."""
        engines: dict[str, Any] = {
            **self.speech_engines,
            **self.pose_engines,
            **self.image_engines,
            **self.tts_engines,
        }
        return [node_view(s, engines.get(s.name)) for s in self.balancer.nodes.values()]

    def _safety(self, settings: Settings) -> None:
        """Auth, limits, abuse detection, the LLM guard and the protected identities."""
        self.hasher = UserHasher.from_settings(settings)
        self.auth_keys: KeySet | None = None
        self.authenticator: Authenticator | None = None
        if settings.auth_enabled:
            trusted = settings.auth_trusted_regions or tuple(r.name for r in self.topology.regions)
            self.auth_keys = KeySet(
                settings.keys_dir,
                trusted_regions=trusted,
                reload_interval_s=settings.auth_reload_interval_s,
            )
            tokens = TokenVerifier(
                self.auth_keys,
                leeway_s=settings.auth_leeway_s,
                max_ttl_s=settings.auth_max_token_ttl_s,
            )
            api_keys = ApiKeyVerifier(lambda: self.db, cache_s=settings.auth_api_key_cache_s)
            self.authenticator = Authenticator(tokens, api_keys)
        limits = settings.limits
        self.limiter: RateLimiter | None = None
        self.abuse: AbuseDetector | None = None
        if limits.enabled:
            # The abuse thresholds are the LimitsPolicy fields of the same names.
            names = [f.name for f in dataclasses.fields(AbusePolicy)]
            policy = AbusePolicy(**limits.model_dump(include=set(names)))
            if settings.redis_url:
                self.limiter = RedisRateLimiter.from_url(
                    settings.redis_url, fail_open=limits.fail_open
                )
                self.abuse = RedisAbuseDetector.from_url(settings.redis_url, policy)
            else:
                self.limiter = MemoryRateLimiter()
                self.abuse = MemoryAbuseDetector(policy)
        self.guard = LLMGuard(
            firewall=PromptFirewall(),
            moderator=load_moderator(settings.moderator),
            masker=PIIMasker(),
            limiter=self.limiter,
            abuse=self.abuse,
            limits=limits,
            metrics=self.metrics,
            log_prompts=settings.log_prompts,
        )
        path = settings.protected_identities_file
        self.identities = ProtectedIdentities.load(path) if path is not None else None

    def announce(self) -> None:
        """Say loudly at start-up what is switched off that should not be in production."""
        if not self.settings.auth_enabled:
            log.warning(
                "AUTH IS DISABLED (MEGACITY_AUTH_ENABLED=false): every request is served as "
                "an anonymous admin and X-User-Id is taken on trust. Local development only."
            )
        elif self.auth_keys is not None and not self.auth_keys.loaded():
            log.warning(
                "auth is on but no region key was found in %s: only service API keys can "
                "authenticate (create keys with `megacity keys generate --region R`)",
                self.settings.keys_dir,
            )
        if not self.settings.limits.enabled:
            log.warning("rate limits and abuse detection are disabled (MEGACITY_LIMITS)")

    async def start(self) -> None:
        self.announce()
        if not self.llm_only:
            if self.settings.db_auto_upgrade:
                await asyncio.to_thread(self.db.upgrade)
            await self.jobs.start()  # the embedded worker needs the jobs table
        if not self.llm_only or self._versioned:
            # The versions activated at run time, shared by every replica. A topology
            # whose models have one version each has nothing to activate, and an
            # LLM-only one then opens no database at start.
            await self.activations.start()
        await self.client.start()
        if not self.llm_only:  # built now (jobs may have built some): give them their client
            self._connect(self.speech)
            self._connect(self.pose)
            self._connect(self.generation)
        for name in ("speech", "pose", "generation"):
            if self.llm_only and self.built(name):
                self._connect(getattr(self, name))
        engines: list[Any] = [
            *self.speech_engines.values(),
            *self.pose_engines.values(),
            *self.image_engines.values(),
            *self.tts_engines.values(),
            *self.face_engines.values(),
        ]
        for engine in engines:
            if engine.config.warmup:  # in the background: start-up stays fast
                self._warmups.append(asyncio.create_task(engine.warm_up()))
        self.health = HealthMonitor(
            self.balancer.nodes.values(),
            self.client.session,
            interval_s=self.settings.health_interval_s,
            timeout_s=self.settings.health_timeout_s,
        )
        await self.health.start()
        await self.board.start()

    async def stop(self) -> None:
        await self.board.stop()
        if self.built("activations"):
            await self.activations.stop()
        if self.health is not None:
            await self.health.stop()
        for task in self._warmups:
            task.cancel()
        engines: list[Any] = [
            *self.speech_engines.values(),
            *self.pose_engines.values(),
            *self.image_engines.values(),
            *self.tts_engines.values(),
            *self.face_engines.values(),
        ]
        for engine in engines:
            engine.close()
        await self.fetcher.close()
        await self.client.close()
        if self._jobs_started is not None:
            await asyncio.gather(self._jobs_started, return_exceptions=True)
        if self.built("jobs"):
            await self.jobs.stop()
        if self.built("reads"):
            await self.reads.close()
        if self.limiter is not None:
            await self.limiter.close()
        if self.abuse is not None:
            await self.abuse.close()
        if self.built("db"):
            self.db.close()


def _media_limits(settings: Settings) -> MediaLimits:
    return MediaLimits(
        max_parts=settings.media_max_parts,
        max_images=settings.media_max_images,
        max_image_bytes=settings.media_max_image_bytes,
        max_video_bytes=settings.media_max_video_bytes,
        max_audio_bytes=settings.media_max_audio_bytes,
        max_pixels=settings.media_max_pixels,
        keyframes=settings.media_keyframes,
        max_video_s=settings.multimodal.max_video_s,
        max_audio_s=settings.speech_max_audio_s,
    )


async def serve_jobs(settings: Settings, kinds: list[str] | None, concurrency: int) -> None:
    """`megacity worker`: the router's components without HTTP, running its job kinds.

    The generation jobs need what the router has (topology, balancer, engines, object
    store), so a worker builds the same Services; its own jobs come from the queue, never
    from an embedded worker of its own.
    """
    from megacity.jobs.serve import serve

    services = Services(settings.model_copy(update={"jobs_embedded_worker": False}))
    # A worker serves no dashboard and is no router replica: it publishes no node views.
    services.board = LocalBoard(services.rolling, services.node_views)
    handlers = services.job_handlers.only(kinds) if kinds else services.job_handlers
    await services.start()
    try:
        await serve(settings, services.db, handlers, concurrency, store=services.storage)
    finally:
        await services.stop()
