"""Every typed application and request key, in one place."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    import ipaddress

    from auth.identity import Identity
    from auth.service import TokenAuthenticator
    from server.analytics.service import Analytics
    from server.app_templates import AppTemplate
    from server.cache import ResultCache
    from server.cluster import Cluster
    from server.console.oidc import AdminOidc
    from server.console.session import ConsoleSession, SessionStore
    from server.fetch import SafeFetcher
    from server.follow import Follower
    from server.jobs import Jobs
    from server.learn.session import LearnOidc, LearnSessionStore
    from server.library import Library
    from server.metrics import Metrics
    from server.paths.lrs import LrsReader
    from server.peer.pairings import Pairings
    from server.peer.questions import QuestionService
    from server.peer.recommendations import Recommendations
    from server.peer.sender import MailSender
    from server.peer.store import PeerStore
    from server.queue.service import QueueService
    from server.ratelimit import TokenBuckets
    from server.render import AsyncRenderer
    from server.settings import Settings
    from server.sources.service import SourceService
    from server.suggest import Suggester

SETTINGS: web.AppKey[Settings] = web.AppKey("settings")
# The library keeps database, index and in-memory catalog in step (server/library.py).
LIBRARY: web.AppKey[Library] = web.AppKey("library")
RESULT_CACHE: web.AppKey[ResultCache] = web.AppKey("result_cache")
SUGGESTER: web.AppKey[Suggester] = web.AppKey("suggester")
RENDERER: web.AppKey[AsyncRenderer] = web.AppKey("renderer")
AUTHENTICATOR: web.AppKey[TokenAuthenticator] = web.AppKey("authenticator")

# Request keys: the verified caller, set by server.security.auth_middleware (None when anonymous).
IDENTITY: web.RequestKey[Identity | None] = web.RequestKey("identity")
# The request body as read once by server.body.read_body (for the request log and the handler).
REQUEST_BODY: web.RequestKey[bytes] = web.RequestKey("inflow_body")

# Learning analytics: the events store, the pseudonymizer and the xAPI forwarder (server/analytics).
ANALYTICS: web.AppKey[Analytics] = web.AppKey("analytics")

__all__ = [
    "ANALYTICS",
    "AUTHENTICATOR",
    "IDENTITY",
    "LIBRARY",
    "RENDERER",
    "REQUEST_BODY",
    "RESULT_CACHE",
    "SETTINGS",
    "SUGGESTER",
]

# Admin console (server/console): server-side sessions, and the Keycloak client for sign-in.
ADMIN_SESSIONS: web.AppKey[SessionStore] = web.AppKey("admin_sessions")
ADMIN_OIDC: web.AppKey[AdminOidc] = web.AppKey("admin_oidc")
__all__ += ["ADMIN_OIDC", "ADMIN_SESSIONS"]
# Request key: the admin console session of this request (server/console/session.py), if any.
CONSOLE_SESSION: web.RequestKey[ConsoleSession | None] = web.RequestKey("console_session")
__all__ += ["CONSOLE_SESSION"]
# App templates by id (server/app_templates.py), read at start-up (server/admin/templates_api.py).
APP_TEMPLATES: web.AppKey[dict[str, AppTemplate]] = web.AppKey("app_templates")
__all__ += ["APP_TEMPLATES"]
# Peer learning (server/peer): its resources in the content database, opened after the library.
PEER: web.AppKey[PeerStore] = web.AppKey("peer")
# Each person's peer writes this hour (server/peer/limits.py); absent when the limit is off.
PEER_WRITES: web.AppKey[TokenBuckets] = web.AppKey("peer_writes")
__all__ += ["PEER", "PEER_WRITES"]
# Mentor pairings and pairing rules (server/peer/pairings.py), opened in pairings_ctx.
PAIRINGS: web.AppKey[Pairings] = web.AppKey("pairings")
__all__ += ["PAIRINGS"]
# The e-mail sender task (server/peer/sender.py), only when INFLOW_SMTP_HOST is set.
MAIL_SENDER: web.AppKey[MailSender] = web.AppKey("mail_sender")
__all__ += ["MAIL_SENDER"]
# Mentors' recommendations in memory (server/peer/recommendations.py), a suggest signal too.
PEER_RECS: web.AppKey[Recommendations] = web.AppKey("peer_recs")
__all__ += ["PEER_RECS"]
# Questions (server/peer/questions.py) with their index, made in question_index_ctx.
QUESTIONS: web.AppKey[QuestionService] = web.AppKey("questions")
__all__ += ["QUESTIONS"]
# The locks of work that runs once across the nodes (server/cluster.py), opened in cluster_ctx.
CLUSTER: web.AppKey[Cluster] = web.AppKey("cluster")
__all__ += ["CLUSTER"]
# Background jobs (server/jobs.py): source syncs, link checks, the queue's refresh.
JOBS: web.AppKey[Jobs] = web.AppKey("jobs")
# The one safe HTTP client for other systems (server/fetch), opened in fetcher_ctx.
FETCHER: web.AppKey[SafeFetcher] = web.AppKey("fetcher")
# Sources and their syncs (server/sources/service.py), opened in sources_ctx.
SOURCES: web.AppKey[SourceService] = web.AppKey("sources")
__all__ += ["FETCHER", "JOBS", "SOURCES"]
# The authoring queue (server/queue/service.py), made in queue_ctx (server/queue/api.py).
QUEUE: web.AppKey[QueueService] = web.AppKey("queue")
__all__ += ["QUEUE"]
# Learning paths' progress (server/paths/lrs.py, learner_api.py): the LRS reader (only when an
# LRS is configured) and each person's "sync my progress" requests.
PATHS_LRS: web.AppKey[LrsReader] = web.AppKey("paths_lrs")
PATHS_SYNCS: web.AppKey[TokenBuckets] = web.AppKey("paths_syncs")
__all__ += ["PATHS_LRS", "PATHS_SYNCS"]
# The learner web app (server/learn): its sessions and Keycloak client on the root app, opened
# and closed by learn_ctx; on the /learn sub-app, the root app, whose services take a
# web.Application; the request key holds the web app session of this request, if any.
LEARN_SESSIONS: web.AppKey[LearnSessionStore] = web.AppKey("learn_sessions")
LEARN_OIDC: web.AppKey[LearnOidc] = web.AppKey("learn_oidc")
LEARN_ROOT_APP: web.AppKey[web.Application] = web.AppKey("learn_root_app")
LEARN_SESSION: web.RequestKey[ConsoleSession | None] = web.RequestKey("learn_session")
__all__ += ["LEARN_OIDC", "LEARN_ROOT_APP", "LEARN_SESSION", "LEARN_SESSIONS"]
# Prometheus metrics of this app (server/metrics.py), and the networks that may read /metrics.
METRICS: web.AppKey[Metrics] = web.AppKey("metrics")
METRICS_NETWORKS: web.AppKey[list[ipaddress.IPv4Network | ipaddress.IPv6Network]] = web.AppKey(
    "metrics_networks"
)
__all__ += ["METRICS", "METRICS_NETWORKS"]
# The follower of other nodes' content changes (server/follow.py), on PostgreSQL only.
FOLLOWER: web.AppKey[Follower] = web.AppKey("follower")
__all__ += ["FOLLOWER"]
