"""One `Settings` object, built once from VIVA_* environment variables (and an optional .env file).

Settings are composed of per-area structs; the core rooms define their own (grader.fetch.FetchLimits,
grader.profile.ProfileLimits, ...) and take them as plain arguments, so no module but this one reads the
environment. A field `f` of section `s` is read from `VIVA_S_F` (upper case); fields of the `general`
section from `VIVA_F`. Lists are comma-separated; an empty value means "None" for optional fields.
"""

from __future__ import annotations

import difflib
import os
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import msgspec

from grader.fetch import FetchLimits
from grader.profile import ProfileLimits
from llm.select import ProviderKeys
from sandboxes.settings import SandboxSettings
from server.errors import SettingsError

PREFIX = "VIVA_"
MIN_METRICS_TOKEN = 16


class GeneralSettings(msgspec.Struct, frozen=True, kw_only=True):
    """Where Viva keeps its data and how loudly it logs."""

    data_dir: str = "~/.local/share/viva"
    """This process's own files: scratch space of gradings, caches."""
    shared_dir: str | None = None
    """Files every process reads, web and workers alike: graded snapshots (interviews and the source pages read
    them) and uploaded archives (the worker grading one reads it). A directory every machine mounts (NFS, a
    shared volume); unset, `data_dir` (one machine)."""
    log_level: Literal["debug", "info", "warning", "error"] = "info"


class GradingSettings(msgspec.Struct, frozen=True, kw_only=True):
    """What a grading run does by default."""

    default_rubric: str = "ai-engineer-capstone"
    formats: list[Literal["json", "md", "html"]] = msgspec.field(default_factory=lambda: ["json", "md", "html"])
    disabled_checks: list[str] = msgspec.field(default_factory=list)
    """Check names this deployment switches off; their criteria are `not_run`, never 0."""
    judge_model: str | None = None
    """The server's LLM judge (a model string, llm.spec); None picks offline, or the configured providers with
    offline last. (`viva grade --judge-model` chooses for the CLI.)"""
    judge_budget_usd: float = 0.50
    """Ceiling on the judge's spend per grading."""


class InterviewSettings(msgspec.Struct, frozen=True, kw_only=True):
    """How interviews run."""

    model: str | None = None
    """A model string (llm.spec); None picks offline, or the configured providers with offline last."""
    rubric: str = "ai-engineer-interview"
    budget_usd: float = 0.50
    """Hard ceiling per interview; at the ceiling the interview ends gracefully and an alert is raised."""
    organisation_budget_usd: float | None = None
    time_limit_minutes: float | None = 45.0
    """The interview ends at the first answer after this long from its first question (None: no limit); most end
    sooner, when every dimension is settled."""
    speech_to_text: str = "pocketsphinx"
    """Voice interviews: `pocketsphinx` (offline, no downloads) or `openai` (needs the OpenAI key)."""
    text_to_speech: str = "browser"
    """Voice interviews: `browser` (the candidate's browser speaks), `flite` or `espeak-ng` (offline, where
    installed), or `openai`."""
    max_audio_speed: float = 2.0
    """Seconds of microphone audio accepted per second (a live microphone makes 1); faster audio is dropped, not
    decoded. Tests and benchmarks that replay recorded speech raise it."""
    low_confidence: float = 0.6
    """A transcript recognised with less confidence than this waits for the candidate to check it, and the report
    notes it."""


class AlertSettings(msgspec.Struct, frozen=True, kw_only=True):
    webhook_url: str | None = None
    """Budget alerts are POSTed here as JSON, besides the log line and the metric."""


class DatabaseSettings(msgspec.Struct, frozen=True, kw_only=True):
    url: str | None = None
    """SQLAlchemy async URL (`postgresql+asyncpg://…`); None keeps a SQLite file under the data directory."""


class ServerSettings(msgspec.Struct, frozen=True, kw_only=True):
    """The web server: where it listens, how it authenticates browsers, how many gradings it runs."""

    host: str = "127.0.0.1"
    port: int = 8000
    public_url: str = "http://127.0.0.1:8000"
    """How users reach the server: invitation links and the WebSocket Origin check use it."""
    session_hours: float = 12.0
    cookie_secure: bool = False
    """Mark session cookies Secure (set it when the server is behind https)."""
    processes: int = 1
    """Server processes (`viva serve --processes`). Each serves requests and interviews and, with `worker`, runs
    gradings; interviews and jobs live in the database, so any process can carry on any of them."""
    worker: bool = True
    """Run the grading worker inside the server process."""
    worker_slots: int = 1
    """Gradings the in-process worker (and each `viva worker`, unless --slots says otherwise) runs at once."""
    job_engine: Literal["auto", "database", "procrastinate"] = "auto"
    """What carries the gradings: `database`, Viva's own jobs table with leases (one machine, SQLite); `procrastinate`,
    the Procrastinate job engine in the PostgreSQL database (workers on many machines). `auto`: Procrastinate on
    PostgreSQL, the jobs table on SQLite."""
    job_lease_seconds: float = 60.0
    """A running job's lease, renewed while it runs; a job whose lease lapsed (its server died) is taken again."""
    job_max_attempts: int = 3
    worker_heartbeat_seconds: float = 10.0
    """How often a worker says it is alive (Procrastinate's heartbeat, and the worker hosts page)."""
    worker_stalled_seconds: float = 30.0
    """A worker silent this long is taken for dead: its running jobs are retried on another."""
    worker_drain_seconds: float = 120.0
    """How long a stopping `viva worker` (SIGTERM) lets its running gradings finish before it hands the rest back to
    the queue for another worker. Give the process manager's stop timeout more than this (compose's
    `stop_grace_period`, Kubernetes' `terminationGracePeriodSeconds`)."""
    engine_keep_hours: int = 24
    """How long the job engine's own rows of finished gradings are kept (Procrastinate's `procrastinate_jobs`);
    Viva's submissions and jobs keep the record either way."""
    demo: bool = False
    """Create a demo organisation, manager and candidate on first start and print their credentials once."""
    trusted_proxies: list[str] = msgspec.field(default_factory=list)
    """Addresses or networks (`10.0.0.5`, `10.0.0.0/24`) of reverse proxies whose `X-Forwarded-For` names the
    client. Empty (the default): the header is ignored and the peer's address is the client, so nobody can pick
    their own address to dodge the rate limits."""


class SubmissionSettings(msgspec.Struct, frozen=True, kw_only=True):
    """What the API accepts to grade, and how much of it at once."""

    hosts: list[str] = msgspec.field(default_factory=lambda: ["github.com"])
    """Hosts an https repository URL may name."""
    max_archive_mb: int = 20
    fixtures_dir: str | None = None
    """Tests only: a directory whose subdirectories may be submitted as `fixture:NAME`. Never set in production."""
    per_candidate: int = 1
    """Gradings one candidate may have queued or running at once."""
    per_organisation: int = 10
    """Gradings one organisation may have queued or running at once (admission)."""
    running_per_organisation: int = 0
    batch_max: int = 500
    """Repositories one batch may hold (a manager's list for a position, server/services/batches.py)."""
    """Gradings one organisation may have running at once, over every worker; the rest wait queued (0: no limit)."""
    static_only: bool = False
    """Grade without running projects (no sandbox on this host)."""


class MailSettings(msgspec.Struct, frozen=True, kw_only=True):
    """Invitations and password resets. Without an SMTP host, mail lands in the outbox an admin can read."""

    smtp_host: str | None = None
    smtp_port: int = 587
    smtp_user: str | None = None
    smtp_password: str | None = None
    sender: str = "viva@localhost"


class LimitSettings(msgspec.Struct, frozen=True, kw_only=True):
    """Rate limits per client address (requests per minute), and per account (per hour)."""

    login_per_minute: int = 10
    failed_logins_per_account_per_hour: int = 20
    """Failed sign-ins one account takes an hour, from any number of addresses, before it refuses more for the
    rest of the hour (a correct password too): a botnet cannot guess one password faster than this."""
    account_mails_per_hour: int = 5
    """Reset and sign-up mails one address receives an hour, however many addresses ask for them."""
    submissions_per_minute: int = 6
    interview_starts_per_minute: int = 6


class RetentionSettings(msgspec.Struct, frozen=True, kw_only=True):
    """How long each kind of candidate data is kept (days; 0 keeps it until the candidate deletes it)."""

    reports_days: int = 365
    transcripts_days: int = 365
    recordings_days: int = 30


class ReviewSettings(msgspec.Struct, frozen=True, kw_only=True):
    """Candidates asking for a human review (each request mails the organisation's managers)."""

    per_candidate_per_hour: int = 5
    """Review requests one candidate may make an hour, over all their submissions; a submission has at most one
    open request at a time besides."""


class MetricsSettings(msgspec.Struct, frozen=True, kw_only=True):
    """Who may read `GET /metrics` (per-route counts, model spend). Neither set: it answers 404."""

    token: str | None = None
    """A scraper sends `Authorization: Bearer <token>` (a secret of its own, not an API token)."""
    public: bool = False
    """Anyone may read it (a deployment whose /metrics only an internal network reaches)."""

    def __post_init__(self) -> None:
        if self.public and self.token:
            raise ValueError("set a metrics token or make the metrics public, not both")
        if self.token is not None and len(self.token) < MIN_METRICS_TOKEN:
            raise ValueError(f"the metrics token must be at least {MIN_METRICS_TOKEN} characters (a random secret)")


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    general: GeneralSettings = msgspec.field(default_factory=GeneralSettings)
    grading: GradingSettings = msgspec.field(default_factory=GradingSettings)
    fetch: FetchLimits = msgspec.field(default_factory=FetchLimits)
    profile: ProfileLimits = msgspec.field(default_factory=ProfileLimits)
    llm: ProviderKeys = msgspec.field(default_factory=ProviderKeys)
    interview: InterviewSettings = msgspec.field(default_factory=InterviewSettings)
    alerts: AlertSettings = msgspec.field(default_factory=AlertSettings)
    sandbox: SandboxSettings = msgspec.field(default_factory=SandboxSettings)
    database: DatabaseSettings = msgspec.field(default_factory=DatabaseSettings)
    server: ServerSettings = msgspec.field(default_factory=ServerSettings)
    submissions: SubmissionSettings = msgspec.field(default_factory=SubmissionSettings)
    mail: MailSettings = msgspec.field(default_factory=MailSettings)
    limits: LimitSettings = msgspec.field(default_factory=LimitSettings)
    retention: RetentionSettings = msgspec.field(default_factory=RetentionSettings)
    reviews: ReviewSettings = msgspec.field(default_factory=ReviewSettings)
    metrics: MetricsSettings = msgspec.field(default_factory=MetricsSettings)

    @property
    def data_path(self) -> Path:
        return Path(self.general.data_dir).expanduser()

    @property
    def shared_path(self) -> Path:
        return Path(self.general.shared_dir).expanduser() if self.general.shared_dir else self.data_path


def load_settings(environ: Mapping[str, str] | None = None, env_file: Path | None = None) -> Settings:
    """Build Settings from `environ` (default: the process environment), over values from `env_file` if given.

    Raises SettingsError naming the variable for a value of the wrong type or an unknown VIVA_* name.
    """
    values = dict(_read_env_file(env_file)) if env_file is not None and env_file.is_file() else {}
    values.update(os.environ if environ is None else environ)
    ours = {key: value for key, value in values.items() if key.startswith(PREFIX)}
    known = _variable_table()
    unknown = sorted(set(ours) - set(known))
    if unknown:
        hints = [
            f"{name} (did you mean {close[0]}?)" if (close := difflib.get_close_matches(name, known, 1)) else name
            for name in unknown
        ]
        raise SettingsError(f"unknown setting(s): {', '.join(hints)}")
    sections: dict[str, dict[str, Any]] = {}
    for name, raw in ours.items():
        section, field, field_type = known[name]
        sections.setdefault(section, {})[field] = _convert(name, raw, field_type)
    built = {section: _build_section(section, fields) for section, fields in sections.items()}
    return Settings(**built)


def variable_names() -> list[str]:
    """Every VIVA_* variable Viva understands, for documentation and `viva settings`."""
    return sorted(_variable_table())


def _variable_table() -> dict[str, tuple[str, str, Any]]:
    table: dict[str, tuple[str, str, Any]] = {}
    for section, section_type in typing.get_type_hints(Settings).items():
        for field, field_type in typing.get_type_hints(section_type).items():
            name = f"{PREFIX}{field}" if section == "general" else f"{PREFIX}{section}_{field}"
            table[name.upper()] = (section, field, field_type)
    return table


def _convert(name: str, raw: str, field_type: Any) -> Any:
    value: Any = raw.strip()
    optional = type(None) in typing.get_args(field_type)
    if optional and value == "":
        return None
    if any(typing.get_origin(option) is list for option in (field_type, *typing.get_args(field_type))):
        value = [item.strip() for item in value.split(",") if item.strip()]
    try:
        return msgspec.convert(value, field_type, strict=False)
    except msgspec.ValidationError as error:
        raise SettingsError(f"{name}={raw!r}: {error}") from None


def _build_section(section: str, fields: dict[str, Any]) -> Any:
    section_type = typing.get_type_hints(Settings)[section]
    try:
        return msgspec.convert(fields, section_type, strict=False)
    except msgspec.ValidationError as error:
        raise SettingsError(f"settings for {section!r}: {error}") from None


def _read_env_file(path: Path) -> list[tuple[str, str]]:
    """KEY=VALUE lines; blank lines and # comments ignored; optional surrounding quotes removed."""
    pairs: list[tuple[str, str]] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#") or "=" not in stripped:
            continue
        key, _, value = stripped.removeprefix("export ").partition("=")
        pairs.append((key.strip(), value.strip().strip("'\"")))
    return pairs
