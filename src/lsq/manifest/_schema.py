"""The `lsq.yaml` schema: pydantic models, documented field by field.

These models describe the manifest *after* YAML loading, interpolation and
`.env` reading; the loader (`lsq.manifest._load`) turns a file into them and
keeps the origin of every value beside them. `docs/manifest.md` is the user's
reference and follows this module.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    Strict,
    field_validator,
    model_validator,
)

# Beside the models' frozen forms, which need no pydantic (the fault API
# parses durations too).
from lsq.manifest import _rules as rules
from lsq.manifest._frozen import parse_duration

Duration = Annotated[float, BeforeValidator(parse_duration)]

SIGNALS = ("SIGTERM", "SIGINT", "SIGQUIT", "SIGHUP", "SIGUSR1", "SIGUSR2", "SIGKILL")


class _Model(BaseModel):
    # The validators and serializers are built on first use, not at import:
    # a process that only reads models (a runtime given an app the CLI
    # checked, as pydantic objects or frozen) never needs them.
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True, strict=True)


class Health(_Model):
    """How LSQ decides an instance is healthy. Exactly one of http, tcp, command."""

    http: str | None = Field(None, description="Path probed with GET; 2xx/3xx is healthy.")
    tcp: bool = Field(False, description="Healthy once the port accepts a connection.")
    command: str | list[str] | None = Field(None, description="Exit code 0 is healthy.")
    interval: Duration = Field(5.0, description="Pause between probes once healthy.")
    timeout: Duration = 1.0
    start_period: Duration = Field(0.0, description="Failures in this window do not count.")
    failure_threshold: int = Field(3, ge=1)
    success_threshold: int = Field(1, ge=1)

    _one_kind = model_validator(mode="after")(rules.one_health_kind)


class Restart(_Model):
    """When and how fast a stopped instance is started again."""

    policy: Literal["always", "on-failure", "no"] = "on-failure"
    backoff: Duration = Field(1.0, description="First delay; doubles each time, with jitter.")
    backoff_max: Duration = Field(30.0, description="Cap on the delay.")
    max_restarts: int | None = Field(None, ge=0, description="Then the service is failed.")
    reset_after: Duration = Field(60.0, description="Uptime after which the count resets.")


Condition = Literal["started", "healthy", "completed"]


class Retries(_Model):
    """When the gateway sends a failed request again (see docs/gateway.md)."""

    attempts: int | None = Field(None, ge=0, le=10, description="Retries per request; 2.")
    budget_ratio: float | None = Field(
        None, ge=0, le=1, description="Retries as a share of requests; 0.2."
    )
    budget_per_s: float | None = Field(None, ge=0, description="Plus this many a second; 10.")
    backoff_base: Duration | None = Field(None, description="Full-jitter back-off base; 25ms.")
    backoff_cap: Duration | None = Field(None, description="Back-off cap; 250ms.")


class Outlier(_Model):
    """When a replica is taken out of rotation for a while."""

    consecutive_failures: int | None = Field(None, ge=1, description="In a row; 5.")
    base_ejection: Duration | None = Field(
        None, description="First ejection; each next one is longer by this much; 10s."
    )
    max_ejected_ratio: float | None = Field(
        None, ge=0, le=1, description="At most this share of replicas out; 0.5."
    )


class Breaker(_Model):
    """The per-service circuit breaker: opens when every replica is failing."""

    enabled: bool | None = None


class Policy(_Model):
    """Resilience policy of a service (or of one route prefix). Unset values
    take the defaults shown; `lsq.gateway.effective_policy` tells which."""

    connect_timeout: Duration | None = Field(None, description="Per connection; 1s.")
    try_timeout: Duration | None = Field(None, description="Per attempt, to the response head; 15s.")
    timeout: Duration | None = Field(
        None, description="Whole request, retries included; 30s. Sent on as X-LSQ-Deadline."
    )
    retries: Retries | None = None
    outlier: Outlier | None = None
    breaker: Breaker | None = None


class Route(_Model):
    """A path prefix on the ingress port that goes to this service."""

    prefix: str
    strip: bool = Field(True, description="Remove the prefix before forwarding.")
    policy: Policy | None = Field(
        None, description="Overrides of the service's policy for this prefix."
    )

    _slash = field_validator("prefix")(rules.prefix_slash)


class SmokeRequest(_Model):
    """A request sent to each new replica before it gets any traffic."""

    path: str = Field(description="Path on the replica, such as /health.")
    method: Literal["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS"] = "GET"
    status: int = Field(200, ge=100, le=599, description="The status expected.")
    contains: str | None = Field(None, description="Text the body must contain.")

    _slash = field_validator("path")(rules.path_slash)


class Analysis(_Model):
    """How a canary step compares the new version with the old (docs/deploy.md)."""

    min_requests: int = Field(50, ge=1, description="Per version, before any verdict.")
    max_error_increase: float = Field(
        0.01, ge=0, le=1, description="New error rate may exceed the old by this much."
    )
    max_p99_ratio: float = Field(1.5, ge=1, description="New p99 / old p99 at most.")
    p99_slack: Duration = Field(0.05, description="p99 differences below this pass.")
    extend: int = Field(3, ge=0, le=100, description="Holds of an inconclusive step.")
    on_inconclusive: Literal["rollback", "promote"] = "rollback"


class Release(_Model):
    """How `lsq deploy` replaces a running version (docs/deploy.md)."""

    strategy: Literal["blue-green", "canary"] = "blue-green"
    steps: list[int] = Field(default_factory=lambda: [5, 25, 50, 100])
    step_time: Duration = 30.0
    ready_timeout: Duration = Field(60.0, description="New replicas healthy within this.")
    drain_timeout: Duration = Field(30.0, description="In-flight requests get this long.")
    warm: Duration = Field(60.0, description="Blue-green: old version kept for rollback.")
    smoke: list[SmokeRequest] = Field(default_factory=list)
    analysis: Analysis = Field(default_factory=Analysis)

    _rising = field_validator("steps")(rules.rising_steps)


class Service(_Model):
    """One service of the app: a command run as `replicas` processes."""

    command: str | list[str] | None = Field(
        None, description="A string run by /bin/sh -c, or an argv list run directly."
    )
    cwd: str | None = Field(None, description="Relative to the manifest's folder.")
    env: dict[str, str] = Field(default_factory=dict)
    env_file: list[str] = Field(default_factory=list)
    port: Annotated[int, Strict()] | None = Field(
        None, ge=1, le=65535, description="Fixed port; else assigned."
    )
    replicas: Annotated[int, Strict()] = Field(1, ge=0, le=rules.MAX_REPLICAS)
    health: Health | None = None
    depends_on: Annotated[
        dict[str, Condition | None], BeforeValidator(rules.depends_shorthand)
    ] = Field(default_factory=dict)
    restart: Annotated[Restart, BeforeValidator(rules.restart_shorthand)] = Field(
        default_factory=Restart
    )
    startup_timeout: Duration = Field(
        120.0, description="Dependents give up waiting for this service after this long."
    )
    stop_signal: Literal[SIGNALS] = "SIGTERM"  # type: ignore[valid-type]
    stop_timeout: Duration = 10.0
    data: Literal["sqlite", "postgres", "sql"] | None = Field(
        None,
        description="The service's own database, passed as DATABASE_URL. `sql`: PostgreSQL "
        "when LSQ_POSTGRES_URL is set, else SQLite.",
    )
    external: str | None = Field(None, description="URL of a third-party API.")
    routes: list[Route] = Field(default_factory=list)
    policy: Policy | None = Field(
        None, description="Timeouts, retries, outlier ejection, breaker (gateway)."
    )
    release: Release | None = Field(
        None, description="How `lsq deploy` rolls out a new version (docs/deploy.md)."
    )

    _one_or_many = field_validator("env_file", mode="before")(rules.one_or_many)
    _command_or_external = model_validator(mode="after")(rules.command_or_external)


class Gateway(_Model):
    """The gateway's own settings (see docs/gateway.md)."""

    ingress_port: int | None = Field(None, ge=1, le=65535)
    workers: int = Field(1, ge=1, le=64)
    trusted_proxies: list[str] = Field(
        default_factory=lambda: ["127.0.0.1/32", "::1/128"],
        description="Peers whose X-Forwarded-* headers are appended to, not replaced.",
    )
    header_timeout: Duration = 10.0
    idle_timeout: Duration = 60.0
    access_log: bool = True


class Manifest(_Model):
    """The whole `lsq.yaml`."""

    name: str | None = Field(None, description="App name; defaults to the folder name.")
    services: dict[str, Service]
    gateway: Gateway = Field(default_factory=Gateway)

    _names = field_validator("services")(rules.service_names)
