"""The one Settings object, loaded once by :func:`load_settings` and passed in.

Sources, highest priority first: keyword overrides, ``SHELFWISE_*`` environment
variables, an explicit config file (YAML or JSON), then the defaults below.
An explicit file that does not exist, an unknown key in the file, or an unknown
``SHELFWISE_*`` variable are errors, never silently ignored.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import yaml
from limits import RateLimitItem, parse_many
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from shelfwise.errors import ConfigError

Role = Literal["ingest", "merchandiser", "admin", "read", "storefront"]
ROLES: tuple[Role, ...] = ("ingest", "merchandiser", "admin", "read", "storefront")
# A storefront key sits in a web page's source for anyone to read: it holds no other role.
STOREFRONT: Role = "storefront"

ENV_PREFIX = "SHELFWISE_"
CONFIG_FILE_ENV = "SHELFWISE_CONFIG"


# The ranker's settings live here, not in ``ranking``: every package reads the Settings, so
# the Settings import nothing above the ground floor (``ranking.objective`` computes with them).


class PlacementObjective(BaseModel):
    """The value blend of one placement."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    click: float = Field(default=1.0, ge=0, description="Value of an engagement itself.")
    revenue: float = Field(default=0.0, ge=0, description="Weight of price / median price.")
    margin: float = Field(default=0.0, ge=0, description="Weight of margin / median price.")
    sla_penalty_per_day: float = Field(
        default=0.02, ge=0, le=1, description="Value lost per day of shipping SLA."
    )
    min_cover_days: float = Field(
        default=3.0, ge=0, description="Below this many days of stock cover the value shrinks."
    )
    unknown_margin_rate: float = Field(default=0.3, ge=0, le=1)
    money_cap: float | None = Field(
        default=0.5,
        ge=0,
        description="Money adds at most this share of the click value (None: unbounded, the "
        "linear blend of before).",
    )
    popularity_penalty: float = Field(
        default=0.0,
        ge=0,
        le=4,
        description="Value x (1 + events of 28 days / their mean) ** -penalty.",
    )
    chain_weight: float = Field(
        default=0.0,
        ge=0,
        le=8,
        description="Value x (the placement chain's score / its best) ** weight: how much the "
        "placement's own job (similarity to the viewed product, complement lift) counts "
        "beside P(engagement) (ranking.ranker.chain_fit).",
    )
    exposure_cap: float | None = Field(
        default=None,
        gt=0,
        le=1,
        description="The largest share of the placement's slates one item may take "
        "(ranking.exposure: floors calibrated per bundle; None: no cap).",
    )

    def digest(self) -> str:
        return _objective_digest(self)  # (every new learned context stamps it)


@lru_cache(maxsize=256)
def _objective_digest(o: PlacementObjective) -> str:
    # without a cap, the digest of before (objective versions stay comparable)
    skip = {"exposure_cap"} if o.exposure_cap is None else None
    return hashlib.sha256(o.model_dump_json(exclude=skip).encode()).hexdigest()[:12]


# Defaults: the home page leans on discovery, the cart on margin, email on revenue.
DEFAULT_OBJECTIVES: dict[str, PlacementObjective] = {
    "home": PlacementObjective(click=1.0, revenue=0.1, margin=0.1),
    "product": PlacementObjective(click=0.5, revenue=0.5, margin=0.5),
    "cart": PlacementObjective(click=0.1, revenue=0.3, margin=1.5),
    "email": PlacementObjective(click=0.2, revenue=1.0, margin=0.5),
}


class RankingSettings(BaseModel):
    """The ranker's knobs (``Settings.ranking``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    objectives: dict[str, PlacementObjective] = Field(
        default_factory=lambda: dict(DEFAULT_OBJECTIVES)
    )
    default_objective: PlacementObjective = PlacementObjective()
    explore_share: float = Field(default=0.1, ge=0, le=0.5)
    explore_max_exposures: float = Field(
        default=50.0, ge=0, description="Items shown fewer times than this may be explored."
    )
    explore_seed: int = 0
    compile_model: bool = True
    time_bucket_seconds: int = Field(
        default=60,
        ge=0,
        description=(
            "Serving: the clock the sources and the ranker's features read is the end of "
            "the request's time bucket of this many seconds, so a scored order is kept "
            "and serves every request of the same context in the bucket (0 = the exact "
            "clock, nothing kept)."
        ),
    )
    kept_orders: int = Field(
        default=1_600,
        ge=0,
        description=(
            "Contexts whose candidates, scored order and served slates (one per "
            "exploration pick) each worker keeps for their time bucket (0 = off), "
            "least recently used out first (~90 KB each)."
        ),
    )
    kept_proposals: int = Field(
        default=20_000,
        ge=0,
        description=(
            "Source proposals to impersonal contexts (no person, session or cart: an "
            "anonymous product page) each worker keeps across placements and time "
            "buckets (0 = off), least recently used out first (~2.3 KB each)."
        ),
    )

    def objective_for(self, placement: str) -> PlacementObjective:
        return self.objectives.get(placement, self.default_objective)


class ApiKey(BaseModel):
    """An API key as configured: a name, the SHA-256 of the secret, its roles.

    ``secret`` may be given instead of ``sha256`` (development only); it is
    hashed at load and never kept in clear.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=64)
    sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")
    secret: str | None = Field(default=None, min_length=8, repr=False)
    roles: tuple[Role, ...] = Field(min_length=1)
    origins: tuple[str, ...] = Field(
        default=(),
        description="Storefront keys: the web origins (scheme://host[:port]) their pages run on.",
    )
    rate_limit: str | None = Field(
        default=None,
        description="Storefront keys: requests allowed per key (e.g. '600/minute'); "
        "None = the setting storefront_rate_limit.",
    )

    @model_validator(mode="after")
    def _storefront_alone(self) -> ApiKey:
        check_storefront_key(self.roles, self.origins, self.rate_limit)
        return self

    def digest(self) -> str:
        if self.sha256 is not None:
            return self.sha256
        assert self.secret is not None
        return hash_key(self.secret)


def hash_key(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


_ORIGIN = re.compile(r"^(\*|https?://[A-Za-z0-9.\-\[\]:]{1,253})$")


def check_storefront_key(
    roles: Sequence[str], origins: Sequence[str], rate_limit: str | None
) -> None:
    """A storefront key holds no other role; origins and a rate limit are a storefront
    key's only (ValueError otherwise: pydantic reports it, KeyStore re-raises it)."""
    if STOREFRONT in roles and len(set(roles)) > 1:
        raise ValueError("a storefront key is public (it sits in a page): it holds no other role")
    if STOREFRONT not in roles and (origins or rate_limit is not None):
        raise ValueError("origins and rate_limit belong to storefront keys only")
    for origin in origins:
        if not _ORIGIN.match(origin) or origin.endswith("/"):
            raise ValueError(f"{origin!r} is not an origin (scheme://host[:port], or *)")
    if rate_limit is not None:
        parse_rate_limit(rate_limit)


def parse_rate_limit(text: str) -> RateLimitItem:
    """``'600/minute'``, ``'10 per second'`` (the ``limits`` package's notation), one limit."""
    try:
        items = parse_many(text)
    except ValueError as e:
        raise ValueError(f"{text!r} is not a rate limit such as '600/minute'") from e
    if len(items) != 1:
        raise ValueError(f"{text!r}: give one rate limit such as '600/minute'")
    return items[0]


class Settings(BaseSettings):
    """Every knob of shelfwise. Environment: ``SHELFWISE_<NAME>``."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        extra="forbid",
        frozen=True,
        env_nested_delimiter="__",
    )

    database_url: str = "sqlite:///./shelfwise.db"
    database_schema: str | None = Field(
        default=None, description="PostgreSQL schema to use (search_path); None = default."
    )
    redis_url: str | None = None
    redis_prefix: str = "shelfwise"
    model_dir: Path = Path("./models")
    bundle_store: Literal["folder", "database"] = Field(
        default="folder",
        description=(
            "Where model bundles live. folder: MODEL_DIR holds them and its CURRENT names "
            "the promoted one (one machine, or a folder every machine mounts). database: "
            "the database of DATABASE_URL holds every bundle's files and its promotions, so "
            "every machine reads them; MODEL_DIR is then each machine's local, verified "
            "cache of the bundles it has fetched."
        ),
    )
    model_watch_seconds: float = Field(
        default=10.0,
        ge=0.0,
        description=(
            "Seconds between a server worker's checks of the promoted version (MODEL_DIR/"
            "CURRENT, or the database's latest promotion with BUNDLE_STORE=database) for a "
            "newly promoted bundle, loaded atomically; 0 = off (reload by POST /v1/models/reload)."
        ),
    )
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    workers: int = Field(default=1, ge=1, le=64)
    auth_enabled: bool = True
    api_keys: tuple[ApiKey, ...] = ()
    cors_origins: tuple[str, ...] = ()
    storefront_rate_limit: str = Field(
        default="6000/minute",
        description="Requests a storefront key may make (per key, every worker together "
        "when Redis is configured); a key's own rate_limit replaces it.",
    )
    storefront_limit_sync_seconds: float = Field(
        default=0.1,
        ge=0.0,
        le=10.0,
        description="With Redis: seconds between a worker's pushes of its rate-limit counts "
        "(a worker may admit one interval of its own traffic past a limit); 0 = count "
        "every request in Redis at once (exact, two round trips a request).",
    )
    storefront_ip_rate_limit: str = Field(
        default="300/minute",
        description="Requests with any storefront key from one client IP address.",
    )
    customer_token_max_seconds: int = Field(
        default=86_400,
        ge=60,
        le=30 * 86_400,
        description="A storefront request's customer token expiring later than this "
        "from now is refused (customer_token_invalid): tokens are meant to be short-lived.",
    )
    max_body_bytes: int = Field(default=5_000_000, ge=1_000)
    max_batch_size: int = Field(default=1_000, ge=1)
    max_k: int = Field(default=100, ge=1)
    catalog_refresh_seconds: float = Field(
        default=0.0,
        ge=0.0,
        description="Minimum seconds between catalog change checks; 0 = check on every read.",
    )
    experiment_refresh_seconds: float = Field(
        default=5.0,
        ge=0.0,
        description="Seconds a worker reuses its list of running experiments; 0 = reload each time.",
    )
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    # --- monitoring and dashboard ---
    currency: str = Field(default="EUR", min_length=3, max_length=3)
    attribution_window_hours: float = Field(
        default=24.0,
        gt=0.0,
        le=24.0 * 90,
        description=(
            "Revenue from recommendations: a purchase line without a rec_id counts when the"
            " shopper clicked that product in a recommendation at most this many hours before"
            " (overview, monitoring API, alerts, experiment readouts; docs/monitoring.md)."
        ),
    )
    dashboard_secret: str | None = Field(
        default=None,
        min_length=16,
        repr=False,
        description=(
            "Signs dashboard session cookies and form tokens; None = a random secret generated"
            " once and kept in the store (table instance_secrets), shared by every worker."
        ),
    )
    dashboard_session_hours: float = Field(default=12.0, gt=0, le=24 * 30)
    dashboard_cookie_secure: bool | None = Field(
        default=None,
        description="Mark the dashboard cookie Secure: true = always, false = never,"
        " None = when the request came over https.",
    )
    alert_webhook_url: str | None = None
    alert_webhook_secret: str | None = Field(
        default=None,
        min_length=16,
        repr=False,
        description="Signs each alert webhook (HMAC-SHA256 over a timestamp and the body; "
        "headers X-Shelfwise-Timestamp, X-Shelfwise-Signature); None = unsigned.",
    )
    alert_budget_per_day: float = Field(
        default=2_400.0,
        gt=0,
        description="Revenue a placement x category series may lose per day before it burns.",
    )
    alert_fast_window_hours: int = Field(default=3, ge=1, le=48)
    alert_slow_window_hours: int = Field(default=12, ge=2, le=24 * 7)
    alert_page_burn: float = Field(default=6.0, gt=0)
    alert_ticket_burn: float = Field(default=2.0, gt=0)
    alert_fdr: float = Field(
        default=0.0005 * math.exp(-2.0),
        gt=0,
        lt=0.5,
        description="False-discovery rate of the window tests (picked on calibration seeds,"
        " benchmarks/alerts.py: 0.0005 moved by 2 log units with the sequential threshold).",
    )
    alert_reference_days: int = Field(default=28, ge=7, le=365)
    alert_resolve_after_hours: int = Field(
        default=24,
        ge=1,
        le=24 * 7,
        description="An open alert resolves after this many hours without a finding (one"
        " episode whose loss flickers below the thresholds stays one alert).",
    )
    alert_evaluate_every_seconds: float | None = Field(
        default=None,
        ge=0,
        description="Seconds between the server's scheduled alert evaluations; 0 = never;"
        " None = every 300 s under `shelfwise serve` and `shelfwise demo`, never otherwise.",
    )
    # --- serving ---
    placements_file: Path | None = Field(
        default=None,
        description="YAML file replacing the shipped placements (must exist when given).",
    )
    session_max_events: int = Field(default=50, ge=1, le=1000)
    session_ttl_seconds: int = Field(default=1800, ge=10)
    redis_retry_seconds: float = Field(
        default=5.0, ge=0.0, description="After a Redis failure, seconds before trying it again."
    )
    decision_trace: Literal["full", "sampled", "none"] = "full"
    decision_trace_sample_rate: float = Field(default=0.1, ge=0.0, le=1.0)
    decision_flush_seconds: float = Field(default=0.2, gt=0.0, le=60.0)
    decision_batch_size: int = Field(default=500, ge=1)
    decision_queue_max: int = Field(default=50_000, ge=100)
    slate_cache_size: int = Field(
        default=5_000,
        ge=0,
        description="Slates kept per worker for requests nothing personal shapes (0 = off).",
    )
    allow_clock_header: bool = Field(
        default=False,
        description="Honour X-Shelfwise-Now on recommendation requests (tests and replays only).",
    )
    sources_config: Path | None = Field(
        default=None,
        description="YAML/JSON file with the candidate sources' config (must exist when set).",
    )
    train_window_days: float = Field(default=400.0, gt=0, description="Days of events to train on.")
    guard_days: float = Field(
        default=14.0, ge=0, description="Last days of the window held out for the guard metrics."
    )
    ranker_max_people: int | None = Field(
        default=4_000,
        ge=1,
        description="shelfwise train --ranker: most requests made per training window of the "
        "home ranker (and the guard's), of people drawn evenly, and most logged slates it "
        "learns from a window; None asks every active person and keeps every slate. Keeps a "
        "window's cost from growing with the store (docs/sizing.md).",
    )
    train_jobs: int = Field(
        default=0,
        ge=0,
        description="shelfwise train: worker processes the rankers' training windows, the "
        "designs the home ranker is chosen among, its refit's draws, the guard's people and "
        "the exposure cap's placements are computed in (0: one per core available; 1: one "
        "process). The "
        "bundle is the same for any number; each worker costs memory (docs/sizing.md). "
        "Not in the settings' fingerprint: it changes the time, not the bundle.",
    )
    promotion_tolerance: float = Field(
        default=0.0,
        ge=0,
        le=1,
        description="A new bundle is promoted unless its guard NDCG@10 is below (1 - this) x the current one.",
    )
    promotion_min_people: int = Field(
        default=200,
        ge=0,
        description="A new bundle is not promoted over the current one when the guard judged "
        "fewer people than this (--force overrides).",
    )
    event_future_tolerance_seconds: float = Field(
        default=300.0, ge=0.0, description="How far in the future occurred_at may be (clock skew)."
    )
    revenue_tolerance: float = Field(
        default=0.01,
        ge=0.0,
        le=1.0,
        description="Relative gap allowed between a purchase's revenue and its lines' total.",
    )
    require_known_products: bool = Field(
        default=False,
        description="Reject (quarantine) events naming a product id the catalog does not know.",
    )
    identity_max_ids: int = Field(
        default=50, ge=2, description="Largest profile the identity graph builds by merging."
    )
    identity_refresh_seconds: float = Field(
        default=5.0,
        ge=0.0,
        description=(
            "Seconds the request path keeps resolved person ids (new links and erasures"
            " reach the next request regardless)."
        ),
    )
    privacy_salt: str | None = Field(
        default=None,
        min_length=16,
        repr=False,
        description="Keys the HMAC of an erased id kept in the erasure audit; None = no hash kept.",
    )
    ranking: RankingSettings = Field(
        default_factory=RankingSettings,
        description="Placement objectives (value blends) and exploration of the ranker.",
    )

    @field_validator("database_url")
    @classmethod
    def _known_backend(cls, value: str) -> str:
        if not (value.startswith("sqlite") or value.startswith("postgresql")):
            raise ValueError("database_url must be a sqlite:// or postgresql:// URL")
        if value.startswith("postgresql://"):
            value = "postgresql+psycopg://" + value.removeprefix("postgresql://")
        return value

    @field_validator("storefront_rate_limit", "storefront_ip_rate_limit")
    @classmethod
    def _rate_limit(cls, value: str) -> str:
        parse_rate_limit(value)
        return value

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    def fingerprint(self) -> str:
        """A short hash of the non-secret settings, stamped on artifacts."""
        data = self.model_dump(
            mode="json", exclude={"api_keys", "alert_webhook_secret", "train_jobs"}
        )
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:12]


def _read_config_file(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist", code="config_file_missing")
    text = path.read_text()
    try:
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as e:
        raise ConfigError(
            f"config file {path} is not valid: {e}", code="config_file_invalid"
        ) from e
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping", code="config_file_invalid")
    return data


def _check_unknown_env() -> None:
    known = {ENV_PREFIX + name.upper() for name in Settings.model_fields}
    known.add(CONFIG_FILE_ENV)
    unknown = sorted(
        key
        for key in os.environ
        if key.upper().startswith(ENV_PREFIX)
        and key.upper() not in known
        and key.upper().split("__")[0] not in known
    )
    if unknown:
        raise ConfigError(
            f"unknown setting(s) in the environment: {', '.join(unknown)}",
            code="config_unknown_key",
        )


def load_settings(config_file: Path | str | None = None, **overrides: Any) -> Settings:
    """Build the Settings from defaults, a config file, the environment and overrides."""
    _check_unknown_env()
    if config_file is None and os.environ.get(CONFIG_FILE_ENV):
        config_file = os.environ[CONFIG_FILE_ENV]
    file_values: dict[str, Any] = {}
    if config_file is not None:
        file_values = _read_config_file(Path(config_file))
        unknown = sorted(set(file_values) - set(Settings.model_fields))
        if unknown:
            raise ConfigError(
                f"unknown key(s) in {config_file}: {', '.join(unknown)}",
                code="config_unknown_key",
            )
    env_names = {
        name
        for name in Settings.model_fields
        if any(k.upper().startswith(ENV_PREFIX + name.upper()) for k in os.environ)
    }
    # The environment beats the file: drop file values the environment sets.
    init = {k: v for k, v in file_values.items() if k not in env_names}
    init.update(overrides)
    try:
        return Settings(**init)
    except ValidationError as e:
        raise ConfigError(f"invalid settings: {e}", code="config_invalid") from e
