"""Typed configuration from the environment, parsed once at each entry point and passed down."""

from __future__ import annotations

import os
from pathlib import Path

from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parent.parent
REPOSITORY = REPO_ROOT / "triton_models"  # Triton model repository (configs in git, weights from training)
REPORTS_DIR = REPO_ROOT / "reports"


def artifacts_dir() -> Path:
    """Prepared data and trained side files: SHOP_ARTIFACTS_DIR, default ./artifacts (the one place for it)."""
    return Path(os.environ.get("SHOP_ARTIFACTS_DIR") or REPO_ROOT / "artifacts")


def models_dir() -> Path:
    return artifacts_dir() / "models"


class SecuritySettings(BaseSettings):
    """TLS/mTLS and bearer tokens: off by default on loopback, on by config (SHOP_TLS_*, SHOP_AUTH_*)."""

    model_config = SettingsConfigDict(env_prefix="SHOP_", extra="ignore")

    # Server certificate and key (PEM). Both set = TLS on for servers.
    tls_cert: Path | None = None
    tls_key: Path | None = None
    # CA that signs client certificates; set = clients must present one (mTLS).
    tls_client_ca: Path | None = None
    # CA used by clients to verify servers; set = channels use TLS.
    tls_ca: Path | None = None
    # Client certificate/key presented on outgoing channels (mTLS).
    tls_client_cert: Path | None = None
    tls_client_key: Path | None = None
    # Bearer token required on incoming calls (health, and reflection unless open_reflection is off, stay open).
    auth_token: str | None = None
    # Bearer token of the privileged methods (CatalogService writes; SHOP_CATALOG_WRITE_TOKEN); it also grants what
    # auth_token grants. With auth_token set and this unset, those methods are denied to every caller.
    catalog_write_token: str | None = None
    # Reflection without the token (convenient on loopback); production turns it off (overlays/prod).
    open_reflection: bool = True


class Addresses(BaseSettings):
    """Where each service listens / is reached (host:port)."""

    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True)

    gateway: str = Field("127.0.0.1:50051", validation_alias="SHOP_GATEWAY_ADDR")
    retrieval: str = Field("127.0.0.1:50052", validation_alias="SHOP_RETRIEVAL_ADDR")
    ranking: str = Field("127.0.0.1:50053", validation_alias="SHOP_RANKING_ADDR")
    explanation: str = Field("127.0.0.1:50054", validation_alias="SHOP_EXPLANATION_ADDR")


class TritonSettings(BaseSettings):
    """Reaching Triton, and what the local tritonserver is started with (SHOP_TRITON_*)."""

    model_config = SettingsConfigDict(env_prefix="SHOP_TRITON_", extra="ignore")

    # Triton gRPC endpoint.
    url: str = "127.0.0.1:8001"
    # Per-call timeout for Triton inference, seconds.
    timeout_s: float = Field(2.0, gt=0)
    # The config Triton reads: configs/<name>.pbtxt ("cpu", "onnx"); "" = config.pbtxt (GPU, TensorRT).
    config_name: str = "cpu"
    # Response cache of a tritonserver started locally (libs.triton.launcher), bytes.
    cache_bytes: int = Field(32 << 20, ge=0)


class OrtSettings(BaseSettings):
    """ONNX Runtime inside Triton's Python backend (libs/triton/ort_model.py)."""

    model_config = SettingsConfigDict(env_prefix="SHOP_ORT_", extra="ignore")

    # Intra-op threads per model instance where the model config sets no intra_op_num_threads parameter.
    threads: int = Field(1, ge=1)


class TracingSettings(BaseSettings):
    """OpenTelemetry tracing (libs/tracing.py): off unless SHOP_TRACING names an exporter."""

    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True)

    # "" = off; "console" (JSON on stderr), "otlp" (OTEL_EXPORTER_OTLP_ENDPOINT), "file" (below).
    mode: Literal["", "console", "otlp", "file"] = Field("", validation_alias="SHOP_TRACING")
    # SHOP_TRACING=file appends spans here, <service>.jsonl (what `make load` summarises).
    dir: Path = Field(Path("build/traces"), validation_alias="SHOP_TRACING_DIR")

    @field_validator("mode", mode="before")
    @classmethod
    def _normalised(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value


class EventStoreSettings(BaseSettings):
    """The event store the gateway writes and offline readers (retrain, A/B readout) read (SHOP_EVENTS_*)."""

    model_config = SettingsConfigDict(env_prefix="SHOP_EVENTS_", extra="ignore")

    # PostgreSQL event store shared by every replica (postgresql://user@host:5432/db). Unset = SQLite below.
    dsn: SecretStr | None = None  # may hold a password
    # SQLite event store (WAL), used when SHOP_EVENTS_DSN is unset. Default: events/events.sqlite3 under the
    # artifacts dir.
    db: Path | None = None
    # PostgreSQL connections per replica.
    pool_max: int = Field(8, ge=1)
    # Per-call limit for the event store (pool wait, connect, statement; SQLite lock wait), seconds.
    timeout_s: float = Field(2.0, gt=0)
    # Events older than this many days (by event time) are deleted at start-up and daily; 0 = keep forever.
    retention_days: float = Field(400, ge=0)

    def sqlite_path(self, artifacts_dir: Path) -> Path:
        return self.db or Path(artifacts_dir) / "events" / "events.sqlite3"


class ExperimentSettings(BaseSettings):
    """The A/B test the gateway runs and tools.ab_report reads out."""

    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True)

    # Ranking variants and traffic shares, e.g. "fused:0.9,gnn_only:0.1" (libs.experiments.Variants).
    variants: str = Field("fused:1", validation_alias="SHOP_VARIANTS")
    # Explanation arms and traffic shares, assigned independently of the variant, e.g. "none:0.5,sentence:0.5"
    # (libs.experiments.ExplanationArms: full, top3, sentence, none); they apply to responses with explain=true.
    explanation_arms: str = Field("full:1", validation_alias="SHOP_EXPLANATION_ARMS")


class ConsoleSettings(BaseSettings):
    """The console web page (services/console): where it listens and the A/B readout it draws. It reaches the
    gateway at SHOP_GATEWAY_ADDR and asks browsers for SHOP_AUTH_TOKEN (SecuritySettings) as the gateway asks
    callers."""

    model_config = SettingsConfigDict(env_prefix="SHOP_CONSOLE_", extra="ignore")

    addr: str = "127.0.0.1:8080"
    ab_report: Path = REPORTS_DIR / "ab.json"


class ServiceSettings(BaseSettings):
    """Settings common to every service. Service-specific settings subclass this."""

    model_config = SettingsConfigDict(env_prefix="SHOP_", extra="ignore")

    addresses: Addresses = Field(default_factory=Addresses)
    # Seconds in-flight RPCs get to finish after SIGTERM (shorter than the pod's grace period).
    shutdown_grace_s: float = 5.0
    # Prometheus metrics port on 127.0.0.1; 0 = pick a free port, -1 = disabled.
    metrics_port: int = -1
    # Interface for the metrics endpoint: loopback by default; 0.0.0.0 in a pod so Prometheus can scrape it.
    metrics_host: str = "127.0.0.1"
    # RPCs one process handles at once (health and reflection exempt); more get RESOURCE_EXHAUSTED at once.
    max_in_flight: int = Field(16, ge=1)
    # Where prepared data and trained models live.
    artifacts_dir: Path = Field(default_factory=artifacts_dir)
    # Log level name.
    log_level: str = "INFO"
    # Key of the pseudonyms of customer ids and queries in logs (libs/logs.py); unset = random per process.
    log_key: SecretStr | None = None
    # Plaintext listener serving only grpc.health.v1, for probes that cannot speak TLS (kubelet); unset = none.
    health_addr: str | None = None
    security: SecuritySettings = Field(default_factory=SecuritySettings)
    triton: TritonSettings = Field(default_factory=TritonSettings)


class StoreSettings(ServiceSettings):
    """Where the shared state lives (the events and the catalogue): every service that reads it subclasses this."""

    events: EventStoreSettings = Field(default_factory=EventStoreSettings)
    # PostgreSQL of the catalogue (products), when it is not SHOP_EVENTS_DSN's database. Unset = SHOP_EVENTS_DSN's,
    # or with that unset too, the SQLite events file (its own tables).
    catalog_dsn: SecretStr | None = Field(None, validation_alias="SHOP_CATALOG_DSN")
    # How often each replica reads the catalogue's new changes, seconds: the bound on how stale its view is.
    catalog_poll_s: float = Field(0.5, gt=0, validation_alias="SHOP_CATALOG_POLL_S")

    @property
    def catalog_dsn_value(self) -> str | None:
        dsn = self.catalog_dsn or self.events.dsn
        return dsn.get_secret_value() if dsn else None

    @property
    def sqlite_path(self) -> Path:
        return self.events.sqlite_path(self.artifacts_dir)
