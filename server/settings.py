"""Settings: one frozen dataclass, built from the environment (or a TOML file) in one place."""

from __future__ import annotations

import os
import socket
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from auth.settings import AuthSettings

ROOT = Path(__file__).resolve().parent.parent

__all__ = ["AuthSettings", "Settings", "default_node_name"]


def default_node_name() -> str:
    """This process's name among the nodes: "<hostname>-<pid>" (settings.node_name's default)."""
    return f"{socket.gethostname() or 'node'}-{os.getpid()}"


@dataclass(frozen=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 8080
    # Public base URL of this server (links, xAPI activity ids, CORS).
    base_url: str = "http://127.0.0.1:8080"
    data_dir: Path = ROOT / "var"
    content_dir: Path | None = None  # imported at start-up when the database is empty
    # Databases (docs/scale-out.md): "" keeps the SQLite files in data_dir (inflow.sqlite3,
    # events.sqlite3); a URL such as postgresql+psycopg://user:pass@host:5432/inflow puts the
    # content (INFLOW_DATABASE_URL) or the analytics events (INFLOW_EVENTS_DATABASE_URL) there.
    database_url: str = ""
    events_database_url: str = ""
    # A request that finds the database unavailable (PostgreSQL restarting, down, refusing) gets
    # 503 with this Retry-After, in seconds (server/db/errors.py, docs/operations.md).
    db_retry_after_seconds: int = 2
    # Nodes in step on PostgreSQL (server/follow.py, docs/scale-out.md): besides LISTEN/NOTIFY,
    # each node reads the change log this often (a missed notification is caught by then).
    follow_poll_seconds: float = 5.0
    # Days of the change log (content_changes) kept; never rows newer than the newest complete
    # index snapshot, which a new node starts from (job content-changes-prune, daily).
    change_log_days: int = 7
    # Index snapshots (server/snapshots.py, docs/scale-out.md "A new node joins"): on PostgreSQL a
    # node stores a copy of its index this often (job index-snapshot; 0 = never), and a new node
    # starts from the newest one instead of rebuilding.
    snapshot_minutes: int = 60
    # App templates the console offers (docs/app-templates.md); env INFLOW_APP_TEMPLATES too.
    app_templates_dir: Path = ROOT / "content" / "app-templates"
    # Limits (documented in docs/api.md)
    max_body_bytes: int = 256 * 1024
    max_url_bytes: int = 8 * 1024
    max_query_chars: int = 256
    max_query_terms: int = 16
    max_limit: int = 50
    default_limit: int = 10
    # Thread pool for Whoosh searches (one searcher per thread).
    search_threads: int = 2
    # Memory-map index files: about 20% faster searches for about 100-150 MB more resident
    # memory at 10k aids, ~650 MB more at 100k (each search thread maps the index again; see
    # index/service.py and docs/scale-out.md). Off by default: 335 MB at 100k without it.
    index_mmap: bool = False
    # Quiet seconds after the last index write before its segments are merged into one, in a
    # child process (each extra segment costs every search a few ms); negative: never merge.
    index_merge_delay_seconds: float = 10.0
    # Processes an index rebuild writes with (forked, each writing a contiguous share of the
    # aids as its own segments, merged afterwards: index/bulk.py); 1: in the server's process.
    index_build_procs: int = 2
    writer_timeout_seconds: float = 10.0
    cache_entries: int = 10_000
    # Extension origins allowed by CORS, e.g. "chrome-extension://<id>".
    cors_origins: tuple[str, ...] = ()
    # Image hosts allowed in aid bodies (besides this server).
    image_hosts: tuple[str, ...] = ()
    serve_demo: bool = True
    # Debug aid: append one JSON line per API request (method, path, query, body) to this file.
    request_log: Path | None = None
    # Rate limits on /api/ (server/ratelimit.py, docs/api.md): token buckets in each node's memory.
    # Per signed-in user (issuer, subject): requests a second, and how many may come at once.
    # A busy person plus the extension stays far below. 0 turns a limit off.
    rate_limit_subject_per_second: float = 10.0
    rate_limit_subject_burst: int = 60
    # Per client address, checked before the token is: higher, as offices share an address (NAT).
    rate_limit_address_per_second: float = 100.0
    rate_limit_address_burst: int = 600
    # Reverse proxies whose X-Forwarded-For names the client (exact addresses); none by default.
    rate_limit_trusted_proxies: tuple[str, ...] = ()
    auth: AuthSettings = field(default_factory=AuthSettings)
    # Admin console and admin API (docs/admin.md).
    # Session cookie: "auto" = Secure with the `__Host-inflow_session` name when base_url is https,
    # else plain-http development (`inflow_session`, not Secure); "true"/"false" force it.
    admin_cookie_secure: str = "auto"
    admin_session_hours: int = 8
    # Uploaded archives (import): compressed size, decompressed total and number of entries.
    admin_max_upload_bytes: int = 10 * 1024 * 1024
    admin_max_archive_bytes: int = 50 * 1024 * 1024
    admin_max_archive_files: int = 5000
    admin_page_size: int = 50

    @property
    def admin_cookie_is_secure(self) -> bool:
        value = self.admin_cookie_secure.strip().lower()
        if value in {"true", "1", "yes", "on"}:
            return True
        if value in {"false", "0", "no", "off"}:
            return False
        return self.base_url.lower().startswith("https://")

    # -- Learning analytics (docs/analytics.md) -------------------------------------------------
    # Key of the pseudonyms (HMAC of issuer|subject). Empty: a random key is made once and kept in
    # data_dir/analytics.key, so pseudonyms stay stable across restarts.
    analytics_secret: str = ""
    analytics_retention_days: int = 395
    # Dashboards never show a row aggregating fewer distinct people than this.
    analytics_min_group: int = 5
    analytics_max_events: int = 500  # per POST /api/v1/events
    analytics_max_body_bytes: int = 1024 * 1024  # that route only; the rest keep max_body_bytes
    analytics_max_age_days: int = 7  # events older than this are refused
    analytics_max_future_seconds: int = 300  # clock skew allowed for events "from the future"
    analytics_purge_interval_seconds: float = 6 * 3600
    # xAPI forwarding (docs/xapi-profile.md): off when lrs_endpoint is empty. The endpoint is the
    # LRS's xAPI base, e.g. "http://lrs.example/xAPI" (statements go to <endpoint>/statements).
    lrs_endpoint: str = ""
    lrs_username: str = ""  # HTTP basic auth...
    lrs_password: str = ""
    lrs_token_url: str = ""  # ...or OAuth2 client credentials when this is set
    lrs_client_id: str = ""
    lrs_client_secret: str = ""
    lrs_scope: str = ""
    lrs_batch_size: int = 100
    lrs_timeout_seconds: float = 15.0
    lrs_backoff_initial_seconds: float = 1.0
    lrs_backoff_max_seconds: float = 300.0
    lrs_poll_seconds: float = 5.0
    # Reading progress back from the LRS (server/paths/lrs.py, docs/paths.md "LMS (LRS) progress"):
    # the xAPI base to read statements from ("" = lrs_endpoint), with the same credentials.
    lrs_read_endpoint: str = ""
    # Also match LRS actors by account {homePage: this, name: <username>} ("" = by e-mail only).
    lrs_account_homepage: str = ""
    paths_lrs_minutes: int = 30  # how often course steps are read from the LRS; 0 = on demand

    # -- E-mail notifications (server/peer/mail.py, docs/peer.md "E-mail") ------------------------
    # Notifications are always queued in the outbox (the notifications table); the sender delivers
    # them only when smtp_host is set ("" = e-mail off).
    smtp_host: str = ""
    smtp_port: int = 25
    smtp_user: str = ""  # SMTP AUTH when set
    smtp_password: str = ""
    smtp_from: str = "Inflow <inflow@localhost>"  # "Name <address>" or an address
    smtp_starttls: bool = False  # STARTTLS (verifying the server's certificate) before AUTH
    smtp_ca_file: Path | None = None  # CA bundle for that check (a private CA); None = the system's
    smtp_timeout_seconds: float = 30.0  # per SMTP conversation
    smtp_max_attempts: int = 8  # a notification still failing after this many tries is `failed`
    smtp_backoff_initial_seconds: float = 30.0  # wait after a first failure, doubled each time...
    smtp_backoff_max_seconds: float = 3600.0  # ...up to this
    smtp_poll_seconds: float = 60.0  # the outbox is also read this often (other nodes' rows)
    # Pairing rules (server/peer/pairings.py) run this often by themselves; 0 = only "Run now".
    pairing_run_interval_seconds: float = 3600.0
    # Peer learning writes (tips, questions, answers, reports, recommendations, flags) a person may
    # make an hour, per node (server/peer/limits.py); 0 turns the limit off.
    peer_writes_per_hour: int = 20

    # -- Content that stays current (issue 13: docs/sources.md, health.md, queue.md) ----------
    # Safe fetching (server/fetch): every request Inflow makes to other systems (sources, link
    # checks). Private, loopback and link-local addresses are refused unless this is on (`make
    # run` turns it on: the demo sources are on 127.0.0.1).
    fetch_allow_private: bool = False
    fetch_max_bytes: int = 5_000_000  # a bigger answer is refused, not cut
    fetch_timeout_seconds: float = 20.0  # a whole request, redirects included
    fetch_per_host: int = 2  # requests at once to one host
    fetch_user_agent: str = ""  # "": "Inflow/1 (+<base_url>)"
    # The scheduler of background jobs (server/jobs.py: source syncs, link checks, the queue's
    # refresh). Off: nothing runs by itself; "Sync now", "Check now" and "Refresh" still do.
    jobs: bool = True
    link_check_hours: int = 24  # how often every link of published aids is checked; 0 = by hand
    link_check_delay_seconds: float = 1.0  # between two requests to the same host (politeness)
    rule_health_days: int = 30  # contexts and apps unopened this long are reported
    queue_refresh_minutes: int = 60  # the authoring queue's refresh; 0 = by hand

    # -- Observability (docs/operations.md) -----------------------------------------------------
    # Prometheus metrics at GET /metrics (server/metrics.py): off unless on. Then open only to these
    # addresses or networks (behind proxies: the client they name, see _address_allowed) and to
    # bearers with the admin role: the figures describe the library and its failures.
    metrics: bool = False
    metrics_allow: tuple[str, ...] = ("127.0.0.1", "::1")
    metrics_cache_seconds: float = 5.0  # database counts (outboxes, links, sources) kept this long
    # `inflow serve`'s log lines (server/logs.py): "text" or "json" (one object per line).
    log_format: str = "text"
    # This node's name among the nodes on one PostgreSQL (INFLOW_NODE_NAME; docs/scale-out.md):
    # in logs, job_runs, index snapshots, /readyz and metrics. Default "<hostname>-<pid>", made
    # when the settings are built (not at import), so each process has its own.
    node_name: str = field(default_factory=default_node_name)
    # How often the cluster's PostgreSQL connection (server/cluster.py: the locks of work that runs
    # once) is checked, and how often a standby node's forwarder or mail sender tries the lock.
    cluster_check_seconds: float = 2.0

    @property
    def events_db_path(self) -> Path:
        return self.data_dir / "events.sqlite3"

    @property
    def db_path(self) -> Path:
        return self.data_dir / "inflow.sqlite3"

    @property
    def index_dir(self) -> Path:
        return self.data_dir / "index"

    def with_(self, **changes: Any) -> Settings:
        return replace(self, **changes)


def _coerce(value: str, current: Any) -> Any:
    if isinstance(current, bool):
        return value.lower() in {"1", "true", "yes", "on"}
    if isinstance(current, int):
        return int(value)
    if isinstance(current, float):
        return float(value)
    if isinstance(current, tuple):
        return tuple(v.strip() for v in value.split(",") if v.strip())
    if isinstance(current, Path) or current is None:
        return Path(value) if value else None
    return value


def _apply(obj: Any, values: dict[str, Any], env_prefix: str, env: dict[str, str]) -> Any:
    changes: dict[str, Any] = {}
    for f in fields(obj):
        current = getattr(obj, f.name)
        if f.name == "auth":
            continue
        if f.name in values:
            v = values[f.name]
            changes[f.name] = _coerce(str(v), current) if not isinstance(v, list) else tuple(v)
        key = f"{env_prefix}{f.name.upper()}"
        if key in env:
            changes[f.name] = _coerce(env[key], current)
    return replace(obj, **changes)


def load_settings(env: dict[str, str] | None = None, toml_path: Path | None = None) -> Settings:
    """Settings from an optional TOML file, then INFLOW_* environment variables.

    Auth settings use INFLOW_AUTH_* (e.g. INFLOW_AUTH_SERVER_URL) or an [auth] TOML table.
    """
    env = dict(os.environ) if env is None else env
    data: dict[str, Any] = {}
    path = toml_path or (Path(env["INFLOW_CONFIG"]) if env.get("INFLOW_CONFIG") else None)
    if path is not None:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    settings: Settings = _apply(Settings(), data, "INFLOW_", env)
    if env.get("INFLOW_APP_TEMPLATES"):
        settings = replace(settings, app_templates_dir=Path(env["INFLOW_APP_TEMPLATES"]))
    auth: AuthSettings = _apply(AuthSettings(), data.get("auth", {}), "INFLOW_AUTH_", env)
    return replace(settings, auth=auth)
