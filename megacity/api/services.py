"""The composition root: every component the handlers use, built once from the settings."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from pathlib import Path

from megacity.auth import ApiKeyVerifier, Authenticator, KeySet, TokenVerifier
from megacity.config.settings import Settings
from megacity.config.topology import Topology
from megacity.db import Database, build_database
from megacity.engines.face import FaceEngine, FaceEngineConfig
from megacity.engines.fetch import FetchLimits, MediaFetcher
from megacity.engines.generation import watermark_key
from megacity.engines.generation_http import GenerationHTTPClient
from megacity.engines.image import ImageEngine, ImageEngineConfig
from megacity.engines.local import engine_config
from megacity.engines.openai_http import OpenAIHTTPClient, Timeouts
from megacity.engines.pose import PoseEngine, PoseEngineConfig
from megacity.engines.pose_http import PoseHTTPClient
from megacity.engines.speech import SpeechEngine, SpeechEngineConfig
from megacity.engines.speech_http import SpeechHTTPClient
from megacity.engines.tts import TTSEngine, TTSEngineConfig
from megacity.jobs import JobService, default_handlers
from megacity.observability.anonymize import UserHasher
from megacity.observability.metrics import Metrics
from megacity.pipelines.dance import DanceLab
from megacity.pipelines.generation import GenerationStudio
from megacity.pipelines.guard import LLMGuard
from megacity.pipelines.voice import VoiceAnalyzer
from megacity.prompts.library import StrategyLibrary
from megacity.routing.balancer import Balancer
from megacity.routing.chat_media import ChatMedia, MediaLimits
from megacity.routing.dispatch import Dispatcher
from megacity.routing.gateway import LLMGateway
from megacity.routing.generation import GenerationGateway
from megacity.routing.health import HealthMonitor
from megacity.routing.pose import PoseGateway
from megacity.routing.registry import ModelRegistry
from megacity.routing.selector import ModelSelector
from megacity.routing.speech import SpeechGateway
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
from megacity.storage import ObjectStore, build_object_store

log = logging.getLogger("megacity.services")
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
        self.metrics = Metrics(lambda: self.balancer.nodes.values())
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
        self.speech = SpeechGateway(
            self.selector,
            self.balancer,
            self.speech_engines,
            self.metrics,
            max_audio_s=settings.speech_max_audio_s,
            queue_timeout_s=settings.queue_timeout_s,
            retry_after_s=settings.retry_after_s,
        )
        self.voice = VoiceAnalyzer(self.speech)
        self.pose = PoseGateway(
            self.selector,
            self.balancer,
            self.pose_engines,
            self.metrics,
            max_video_s=settings.dance_max_video_s,
            timeout_s=settings.pose_timeout_s,
            queue_timeout_s=settings.queue_timeout_s,
            retry_after_s=settings.retry_after_s,
        )
        self.storage: ObjectStore = build_object_store(settings)
        self.db: Database = build_database(settings)
        self.dance = DanceLab(self.pose, self.storage, self.db)
        self.generation = GenerationGateway(
            self.selector,
            self.registry,
            self.balancer,
            self.image_engines,
            self.tts_engines,
            self.metrics,
            watermark_key=watermark_key(settings),
            timeout_s=settings.generation_timeout_s,
            queue_timeout_s=settings.queue_timeout_s,
            retry_after_s=settings.retry_after_s,
        )
        self.studio = GenerationStudio(self.generation, self.storage, self.db)
        self.job_handlers = default_handlers()
        self.studio.register(self.job_handlers)
        self.jobs = JobService.from_settings(
            settings, self.db, self.job_handlers, store=self.storage
        )
        self._warmups: list[asyncio.Task[None]] = []
        self._safety(settings)
        self._multimodal(settings)

    def _multimodal(self, settings: Settings) -> None:
        """The face route and the multimodal tutor (inline, and as the `multimodal` job).

        Imported here: the tutor pulls in the motion, speech and vision stacks."""
        from megacity.pipelines.multimodal.extractors import Tools
        from megacity.pipelines.multimodal.job import MultimodalJobs
        from megacity.pipelines.multimodal.tutor import MultimodalTutor
        from megacity.pipelines.multimodal.voice import SpokenSummary
        from megacity.routing.face import FaceGateway

        self.face = FaceGateway(
            self.selector,
            self.balancer,
            self.face_engines,
            self.metrics,
            max_video_s=settings.multimodal.max_video_s,
            queue_timeout_s=settings.queue_timeout_s,
            retry_after_s=settings.retry_after_s,
        )
        tools = Tools(
            selector=self.selector,
            speech=self.speech,
            pose=self.pose,
            dance=self.dance,
            face=self.face,
            llm=self.llm,
            prompts=StrategyLibrary.load(MULTIMODAL_PROMPTS),
            policy=settings.multimodal,
            max_pixels=settings.media_max_pixels,
        )
        voice = SpokenSummary(self.generation, self.jobs, settings.tts_max_chars)
        self.tutor = MultimodalTutor(tools, self.guard, self.metrics, voice=voice)
        self.multimodal_jobs = MultimodalJobs(
            self.tutor, self.storage, self.db, self.selector, self.hasher
        )
        self.multimodal_jobs.register(self.job_handlers)

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
            api_keys = ApiKeyVerifier(self.db, cache_s=settings.auth_api_key_cache_s)
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
        if self.settings.db_auto_upgrade:
            await asyncio.to_thread(self.db.upgrade)
        await self.jobs.start()  # the embedded worker needs the jobs table
        await self.client.start()
        self.pose.client = PoseHTTPClient(
            self.client.session,
            connect_s=self.settings.connect_timeout_s,
            total_s=self.settings.pose_timeout_s,
        )
        self.speech.client = SpeechHTTPClient(
            self.client.session,
            connect_s=self.settings.connect_timeout_s,
            total_s=self.settings.speech_timeout_s,
        )
        self.generation.client = GenerationHTTPClient(
            self.client.session,
            connect_s=self.settings.connect_timeout_s,
            total_s=self.settings.generation_timeout_s,
        )
        engines: list[SpeechEngine | PoseEngine | ImageEngine | TTSEngine | FaceEngine] = [
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

    async def stop(self) -> None:
        if self.health is not None:
            await self.health.stop()
        for task in self._warmups:
            task.cancel()
        for speech in self.speech_engines.values():
            speech.close()
        for pose in self.pose_engines.values():
            pose.close()
        for image in self.image_engines.values():
            image.close()
        for tts in self.tts_engines.values():
            tts.close()
        for face in self.face_engines.values():
            face.close()
        await self.fetcher.close()
        await self.client.close()
        await self.jobs.stop()
        if self.limiter is not None:
            await self.limiter.close()
        if self.abuse is not None:
            await self.abuse.close()
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
    handlers = services.job_handlers.only(kinds) if kinds else services.job_handlers
    await services.start()
    try:
        await serve(settings, services.db, handlers, concurrency, store=services.storage)
    finally:
        await services.stop()
