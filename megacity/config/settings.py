"""The one settings object: environment variables (MEGACITY_*) plus the topology file."""

from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from megacity.config.limits import LimitsPolicy
from megacity.config.multimodal import MultimodalPolicy
from megacity.config.retention import RetentionPolicy
from megacity.config.topology import Topology, TopologyError, load_topology

DEFAULT_TOPOLOGY = Path(__file__).resolve().parents[2] / "examples" / "topology.yaml"
DEFAULT_PROTECTED_IDENTITIES = DEFAULT_TOPOLOGY.with_name("protected_identities.yaml")


class Settings(BaseSettings):
    """Router settings; build once with `Settings.load()` and pass it to `create_app`."""

    model_config = SettingsConfigDict(env_prefix="MEGACITY_", extra="ignore", frozen=True)

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    config: Path = DEFAULT_TOPOLOGY
    region: str | None = None  # this router's own region; X-Region overrides it per request
    admin_token: SecretStr | None = None
    log_level: str = "INFO"
    request_log: bool = True
    # After start-up, move every object built so far out of the garbage collector's view
    # (gc.freeze): its full collections then walk only what requests create, not the
    # whole heap of imported modules (they took ~100 ms every couple of seconds).
    gc_freeze: bool = True
    # On SIGTERM the server stops accepting connections, then gives the requests still open
    # (LLM streams, uploads being scored) this long to finish before it closes them.
    shutdown_grace_s: float = Field(default=5.0, ge=0, le=3600)

    max_body_bytes: int = Field(default=4 * 1024 * 1024, ge=1024)
    connect_timeout_s: float = Field(default=2.0, gt=0)
    first_byte_timeout_s: float = Field(default=60.0, gt=0)  # until the upstream's headers
    read_timeout_s: float = Field(default=60.0, gt=0)  # between two chunks of a body / stream
    queue_timeout_s: float = Field(default=2.0, ge=0)  # wait for a free slot when all are full
    retry_after_s: int = Field(default=1, ge=1)

    health_interval_s: float = Field(default=2.0, gt=0)
    health_timeout_s: float = Field(default=1.0, gt=0)
    breaker_failures: int = Field(default=3, ge=1)
    breaker_reset_s: float = Field(default=5.0, gt=0)
    # Model versions activated at run time live in the database; every replica polls them.
    registry_sync_interval_s: float = Field(default=2.0, gt=0)

    # Speech: the upload limit (413 above it), the longest audio accepted, and how long a
    # remote speech node may take to answer one transcription.
    speech_max_upload_bytes: int = Field(default=25 * 1024 * 1024, ge=1024)
    speech_max_audio_s: float = Field(default=600.0, gt=0)
    speech_timeout_s: float = Field(default=300.0, gt=0)

    # Motion: the video upload limit, the longest clip accepted, and how long a remote
    # pose node may take to answer one extraction.
    dance_max_upload_bytes: int = Field(default=200 * 1024 * 1024, ge=1024)
    dance_max_video_s: float = Field(default=300.0, gt=0)
    dance_max_keypoints_bytes: int = Field(default=32 * 1024 * 1024, ge=1024)  # JSON body
    pose_timeout_s: float = Field(default=600.0, gt=0)

    # Generation (thumbnails, TTS): jobs of kind "thumbnail" and "tts". The OpenAI-style
    # endpoints wait up to generation_wait_s for their job, then answer 504 with its id;
    # a remote image/TTS node may take generation_timeout_s for one request. Every
    # artefact carries an invisible watermark keyed by watermark_key (default: the
    # public MegaCity key, so anyone with `megacity watermark verify` can check it).
    generation_wait_s: float = Field(default=120.0, gt=0)
    generation_timeout_s: float = Field(default=300.0, gt=0)
    tts_max_chars: int = Field(default=4096, ge=1, le=100_000)
    watermark_key: SecretStr | None = None

    # State. Embedded defaults live under data_dir: SQLite (megacity.db) and a local
    # folder as object store (objects/). DATABASE_URL switches to PostgreSQL.
    data_dir: Path = Path("var")
    database_url: str | None = Field(
        default=None, validation_alias=AliasChoices("MEGACITY_DATABASE_URL", "DATABASE_URL")
    )
    # A streaming replica for the reads that tolerate its lag; the primary serves writes, a
    # caller's reads within db_read_your_writes_s of its own write, and every read while
    # the replica is down or more than db_replica_max_lag_s behind.
    database_read_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("MEGACITY_DATABASE_READ_URL", "DATABASE_READ_URL"),
    )
    db_read_your_writes_s: float = Field(default=5.0, ge=0)
    db_replica_max_lag_s: float = Field(default=30.0, gt=0)
    db_auto_upgrade: bool = True  # apply migrations at start (else: `megacity db upgrade`)
    storage_dir: Path | None = None  # default: data_dir / "objects"
    public_url: str | None = None  # base of signed download URLs (default: http://host:port)
    url_signing_key: SecretStr | None = None  # default: a key file kept in data_dir
    signed_url_ttl_s: int = Field(default=3600, ge=1, le=7 * 24 * 3600)

    # S3-compatible object store (MinIO, Cloudflare R2, Backblaze B2, AWS): used instead of
    # the local folder when S3_BUCKET is set. Without keys, boto3's own chain (AWS_*
    # variables, instance roles) supplies credentials.
    s3_endpoint_url: str | None = Field(
        default=None, validation_alias=AliasChoices("MEGACITY_S3_ENDPOINT_URL", "S3_ENDPOINT_URL")
    )
    s3_bucket: str | None = Field(
        default=None, validation_alias=AliasChoices("MEGACITY_S3_BUCKET", "S3_BUCKET")
    )
    s3_access_key_id: str | None = Field(
        default=None,
        validation_alias=AliasChoices("MEGACITY_S3_ACCESS_KEY_ID", "S3_ACCESS_KEY_ID"),
    )
    s3_secret_access_key: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("MEGACITY_S3_SECRET_ACCESS_KEY", "S3_SECRET_ACCESS_KEY"),
    )
    s3_region: str = Field(
        default="us-east-1", validation_alias=AliasChoices("MEGACITY_S3_REGION", "S3_REGION")
    )
    s3_prefix: str = Field(  # keys live under this prefix in the bucket ("" or ending in "/")
        default="", validation_alias=AliasChoices("MEGACITY_S3_PREFIX", "S3_PREFIX")
    )
    s3_connect_timeout_s: float = Field(default=5.0, gt=0)
    s3_read_timeout_s: float = Field(default=60.0, gt=0)
    s3_max_attempts: int = Field(default=3, ge=1, le=10)  # per request, retries included
    # Retention per object kind (megacity/config/retention.py); MEGACITY_RETENTION as JSON.
    retention: RetentionPolicy = Field(default_factory=RetentionPolicy)

    # Jobs. With REDIS_URL, jobs go through Redis Streams to `megacity worker` processes;
    # without it an in-process worker runs them from the jobs table.
    redis_url: str | None = Field(
        default=None, validation_alias=AliasChoices("MEGACITY_REDIS_URL", "REDIS_URL")
    )
    jobs_key_prefix: str = "megacity:jobs"  # Redis keys: {prefix}:<region>:stream:<priority>:<kind>
    jobs_visibility_timeout_s: float = Field(default=60.0, gt=0)  # lease before takeover
    jobs_max_attempts: int = Field(default=3, ge=1, le=100)
    jobs_backoff_s: float = Field(default=2.0, ge=0)  # doubles per failed attempt
    jobs_backoff_max_s: float = Field(default=300.0, ge=0)
    jobs_concurrency: int = Field(default=2, ge=1, le=1024)  # jobs at once, per worker
    jobs_poll_interval_s: float = Field(default=0.5, gt=0)  # embedded worker's table poll
    jobs_shutdown_grace_s: float = Field(default=10.0, ge=0)  # then running jobs are released
    jobs_embedded_worker: bool = True  # run jobs in the router when REDIS_URL is unset
    jobs_timeout_s: float = Field(default=600.0, gt=0)  # one attempt, unless its kind says
    jobs_reconcile_interval_s: float = Field(default=30.0, ge=0)  # re-publish lost jobs; 0: off
    # A region's queue with no worker serving it for this long is adopted by other regions'.
    jobs_region_adopt_s: float = Field(default=10.0, ge=4.0)  # two worker beats at least
    retention_sweep_interval_s: float = Field(default=3600.0, ge=0)  # by a worker; 0: off

    # Auth: bearer JWTs (ES256/RS256) signed by the keys of the regions this router
    # trusts, kept in auth_keys_dir/<region>/<kid>.pub.pem (default: data_dir/keys), and
    # service API keys. Off only for local development (`megacity demo`,
    # MEGACITY_AUTH_ENABLED=false), with a loud warning in the log.
    auth_enabled: bool = True
    auth_keys_dir: Path | None = None
    auth_trusted_regions: tuple[str, ...] | None = None  # default: the topology's regions
    auth_reload_interval_s: float = Field(default=10.0, gt=0)  # re-read keys (rotation)
    auth_leeway_s: float = Field(default=30.0, ge=0, le=300)  # clock skew on exp/nbf
    auth_max_token_ttl_s: int = Field(default=30 * 24 * 3600, ge=60)
    auth_api_key_cache_s: float = Field(default=30.0, ge=0)  # revocation delay, at most
    # Rate limits and abuse detection (megacity/config/limits.py); MEGACITY_LIMITS as JSON.
    # Buckets live in Redis with REDIS_URL (shared by every replica), else in memory.
    limits: LimitsPolicy = Field(default_factory=LimitsPolicy)
    # Safety: who may not be synthesised (voice or face), a custom moderator
    # ("module:factory"), the key of the hashed user ids in logs, and whether prompts and
    # transcripts are logged at all (PII-masked when they are). Replicas share user_hash_key
    # so that hashed ids (logs, limit buckets) agree across them.
    protected_identities_file: Path | None = DEFAULT_PROTECTED_IDENTITIES
    moderator: str | None = None
    user_hash_key: SecretStr | None = None  # HMAC of user ids; default: a key file in data_dir
    log_prompts: bool = False

    # Dashboard: with REDIS_URL every replica publishes its rolling figures and node views
    # every dashboard_flush_s under dashboard_key_prefix, so all replicas show one picture.
    dashboard_flush_s: float = Field(default=2.0, gt=0, le=60)
    dashboard_key_prefix: str = "megacity:dash"

    # Media parts of chats and the multimodal tutor. The router fetches image and video
    # URLs itself: public addresses only, each redirect checked, the body capped while it
    # streams. media_fetch_allow_networks exempts networks from the address check (tests,
    # a trusted internal image host); it is empty by default and only settings fill it.
    media_fetch_timeout_s: float = Field(default=10.0, gt=0)
    media_fetch_max_redirects: int = Field(default=3, ge=0, le=10)
    media_fetch_allow_networks: tuple[str, ...] = ()
    media_max_parts: int = Field(default=8, ge=1, le=64)  # media parts per chat request
    media_max_images: int = Field(default=16, ge=1, le=128)  # after videos become keyframes
    media_max_image_bytes: int = Field(default=10 * 1024 * 1024, ge=1024)
    media_max_video_bytes: int = Field(default=50 * 1024 * 1024, ge=1024)
    media_max_audio_bytes: int = Field(default=10 * 1024 * 1024, ge=1024)
    media_max_pixels: int = Field(default=1_600_000, ge=4096)  # images are scaled down to it
    media_keyframes: int = Field(default=6, ge=1, le=32)  # per video, for image-only models
    # The multimodal tutor (megacity/config/multimodal.py); MEGACITY_MULTIMODAL as JSON.
    multimodal: MultimodalPolicy = Field(default_factory=MultimodalPolicy)

    topology: Topology | None = None  # set by load(); tests may pass one directly

    @field_validator("media_fetch_allow_networks")
    @classmethod
    def _networks(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        import ipaddress

        for network in value:
            try:
                ipaddress.ip_network(network, strict=False)
            except ValueError:
                raise ValueError(f"not an IP network: {network!r}") from None
        return value

    @classmethod
    def load(cls, config: Path | str | None = None, **overrides: object) -> Settings:
        """Read the environment and the topology file (`config` wins over MEGACITY_CONFIG)."""
        if config is not None:
            overrides["config"] = Path(config)
        base = cls(**overrides)  # type: ignore[arg-type]
        topo = base.topology or load_topology(base.config)
        regions = {r.name for r in topo.regions}
        if base.region is not None and base.region not in regions:
            raise TopologyError(f"MEGACITY_REGION: unknown region {base.region!r}")
        unknown = sorted(set(base.auth_trusted_regions or ()) - regions)
        if unknown:
            raise TopologyError(f"MEGACITY_AUTH_TRUSTED_REGIONS: unknown region {unknown[0]!r}")
        return base.model_copy(update={"topology": topo})

    @property
    def keys_dir(self) -> Path:
        """Where the regions' signing/verification keys live (auth_keys_dir or data_dir/keys)."""
        return self.auth_keys_dir or Path(self.data_dir) / "keys"

    @property
    def home_region(self) -> str:
        """This process's region: MEGACITY_REGION, else the topology's first, else "default"."""
        if self.region is not None:
            return self.region
        return self.topology.regions[0].name if self.topology is not None else "default"

    @property
    def topo(self) -> Topology:
        if self.topology is None:
            raise RuntimeError("settings were built without a topology; use Settings.load()")
        return self.topology
