"""Configuration: one TOML file, every key overridable from the environment.

``SCREENPOP_AMI__HOST=pbx1`` overrides ``[ami] host``.  Secrets never live in
the file: they come from the environment (``SCREENPOP_AMI__SECRET``) or from a
file named by ``secret_file``.  Mistakes (unknown keys, wrong types, a secret
written into the file) raise :class:`ConfigError` with the key at fault, so an
operator sees the problem at start-up rather than a traceback later.
"""
from __future__ import annotations

import dataclasses
import os
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from screenpop.auth.accounts import ROLES
from telephony.agents import DEFAULT_AGENT_PATTERNS

ENV_PREFIX = "SCREENPOP_"
SECRET_KEYS = {"secret", "password", "token", "tokens", "wallboard_token"}


class ConfigError(ValueError):
    """The configuration cannot be used; the message names the key and the fix."""




@dataclass(slots=True)
class AmiSettings:
    host: str = "127.0.0.1"
    port: int = 5038
    username: str = "screenpop"
    secret: str = ""
    secret_file: str = ""
    ping_interval: float = 10.0
    ping_timeout: float = 5.0
    reconnect_min: float = 0.5
    reconnect_max: float = 30.0
    connect_timeout: float = 5.0


@dataclass(slots=True)
class AgentSettings:
    """How a channel or queue-member interface names its agent."""

    patterns: list[str] = field(default_factory=lambda: list(DEFAULT_AGENT_PATTERNS))


@dataclass(slots=True)
class LookupSettings:
    default_region: str = "ES"
    deadline_ms: int = 150
    late_ms: int = 3000  # how much longer a slow source may still deliver a card update
    cache_fresh_seconds: float = 60.0  # older cached cards are served, then refreshed in the background
    cache_ttl_seconds: float = 3600.0  # older cached cards are gone
    cache_max_entries: int = 50_000  # in-process cache only
    index_refresh_seconds: float = 900.0  # full rebuild of each source's phone index; 0: only at start
    index_check_seconds: float = 30.0  # shared (Redis) index: how soon a lost index (Redis restarted empty) is rebuilt
    breaker_failures: int = 3  # consecutive failures that open a source's circuit
    breaker_cooldown_seconds: float = 15.0  # how long an open circuit skips the source
    redis_prefix: str = "screenpop:"  # keys of the shared index, card cache and balances (with [bus] redis_url)


@dataclass(slots=True)
class SourceSettings:
    name: str = ""
    kind: str = "sql"  # sql | http
    dsn: str = ""
    url: str = ""
    phones_query: str = ""
    record_query: str = ""
    fields: list[str] = field(default_factory=list)
    # How this system stores phone numbers: numbers without a country code are
    # read in this region ("" : the [lookup] default_region).  Systems of one
    # company often differ (a US CRM beside a Spanish billing system).
    default_region: str = ""
    # Human labels for the fields this source puts on the card
    # ({account_status = "Account status"}); a field without one is labelled
    # from its name.
    labels: dict[str, str] = field(default_factory=dict)
    deadline_ms: int = 0  # 0: the [lookup] deadline
    token: str = ""
    token_file: str = ""


@dataclass(slots=True)
class StorageSettings:
    dsn: str = "sqlite+aiosqlite:///var/screenpop.sqlite3"


@dataclass(slots=True)
class InteractionSettings:
    """The interaction log: the outcome codes agents pick from, and how the
    writer queues while the database is unreachable."""

    dispositions: list[str] = field(
        default_factory=lambda: ["resolved", "callback", "escalated", "sale", "complaint", "wrong_number", "no_action"]
    )
    spill_path: str = "var/interactions-spill.jsonl"  # empty: no spill file, records dropped past max_pending
    max_pending: int = 10000
    batch_size: int = 200
    flush_interval: float = 0.2
    retry_max_seconds: float = 30.0  # longest wait between write attempts while the database is away


@dataclass(slots=True)
class BusSettings:
    redis_url: str = ""  # empty: the in-process bus
    node_id: str = ""  # this node's name in logs, /healthz and the lease; empty: host-pid
    lease_seconds: float = 5.0  # an ingester that stops renewing is replaced after this long
    ami_grace_seconds: float = 15.0  # an ingester whose AMI link stays down this long hands over
    stream_maxlen: int = 100_000  # entries kept per bus stream (a node that blinks catches up from them)


@dataclass(slots=True)
class WebSettings:
    host: str = "127.0.0.1"
    port: int = 8080
    # The sales system's "new contact" page for an unknown caller; {number} is replaced.
    create_contact_url: str = ""


@dataclass(slots=True)
class BillingSettings:
    """The billing push API: systems that push balances authenticate with this bearer token."""

    token: str = ""
    token_file: str = ""


# A cached session is not slid (its last_seen is written at most once a
# minute anyway) and another node's logout waits for the entry to run out:
# both stay small below a minute.
MAX_SESSION_CACHE_SECONDS = 60


@dataclass(slots=True)
class AuthSettings:
    """Logins and sessions of the agent UI (agent_ui.auth)."""

    cookie_name: str = "screenpop_session"
    cookie_secure: bool = False  # always mark the cookie Secure (an https request gets it anyway)
    trust_forwarded: bool = False  # behind a reverse proxy: X-Forwarded-For / -Proto are believed
    session_idle_seconds: int = 12 * 3600
    session_absolute_seconds: int = 7 * 24 * 3600
    max_failures: int = 5  # failed logins in a row before the account is locked
    lock_seconds: int = 300
    rate_limit_failures: int = 20  # failed logins per client address (and per username) per window
    rate_limit_window_seconds: int = 300
    socket_recheck_seconds: float = 30.0  # how soon an open WebSocket notices its session ended (logout, disable)
    # A valid session is kept in this node's memory this long (0: not at all),
    # so a reconnect storm's handshakes do not each read the database; a
    # logout or disable on another node is seen within this long.
    session_cache_seconds: float = 5.0

    def __post_init__(self) -> None:
        for name in ("session_idle_seconds", "session_absolute_seconds", "max_failures", "lock_seconds", "rate_limit_failures", "rate_limit_window_seconds", "socket_recheck_seconds"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"auth.{name} must be > 0")
        if not 0 <= self.session_cache_seconds <= MAX_SESSION_CACHE_SECONDS:
            raise ConfigError(f"auth.session_cache_seconds must be between 0 (no cache) and {MAX_SESSION_CACHE_SECONDS}")


@dataclass(slots=True)
class PopSettings:
    """When the card pops: as the phone rings (default) or once the agent answers
    (for queues whose agents must not see who calls before they pick up)."""

    timing: str = "ring"  # ring | answer
    on_answer_queues: list[str] = field(default_factory=list)


@dataclass(slots=True)
class SupervisionSettings:
    """Supervisors' live queue view: service-level threshold, alert limits,
    how long an agent may stay in wrap-up without saving the outcome, and the
    read-only wallboard's token (a secret: environment or token file)."""

    sl_threshold_seconds: float = 20.0  # answered within this many seconds counts for the service level
    queue_sl_thresholds: list[str] = field(default_factory=list)  # per queue, "support=30"
    longest_wait_alert_seconds: float = 60.0
    service_level_alert: float = 0.8  # alert below this share (0..1)
    wrap_up_max_seconds: float = 120.0
    timezone: str = "UTC"  # where "today" begins for the day's figures
    push_interval_seconds: float = 0.25  # at most one push per queue / agent in this time
    wallboard_token: str = ""
    wallboard_token_file: str = ""

    def threshold_for(self, queue: str) -> float:
        for item in self.queue_sl_thresholds:
            name, _, seconds = item.partition("=")
            if name.strip() == queue:
                return float(seconds)
        return self.sl_threshold_seconds


@dataclass(slots=True)
class ReconcileSettings:
    """Reconciliation with Asterisk's own records (screenpop.reconcile): after
    every AMI reconnect (and a start), the calls of the outage are read from
    the CEL table Asterisk writes (cel_pgsql, cel_odbc, FreePBX's
    asteriskcdrdb.cel); calls the log lacks are created, calls it saw in part
    are corrected.  Empty ``dsn``: off."""

    dsn: str = ""  # postgresql://, mysql://, sqlite:/// (read only; password from SCREENPOP_RECONCILE__DSN)
    cel_table: str = "cel"  # "schema.table" allowed
    interval_seconds: float = 60.0  # how often calls still in progress at the last pass are looked at again
    margin_seconds: float = 5.0  # read this much before and after an outage
    settle_seconds: float = 2.0  # wait after a reconnect before reading (Asterisk writes the last rows)
    lookback_seconds: float = 3600.0  # at start: how far back to look for calls the log lacks
    give_up_seconds: float = 21600.0  # a call with no LINKEDID_END after this long is left as it is
    # A call AMI never saw: CEL stores no presentation (a withheld number is
    # stored plainly), so its number is withheld ("unverified") unless this
    # says the center's trunks never deliver restricted numbers.
    trust_unseen_numbers: bool = False

    def __post_init__(self) -> None:
        if self.interval_seconds <= 0 or self.margin_seconds < 0 or self.settle_seconds < 0 or self.lookback_seconds < 0:
            raise ConfigError("reconcile: interval_seconds must be > 0; margin, settle and lookback seconds >= 0")


@dataclass(slots=True)
class PrivacySettings:
    """PII masking (screenpop.security.privacy): card numbers in notes, phone
    numbers shown partially to some roles."""

    mask_card_numbers: bool = True  # Luhn-valid 13-19 digit runs in notes shown as ************1111
    mask_cards_on_save: bool = True  # and masked before they are stored (no PAN in the database)
    partial_phone_roles: list[str] = field(default_factory=list)  # e.g. ["agent"]: these roles see +34*******222
    phone_visible_digits: int = 4
    # A caller who withholds their number (Asterisk marks it on the agent
    # legs: CID-CallingPres 32-39, 64-71) is withheld everywhere: pop, pages,
    # API, log, supervisors.  false only where the law lets agents see it.
    honor_presentation: bool = True
    # Keep a restricted caller's real number in the log (hidden_number), shown
    # to admins only (a legal hold, a nuisance caller); never on a screen.
    keep_restricted_numbers: bool = False

    def __post_init__(self) -> None:
        unknown = sorted(set(self.partial_phone_roles) - set(ROLES))
        if unknown:
            raise ConfigError(f"privacy.partial_phone_roles: unknown role(s) {unknown}; roles are {', '.join(ROLES)}")
        if not 0 <= self.phone_visible_digits <= 8:
            raise ConfigError("privacy.phone_visible_digits must be between 0 and 8")


@dataclass(slots=True)
class SecuritySettings:
    """Integration tokens kept in the database and the audit log (screenpop.security)."""

    token_cache_seconds: float = 5.0  # how soon a token created or revoked elsewhere counts on this node
    audit_max_pending: int = 10000  # audit entries queued while the database is unreachable
    audit_flush_interval: float = 0.2
    audit_retention_days: int = 0  # audit entries older than this are deleted (hourly, in batches); 0 keeps them forever

    def __post_init__(self) -> None:
        if self.token_cache_seconds <= 0 or self.audit_flush_interval <= 0 or self.audit_max_pending < 1:
            raise ConfigError("security: token_cache_seconds and audit_flush_interval must be > 0, audit_max_pending >= 1")
        if isinstance(self.audit_retention_days, bool) or not isinstance(self.audit_retention_days, int) \
                or not 0 <= self.audit_retention_days <= 36500:
            raise ConfigError(f"security.audit_retention_days must be a whole number of days between 0 (keep entries "
                              f"forever) and 36500, got {self.audit_retention_days!r}")


@dataclass(slots=True)
class Settings:
    ami: AmiSettings = field(default_factory=AmiSettings)
    agents: AgentSettings = field(default_factory=AgentSettings)
    lookup: LookupSettings = field(default_factory=LookupSettings)
    sources: list[SourceSettings] = field(default_factory=list)
    storage: StorageSettings = field(default_factory=StorageSettings)
    interactions: InteractionSettings = field(default_factory=InteractionSettings)
    bus: BusSettings = field(default_factory=BusSettings)
    web: WebSettings = field(default_factory=WebSettings)
    billing: BillingSettings = field(default_factory=BillingSettings)
    auth: AuthSettings = field(default_factory=AuthSettings)
    pop: PopSettings = field(default_factory=PopSettings)
    supervision: SupervisionSettings = field(default_factory=SupervisionSettings)
    privacy: PrivacySettings = field(default_factory=PrivacySettings)
    reconcile: ReconcileSettings = field(default_factory=ReconcileSettings)
    security: SecuritySettings = field(default_factory=SecuritySettings)


def load_settings(path: str | os.PathLike | None = None, env: Mapping[str, str] | None = None, *,
                  base_dir: Path | None = None) -> Settings:
    """Read ``path`` (optional), apply environment overrides, check everything.
    With ``base_dir``, the file's relative SQLite files and spill path are
    read from there rather than from the working directory."""
    env = os.environ if env is None else env
    raw: dict[str, Any] = {}
    if path is not None:
        try:
            raw = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"config file {path} does not exist") from None
        except IsADirectoryError:
            raise ConfigError(f"config file {path} is a directory") from None
        except UnicodeDecodeError:
            raise ConfigError(f"config file {path} is not UTF-8 text") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
        _refuse_secrets_in_file(raw, str(path))
    if base_dir is not None:
        from screenpop.config_paths import anchor_paths

        anchor_paths(raw, base_dir, storage_dsn=StorageSettings().dsn, spill_path=InteractionSettings().spill_path)
    _apply_env(raw, env)
    settings = _build(Settings, raw, "")
    for section in (settings.ami, settings.billing, *settings.sources):
        _read_secret_file(section)
    _read_secret_file(settings.supervision, ("wallboard_token",))
    _check(settings)
    return settings


def _refuse_secrets_in_file(raw: dict, path: str, where: str = "", env_where: str = "") -> None:
    """Refuse every secret written in the file, naming the environment variable
    that really sets it: ``where`` is the key's name as the operator reads it
    (``sources[1].token``), ``env_where`` as :func:`_apply_env` reads it (a
    source by its name: ``SOURCES__BILLING__``)."""
    for key, value in raw.items():
        name = f"{where}{key}"
        env_name = f"{env_where}{key}".upper()
        if isinstance(value, dict):
            _refuse_secrets_in_file(value, path, name + ".", env_name + "__")
        elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            for i, item in enumerate(value):
                label = item.get("name") if isinstance(item.get("name"), str) and item.get("name") else str(i)
                _refuse_secrets_in_file(item, path, f"{name}[{i}].", f"{env_name}__{label.upper()}__")
        elif key in SECRET_KEYS and value:
            raise ConfigError(
                f"{path}: {name} is a secret and must not be written in the file; "
                f"set {ENV_PREFIX}{env_name} in the environment or {key}_file to a file holding it"
            )
        elif isinstance(value, str) and _is_url_key(key) and _url_password(value):
            postgres = " (or leave the password out and set PGPASSWORD or ~/.pgpass)" if value.startswith("postgres") else ""
            raise ConfigError(
                f"{path}: {name} holds a password, a secret that must not be written in the file; "
                f"set the whole URL in {ENV_PREFIX}{env_name} in the environment{postgres}"
            )


def _is_url_key(key: str) -> bool:
    return key in ("dsn", "url") or key.endswith(("_dsn", "_url"))


def _url_password(value: str) -> bool:
    """Whether a DSN or URL carries a password (``postgresql://user:secret@host/db``)."""
    from urllib.parse import urlsplit

    if "@" not in value or "://" not in value:
        return False
    try:
        return bool(urlsplit(value.strip()).password)
    except ValueError:
        return False


def _apply_env(raw: dict, env: Mapping[str, str]) -> None:
    for name, value in env.items():
        if not name.startswith(ENV_PREFIX) or "__" not in name:
            continue
        section, _, key = name[len(ENV_PREFIX) :].lower().partition("__")
        if section == "sources":
            # SCREENPOP_SOURCES__BILLING__TOKEN=...: a key of the source named "billing"
            source_name, _, key = key.partition("__")
            sources = raw.setdefault("sources", [])
            # environment variable names are upper case: a source is found whatever the case of its name
            match = [s for s in sources if str(s.get("name", "")).lower() == source_name]
            if not match:
                raise ConfigError(f"{name}: there is no [[sources]] entry named {source_name!r}")
            match[0][key] = value
        else:
            raw.setdefault(section, {})[key] = value


def _build(cls: type, raw: Any, where: str) -> Any:
    if not isinstance(raw, dict):
        raise ConfigError(f"{where or 'config'} must be a table, got {type(raw).__name__}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - names)
    if unknown:
        raise ConfigError(f"unknown key(s) in [{where or 'top level'}]: {', '.join(unknown)}; known: {', '.join(sorted(names))}")
    values = {}
    for key, value in raw.items():
        values[key] = _coerce(hints[key], value, f"{where}.{key}" if where else key)
    return cls(**values)


def _coerce(hint: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(hint)
    if dataclasses.is_dataclass(hint):
        return _build(hint, value, where)
    if origin is list:
        (item,) = typing.get_args(hint)
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, list):
            raise ConfigError(f"{where} must be a list")
        return [_coerce(item, v, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin in (typing.Union, types.UnionType):
        hint = next(a for a in typing.get_args(hint) if a is not type(None))
    try:
        if hint is bool:
            if isinstance(value, str):
                if value.lower() in ("1", "true", "yes", "on"):
                    return True
                if value.lower() in ("0", "false", "no", "off"):
                    return False
                raise ValueError(value)
            return bool(value)
        if hint in (int, float):
            if isinstance(value, bool):
                raise ValueError(value)
            return hint(value)
        if hint is str:
            if not isinstance(value, (str, int, float)):
                raise ValueError(value)
            return str(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{where} must be {hint.__name__}, got {value!r}") from None
    return value


def _read_secret_file(section: Any, keys: tuple[str, ...] = ("secret", "token")) -> None:
    for key in keys:
        path = getattr(section, f"{key}_file", "")
        if path and not getattr(section, key):
            try:
                setattr(section, key, Path(path).read_text(encoding="utf-8").strip())
            except OSError as exc:
                raise ConfigError(f"cannot read {key}_file {path}: {exc.strerror}") from None


def _is_region(code: str) -> bool:
    import phonenumbers

    return code.upper() in phonenumbers.SUPPORTED_REGIONS


def _check(settings: Settings) -> None:
    import re

    bus = settings.bus
    if bus.lease_seconds < 1 or bus.ami_grace_seconds < 0 or bus.stream_maxlen < 1000:
        raise ConfigError("bus: lease_seconds must be >= 1, ami_grace_seconds >= 0, stream_maxlen >= 1000")
    sup = settings.supervision
    if sup.sl_threshold_seconds <= 0 or sup.longest_wait_alert_seconds <= 0 or sup.wrap_up_max_seconds < 0 or sup.push_interval_seconds < 0:
        raise ConfigError("supervision: sl_threshold_seconds and longest_wait_alert_seconds must be > 0, wrap_up_max_seconds and push_interval_seconds >= 0")
    if not 0 <= sup.service_level_alert <= 1:
        raise ConfigError("supervision.service_level_alert is a share between 0 and 1 (0.8 for 80 %)")
    for item in sup.queue_sl_thresholds:
        name, sep, seconds = item.partition("=")
        try:
            ok = bool(sep and name.strip()) and float(seconds) > 0
        except ValueError:
            ok = False
        if not ok:
            raise ConfigError(f"supervision.queue_sl_thresholds: {item!r} is not queue=seconds (seconds > 0)")
    try:
        from zoneinfo import ZoneInfo

        ZoneInfo(sup.timezone)
    except Exception:
        raise ConfigError(f"supervision.timezone {sup.timezone!r} is not a known time zone (e.g. Europe/Madrid)") from None
    if settings.pop.timing not in ("ring", "answer"):
        raise ConfigError(f"pop.timing must be 'ring' or 'answer', got {settings.pop.timing!r}")

    for i, pattern in enumerate(settings.agents.patterns):
        try:
            compiled = re.compile(pattern)
        except re.error as exc:
            raise ConfigError(f"agents.patterns[{i}] is not a valid regular expression: {exc}") from None
        if "agent" not in compiled.groupindex:
            raise ConfigError(f"agents.patterns[{i}] needs a named group (?P<agent>...)")
    seen = set()
    for i, source in enumerate(settings.sources):
        if not source.name:
            raise ConfigError(f"sources[{i}] needs a name")
        if source.name in seen:
            raise ConfigError(f"two sources are named {source.name!r}")
        seen.add(source.name)
        if source.kind not in ("sql", "http"):
            raise ConfigError(f"sources[{i}] ({source.name}): kind must be 'sql' or 'http', got {source.kind!r}")
        if source.kind == "sql" and not (source.dsn and source.phones_query and source.record_query):
            raise ConfigError(f"sources[{i}] ({source.name}): a sql source needs dsn, phones_query and record_query")
        if source.kind == "http" and not source.url:
            raise ConfigError(f"sources[{i}] ({source.name}): an http source needs url")
        if not isinstance(source.labels, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in source.labels.items()):
            raise ConfigError(f"sources[{i}] ({source.name}): labels must be a table of field = \"Label\"")
        if source.default_region and not _is_region(source.default_region):
            raise ConfigError(f"sources[{i}] ({source.name}): default_region {source.default_region!r} is not a region code phonenumbers knows (e.g. ES, US)")
    codes = settings.interactions.dispositions
    if not codes or len(set(codes)) != len(codes) or not all(c.strip() and len(c) <= 64 for c in codes):
        raise ConfigError("interactions.dispositions must be a non-empty list of distinct codes of 1 to 64 characters")
    if settings.interactions.max_pending < 1 or settings.interactions.batch_size < 1 or settings.interactions.flush_interval <= 0:
        raise ConfigError("interactions.max_pending and batch_size must be >= 1, flush_interval > 0")
    if not 0 < settings.ami.port < 65536 or not 0 <= settings.web.port < 65536:
        raise ConfigError("ports must be between 1 and 65535")
    if settings.ami.reconnect_min <= 0 or settings.ami.reconnect_max < settings.ami.reconnect_min:
        raise ConfigError("ami.reconnect_min must be > 0 and <= ami.reconnect_max")
