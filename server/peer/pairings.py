"""Mentors paired with new hires: manual pairings, pairing rules and their runs, and the reads of
the learner (`my_mentors`) and of the mentor (`mentees`). docs/peer.md, "Mentors and new hires".

- A **pairing** (server/peer/models.py `Pairing`) gives a learner, known by their Keycloak
  username, a vetted active mentor of an app from `starts_on` to `ends_on` (both included). It ends
  on its own: an ended pairing is no longer shown anywhere but stays in the table (analytics).
  `learner_key` (the person key, server/peer/people.py) is filled the first time the learner is
  seen; from then on the pairing shows only to that person, not to another account that would
  carry the same username (another issuer).
- A **rule** (`PairingRule`) pairs the members of a Keycloak group (read through the admin API,
  server/peer/directory.py), optionally only those whose start date (the user attribute named by
  `start_claim`, the same name as the token claim it maps to) is within the last `days` days, with
  a mentor of the pool for `days` days (counted from the start date when there is one). Fair: each
  member, in username order, goes to the least-loaded mentor of the pool (current mentees, every
  app), ties by mentor id; never over `cap`; a member left over is reported. Idempotent: a member
  who has a current pairing for the app, or ever had one from this rule, is not paired again, and
  a run is one transaction (the loads are read inside it), so two runs at once cannot double up.
- Rules run from the admin API/console ("Run now") and every `pairing_run_interval_seconds`
  (default hourly; 0 = never) as the job `pairing-rules` (server/jobs.py): once across the nodes
  on one database, and not by itself when the scheduler is off (INFLOW_JOBS=0).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import uuid
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import sqlalchemy as sa
from aiohttp import web

from auth.identity import Identity
from server import keys
from server.admin.common import field_errors, who
from server.catalog import Catalog
from server.db.peer_tables import pairing_rules as rules_table
from server.db.peer_tables import pairings as pairings_table
from server.db.peer_tables import questions as questions_table
from server.db.resource_table import RowCodec
from server.errors import Conflict, NotFound, ValidationFailed
from server.jobs import JobFn, JobRun
from server.models import SLUG_RE, USERNAME_RE, FieldErrors, Mentor, dump, validate
from server.peer.directory import Directory, DirectoryUnavailable, KeycloakDirectory, Member
from server.peer.models import PAIRING_DAYS_MAX, Pairing, PairingRule, new_id
from server.storage import Changes, Storage, now_iso

log = logging.getLogger("inflow.peer.pairings")

PAIRINGS: RowCodec[Pairing] = RowCodec(Pairing)
RULES: RowCodec[PairingRule] = RowCodec(PairingRule)
SCHEDULER = ("", "", "pairing-scheduler")  # who the scheduled runs are audited as
MAX_OPEN_QUESTIONS = 20  # per mentee, in the mentor's view
CONTACT_EVENT = "mentor_contacted"


def today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


def is_current(pairing: Pairing, day: dt.date) -> bool:
    """Does the pairing run on `day`? (ISO dates compare as text.)"""
    iso = day.isoformat()
    return (pairing.starts_on or "") <= iso <= (pairing.ends_on or "")


def listed_mentor_of_app(catalog: Catalog, mentor_id: str, app_id: str) -> Mentor | None:
    """The mentor when vetted, active and mapped to the app; None otherwise."""
    for mentor in catalog.app_mentors.get(app_id, ()):
        if mentor.id == mentor_id:
            return mentor if mentor.listed else None
    return None


def mentor_by_id(catalog: Catalog, mentor_id: str) -> Mentor | None:
    return next((m for m in catalog.mentors if m.id == mentor_id), None)


# -- the plan of a rule run (pure: tested without Keycloak or a database) ----------------------


@dataclass
class Plan:
    """What a run does: who gets which mentor until when, and who is left out, and why."""

    pairs: list[tuple[Member, str, dt.date]] = field(default_factory=list)
    already_paired: list[str] = field(default_factory=list)
    not_new: list[str] = field(default_factory=list)  # start date outside the window
    no_start_date: list[str] = field(default_factory=list)
    unpaired: list[str] = field(default_factory=list)  # every mentor of the pool at the cap
    loads: dict[str, int] = field(default_factory=dict)  # mentor id -> mentees after the run


def plan_rule(
    rule: PairingRule,
    members: Iterable[Member],
    pool: Sequence[Mentor],
    loads: Mapping[str, int],
    already: Iterable[str],
    day: dt.date,
) -> Plan:
    """Members (any order) to pairs: username order, least-loaded mentor first, ties by id."""
    plan = Plan(loads={m.id: loads.get(m.id, 0) for m in pool})
    done = {u.lower() for u in already}
    own = {m.id: (m.username or "").lower() for m in pool}
    for member in sorted(members, key=lambda m: m.username):
        name = member.username
        if name in done:
            plan.already_paired.append(name)
            continue
        start = day
        if rule.start_claim:
            found = member.start_date(rule.start_claim)
            if found is None:
                plan.no_start_date.append(name)
                continue
            if not 0 <= (day - found).days < rule.days:
                plan.not_new.append(name)
                continue
            start = found
        free = [
            m.id for m in pool if plan.loads[m.id] < rule.cap and own[m.id] != name
        ]  # a mentor is nobody's mentee of themselves
        if not free:
            plan.unpaired.append(name)
            continue
        mentor_id = min(free, key=lambda i: (plan.loads[i], i))
        plan.loads[mentor_id] += 1
        done.add(name)
        plan.pairs.append((member, mentor_id, start + dt.timedelta(days=rule.days - 1)))
    return plan


# -- storage (runs in the storage thread) --------------------------------------------------------


def _all_pairings_sync(storage: Storage, where: Any = None) -> list[Pairing]:
    stmt = sa.select(pairings_table).order_by(pairings_table.c.ends_on.desc(), pairings_table.c.id)
    if where is not None:
        stmt = stmt.where(where)
    return [PAIRINGS.from_row(r._mapping) for r in storage.conn.execute(stmt)]


def _get_pairing_sync(storage: Storage, pairing_id: str) -> Pairing:
    row = storage.conn.execute(
        sa.select(pairings_table).where(pairings_table.c.id == pairing_id)
    ).first()
    if row is None:
        raise NotFound(f"No pairing with id {pairing_id!r}.")
    return PAIRINGS.from_row(row._mapping)


def _all_rules_sync(storage: Storage) -> list[PairingRule]:
    rows = storage.conn.execute(sa.select(rules_table).order_by(rules_table.c.id))
    return [RULES.from_row(r._mapping) for r in rows]


def _get_rule_sync(storage: Storage, rule_id: str) -> PairingRule:
    row = storage.conn.execute(sa.select(rules_table).where(rules_table.c.id == rule_id)).first()
    if row is None:
        raise NotFound(f"No pairing rule with id {rule_id!r}.")
    return RULES.from_row(row._mapping)


def _loads_sync(storage: Storage, day: dt.date) -> dict[str, int]:
    """Current mentees of each mentor (every app)."""
    iso = day.isoformat()
    p = pairings_table.c
    rows = storage.conn.execute(
        sa.select(p.mentor_id, sa.func.count())
        .where(p.starts_on <= iso, p.ends_on >= iso)
        .group_by(p.mentor_id)
    )
    return {mentor_id: int(n) for mentor_id, n in rows}


def _insert_pairing_sync(storage: Storage, pairing: Pairing) -> None:
    storage.conn.execute(sa.insert(pairings_table).values(PAIRINGS.to_row(pairing)))


# -- the service ---------------------------------------------------------------------------------


def _clean_username(value: Any) -> str:
    if not isinstance(value, str) or not USERNAME_RE.match(value.strip()):
        raise ValidationFailed(
            "'learner_username' must be a Keycloak username.", fields=["learner_username"]
        )
    return value.strip().lower()


def _days_or_end(data: Mapping[str, Any], start: dt.date) -> dt.date:
    """The last day from `days` (1..365) or `ends_on` (a date from `start` on)."""
    days, ends_on = data.get("days"), data.get("ends_on")
    if days in (None, "") and ends_on in (None, ""):
        raise ValidationFailed("Give 'days' or 'ends_on'.", fields=["days", "ends_on"])
    if days not in (None, ""):
        if isinstance(days, bool) or not isinstance(days, int):
            raise ValidationFailed("'days' must be a whole number.", fields=["days"])
        if not 1 <= days <= PAIRING_DAYS_MAX:
            raise ValidationFailed(f"'days' must be from 1 to {PAIRING_DAYS_MAX}.", fields=["days"])
        return start + dt.timedelta(days=days - 1)
    try:
        end = dt.date.fromisoformat(str(ends_on))
    except ValueError:
        raise ValidationFailed(
            "'ends_on' must be a date (YYYY-MM-DD).", fields=["ends_on"]
        ) from None
    if end < start:
        raise ValidationFailed("'ends_on' is before today.", fields=["ends_on"])
    if (end - start).days >= PAIRING_DAYS_MAX:
        raise ValidationFailed(
            f"A pairing lasts at most {PAIRING_DAYS_MAX} days.", fields=["ends_on"]
        )
    return end


class Pairings:
    """Pairings and rules over the content database, the catalog and the Keycloak directory."""

    def __init__(self, app: web.Application, directory: Directory) -> None:
        self.app = app
        self.directory = directory
        self._run_lock = asyncio.Lock()

    @property
    def storage(self) -> Storage:
        return self.app[keys.LIBRARY].storage

    @property
    def catalog(self) -> Catalog:
        return self.app[keys.LIBRARY].catalog

    # -- pairings --------------------------------------------------------------------------
    async def list_pairings(
        self, *, app_id: str = "", mentor_id: str = "", learner: str = "", ended: bool = False
    ) -> list[Pairing]:
        """Current pairings (and ended ones too with `ended`), the latest end first."""
        p = pairings_table.c
        conds: list[Any] = []
        if app_id:
            conds.append(p.app_id == app_id)
        if mentor_id:
            conds.append(p.mentor_id == mentor_id)
        if learner:
            conds.append(p.learner_username == learner.lower())
        if not ended:
            iso = today().isoformat()
            conds += [p.starts_on <= iso, p.ends_on >= iso]
        where = sa.and_(*conds) if conds else None
        return await self.storage.call(_all_pairings_sync, self.storage, where)

    async def get_pairing(self, pairing_id: str) -> Pairing:
        return await self.storage.call(_get_pairing_sync, self.storage, pairing_id)

    async def create_pairing(self, identity: Identity, data: Mapping[str, Any]) -> Pairing:
        """One pairing by hand: learner username, a vetted active mentor of the app, the app,
        `days` or `ends_on`. A learner has one current mentor per app (409 otherwise)."""
        unknown = sorted(set(data) - {"learner_username", "mentor_id", "app_id", "days", "ends_on"})
        if unknown:
            raise ValidationFailed(f"Unknown field(s): {', '.join(unknown)}.", fields=unknown)
        username = _clean_username(data.get("learner_username"))
        app_id, mentor_id = data.get("app_id"), data.get("mentor_id")
        if not isinstance(app_id, str) or app_id not in self.catalog.apps:
            raise ValidationFailed("'app_id' must be an app of the catalog.", fields=["app_id"])
        if not isinstance(mentor_id, str) or not SLUG_RE.match(mentor_id):
            raise ValidationFailed("'mentor_id' must be a mentor id.", fields=["mentor_id"])
        if listed_mentor_of_app(self.catalog, mentor_id, app_id) is None:
            raise ValidationFailed(
                f"{mentor_id!r} is not a vetted, active mentor of {app_id!r}.",
                fields=["mentor_id"],
            )
        start = today()
        end = _days_or_end(data, start)
        try:
            pairing = validate(
                Pairing,
                {
                    "learner_username": username,
                    "mentor_id": mentor_id,
                    "app_id": app_id,
                    "starts_on": start.isoformat(),
                    "ends_on": end.isoformat(),
                },
            )
        except FieldErrors as exc:
            raise field_errors(exc) from exc
        pairing = replace(
            pairing,
            id=new_id(),
            source="manual",
            created_by=identity.username or identity.subject,
            created_at=now_iso(),
        )

        def op(changes: Changes) -> Pairing:
            p = pairings_table.c
            iso = start.isoformat()
            clash = _all_pairings_sync(
                self.storage,
                sa.and_(
                    p.learner_username == username,
                    p.app_id == app_id,
                    p.starts_on <= iso,
                    p.ends_on >= iso,
                ),
            )
            if clash:
                raise Conflict(
                    f"{username} already has a mentor for {app_id} until {clash[0].ends_on} "
                    f"(pairing {clash[0].id}); end it first."
                )
            _insert_pairing_sync(self.storage, pairing)
            self.storage.audit_add_tx(
                who(identity),
                "pairing.create",
                "pairing",
                pairing.id,
                {"learner": username, "mentor": mentor_id, "app": app_id, "until": pairing.ends_on},
            )
            return pairing

        result, _, _ = await self.storage.write(op)
        return result

    async def end_pairing(self, identity: Identity, pairing_id: str) -> None:
        """Delete a pairing (an admin's mistake or a mentor who left); audited."""

        def op(changes: Changes) -> None:
            current = _get_pairing_sync(self.storage, pairing_id)
            self.storage.conn.execute(
                sa.delete(pairings_table).where(pairings_table.c.id == pairing_id)
            )
            self.storage.audit_add_tx(
                who(identity),
                "pairing.delete",
                "pairing",
                pairing_id,
                {"learner": current.learner_username, "mentor": current.mentor_id},
            )

        await self.storage.write(op)

    # -- rules -----------------------------------------------------------------------------
    async def list_rules(self) -> list[PairingRule]:
        return await self.storage.call(_all_rules_sync, self.storage)

    async def get_rule(self, rule_id: str) -> PairingRule:
        return await self.storage.call(_get_rule_sync, self.storage, rule_id)

    def _parse_rule(self, data: Mapping[str, Any], rule_id: str | None) -> PairingRule:
        sent = {k: v for k, v in data.items() if k not in {"created_at", "updated_at"}}
        if rule_id is not None:
            if sent.get("id", rule_id) != rule_id:
                raise ValidationFailed(
                    "The id in the body differs from the one in the URL.", fields=["id"]
                )
            sent["id"] = rule_id
        try:
            rule = validate(PairingRule, sent)
        except FieldErrors as exc:
            raise field_errors(exc) from exc
        if rule.app_id not in self.catalog.apps:
            raise ValidationFailed("'app_id' must be an app of the catalog.", fields=["app_id"])
        known = {m.id for m in self.catalog.mentors}
        unknown = [m for m in rule.mentor_ids if m not in known]
        if unknown:
            raise ValidationFailed(
                f"Unknown mentor(s): {', '.join(unknown)}.", fields=["mentor_ids"]
            )
        return rule

    async def save_rule(
        self, identity: Identity, data: Mapping[str, Any], rule_id: str | None = None
    ) -> tuple[PairingRule, bool]:
        """Create (`rule_id` None: 409 when the id exists) or replace a rule; (rule, created)."""
        rule = self._parse_rule(data, rule_id)

        def op(changes: Changes) -> tuple[PairingRule, bool]:
            stamp = now_iso()
            try:
                current: PairingRule | None = _get_rule_sync(self.storage, rule.id)
            except NotFound:
                current = None
            if current is not None and rule_id is None:
                raise Conflict(f"A pairing rule with id {rule.id!r} exists already.")
            if current is None and rule_id is not None:
                raise NotFound(f"No pairing rule with id {rule_id!r}.")
            saved = replace(
                rule, created_at=current.created_at if current else stamp, updated_at=stamp
            )
            r = rules_table.c
            if current is None:
                self.storage.conn.execute(sa.insert(rules_table).values(RULES.to_row(saved)))
            else:
                self.storage.conn.execute(
                    sa.update(rules_table).where(r.id == rule.id).values(RULES.to_row(saved))
                )
            self.storage.audit_add_tx(
                who(identity),
                "pairing_rule.update" if current else "pairing_rule.create",
                "pairing_rule",
                rule.id,
                {"group": rule.group, "app": rule.app_id, "active": rule.active},
            )
            return saved, current is None

        result, _, _ = await self.storage.write(op)
        return result

    async def delete_rule(self, identity: Identity, rule_id: str) -> None:
        """The rule goes; the pairings it made run to their end."""

        def op(changes: Changes) -> None:
            _get_rule_sync(self.storage, rule_id)
            self.storage.conn.execute(sa.delete(rules_table).where(rules_table.c.id == rule_id))
            self.storage.audit_add_tx(who(identity), "pairing_rule.delete", "pairing_rule", rule_id)

        await self.storage.write(op)

    def _pool(self, rule: PairingRule) -> tuple[list[Mentor], list[dict[str, str]]]:
        """The rule's usable mentors, and those of its list that cannot take mentees, why."""
        catalog = self.catalog
        if not rule.mentor_ids:
            return [m for m in catalog.app_mentors.get(rule.app_id, ()) if m.listed], []
        pool, skipped = [], []
        for mentor_id in rule.mentor_ids:
            mentor = listed_mentor_of_app(catalog, mentor_id, rule.app_id)
            if mentor is None:
                skipped.append(
                    {
                        "mentor_id": mentor_id,
                        "reason": f"not a vetted, active mentor of {rule.app_id}",
                    }
                )
            else:
                pool.append(mentor)
        return pool, skipped

    async def run_rule(self, identity: Identity | None, rule_id: str) -> dict[str, Any]:
        """Run one rule now; the summary says who got whom and who did not, and why."""
        rule = await self.get_rule(rule_id)
        members = await self.directory.group_members(rule.group)
        pool, pool_skipped = self._pool(rule)
        actor = who(identity) if identity is not None else SCHEDULER
        source = f"rule:{rule.id}"

        def op(changes: Changes) -> Plan:
            day = today()
            iso = day.isoformat()
            p = pairings_table.c
            names = [m.username for m in members]
            already: set[str] = set()
            for i in range(0, len(names), 500):
                chunk = names[i : i + 500]
                rows = _all_pairings_sync(
                    self.storage,
                    sa.and_(
                        p.learner_username.in_(chunk),
                        p.app_id == rule.app_id,
                        sa.or_(p.source == source, sa.and_(p.starts_on <= iso, p.ends_on >= iso)),
                    ),
                )
                already.update(r.learner_username for r in rows)
            plan = plan_rule(rule, members, pool, _loads_sync(self.storage, day), already, day)
            stamp = now_iso()
            for member, mentor_id, until in plan.pairs:
                _insert_pairing_sync(
                    self.storage,
                    Pairing(
                        id=new_id(),
                        learner_username=member.username,
                        mentor_id=mentor_id,
                        app_id=rule.app_id,
                        starts_on=iso,
                        ends_on=until.isoformat(),
                        source=source,
                        created_by=actor[2],
                        created_at=stamp,
                    ),
                )
            if plan.pairs:
                self.storage.audit_add_tx(
                    actor,
                    "pairing_rule.run",
                    "pairing_rule",
                    rule.id,
                    {"paired": len(plan.pairs), "unpaired": len(plan.unpaired)},
                )
            return plan

        async with self._run_lock:
            plan, _, _ = await self.storage.write(op)
        return {
            "rule": rule.id,
            "group": rule.group,
            "app_id": rule.app_id,
            "members": len(members),
            "paired": [
                {"learner_username": m.username, "mentor_id": mentor_id, "until": until.isoformat()}
                for m, mentor_id, until in plan.pairs
            ],
            "already_paired": plan.already_paired,
            "not_new": plan.not_new,
            "no_start_date": plan.no_start_date,
            "unpaired": [
                {
                    "learner_username": u,
                    "reason": f"every mentor of the pool has {rule.cap} mentees",
                }
                for u in plan.unpaired
            ],
            "pool": [{"mentor_id": i, "mentees": n} for i, n in sorted(plan.loads.items())],
            "pool_skipped": pool_skipped,
        }

    async def run_active_rules(self) -> list[dict[str, Any]]:
        """Every active rule once (the scheduled run); a rule that fails is logged and skipped."""
        out = []
        for rule in await self.list_rules():
            if not rule.active:
                continue
            try:
                out.append(await self.run_rule(None, rule.id))
            except (DirectoryUnavailable, NotFound) as exc:
                log.warning("pairing rule %s did not run: %s", rule.id, exc)
        return out

    # -- the learner ------------------------------------------------------------------------
    async def my_mentors(self, identity: Identity, app_id: str) -> list[dict[str, Any]]:
        """The caller's current mentors for the app (paired), as suggest's people show them."""
        username = (identity.username or "").lower()
        app = self.catalog.apps.get(app_id)
        if not username or app is None:
            return []
        key = self.storage.pseudonymize(identity.issuer, identity.subject)
        day = today()
        p = pairings_table.c
        found = await self.storage.call(
            _all_pairings_sync,
            self.storage,
            sa.and_(p.learner_username == username, p.app_id == app_id),
        )
        out: list[dict[str, Any]] = []
        unseen: list[str] = []
        for pairing in found:
            if not is_current(pairing, day) or pairing.learner_key not in ("", key):
                continue
            mentor = listed_mentor_of_app(self.catalog, pairing.mentor_id, app_id)
            if mentor is None:
                continue
            if not pairing.learner_key:
                unseen.append(pairing.id)
            out.append(
                {
                    "id": mentor.id,
                    "name": mentor.name,
                    "contact": mentor.contact,
                    "can_help_with": mentor.can_help_with,
                    "reason": f"Your mentor for {app.name}",
                    "paired": True,
                    "until": pairing.ends_on,
                }
            )
        if unseen:
            await self._seen(unseen, key)
        return out

    async def _seen(self, pairing_ids: list[str], key: str) -> None:
        def op(changes: Changes) -> None:
            p = pairings_table.c
            self.storage.conn.execute(
                sa.update(pairings_table)
                .where(p.id.in_(pairing_ids), p.learner_key == "")
                .values(learner_key=key)
            )

        await self.storage.write(op)

    async def contact(self, identity: Identity, mentor_id: str) -> None:
        """Record that the caller contacted a mentor: an analytics event (the app), no content."""
        mentor = mentor_by_id(self.catalog, mentor_id)
        if mentor is None or not mentor.listed:
            raise NotFound(f"No mentor with id {mentor_id!r} is available to you.")
        app_id = mentor.apps[0] if mentor.apps else ""
        username = (identity.username or "").lower()
        if username:
            p = pairings_table.c
            paired = await self.storage.call(
                _all_pairings_sync,
                self.storage,
                sa.and_(p.learner_username == username, p.mentor_id == mentor_id),
            )
            current = [x for x in paired if is_current(x, today())]
            if current:
                app_id = current[0].app_id
        from server.analytics.events import Event

        analytics = self.app[keys.ANALYTICS]
        event = Event(
            id=str(uuid.uuid4()), type=CONTACT_EVENT, at=dt.datetime.now(dt.UTC), app=app_id
        )
        await analytics.store.ingest(
            [event], analytics.pseudonym(identity.issuer, identity.subject)
        )

    # -- the mentor -------------------------------------------------------------------------
    async def mentees(self, mentor: Mentor) -> list[dict[str, Any]]:
        """The mentor's current mentees and each one's open questions of the pairing's app."""
        day = today()
        p = pairings_table.c
        current = [
            x
            for x in await self.storage.call(
                _all_pairings_sync, self.storage, p.mentor_id == mentor.id
            )
            if is_current(x, day)
        ]
        keys_ = sorted({x.learner_key for x in current if x.learner_key})
        questions = await self.storage.call(_open_questions_sync, self.storage, keys_)
        renderer = self.app[keys.RENDERER]
        out = []
        for pairing in sorted(current, key=lambda x: (x.learner_username, x.app_id)):
            app = self.catalog.apps.get(pairing.app_id)
            mine = [
                q for q in questions.get(pairing.learner_key, []) if q["app_id"] == pairing.app_id
            ][:MAX_OPEN_QUESTIONS]
            for q in mine:
                q["body_html"] = await renderer.render(q["body"])
            out.append(
                {
                    "pairing_id": pairing.id,
                    "learner_username": pairing.learner_username,
                    "app_id": pairing.app_id,
                    "app_name": app.name if app else pairing.app_id,
                    "since": pairing.starts_on,
                    "until": pairing.ends_on,
                    "seen": bool(pairing.learner_key),
                    "open_questions": mine,
                }
            )
        return out


def _open_questions_sync(
    storage: Storage, learner_keys: list[str]
) -> dict[str, list[dict[str, Any]]]:
    if not learner_keys:
        return {}
    q = questions_table.c
    rows = storage.conn.execute(
        sa.select(q.id, q.asker_key, q.app_id, q.context_id, q.body, q.created_at)
        .where(q.asker_key.in_(learner_keys), q.status == "open")
        .order_by(q.created_at.desc())
    )
    out: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        out.setdefault(r.asker_key, []).append(
            {
                "id": r.id,
                "app_id": r.app_id,
                "context_id": r.context_id,
                "body": r.body,
                "created_at": r.created_at,
            }
        )
    return out


def pairing_json(pairing: Pairing, catalog: Catalog) -> dict[str, Any]:
    data = dump(pairing)
    mentor = mentor_by_id(catalog, pairing.mentor_id)
    app = catalog.apps.get(pairing.app_id)
    data["mentor_name"] = mentor.name if mentor else pairing.mentor_id
    data["app_name"] = app.name if app else pairing.app_id
    return data


# -- the functions other parts call -------------------------------------------------------------


def service(app: web.Application) -> Pairings:
    return app[keys.PAIRINGS]


async def my_mentors(
    app: web.Application, identity: Identity | None, app_id: str
) -> list[dict[str, Any]]:
    """The caller's paired mentors for the app (for the panel's people and suggest)."""
    if identity is None or keys.PAIRINGS not in app:
        return []
    return await app[keys.PAIRINGS].my_mentors(identity, app_id)


JOB = "pairing-rules"  # the scheduled run of the active rules (server/jobs.py)


def _scheduled(pairings: Pairings) -> JobFn:
    """The job: every active rule, in one go; a failure is recorded in the job's state and
    logged, and the next turn tries again."""

    async def run(job: JobRun) -> None:
        summaries = await pairings.run_active_rules()
        for summary in summaries:
            if summary["paired"] or summary["unpaired"]:
                log.info(
                    "pairing rule %s: %d paired, %d left unpaired",
                    summary["rule"],
                    len(summary["paired"]),
                    len(summary["unpaired"]),
                )
        job.progress(len(summaries), len(summaries), f"{len(summaries)} active rules run")

    return run


async def pairings_ctx(app: web.Application) -> AsyncIterator[None]:
    """cleanup_ctx (after the library's and the jobs'): the service, the suggest hook, the
    scheduled runs (a job, stopped here before the directory closes)."""
    settings = app[keys.SETTINGS]
    directory = KeycloakDirectory(settings.auth)
    pairings = Pairings(app, directory)
    app[keys.PAIRINGS] = pairings
    app[keys.SUGGESTER].paired_mentors = pairings.my_mentors
    jobs = app.get(keys.JOBS)
    interval = settings.pairing_run_interval_seconds
    if jobs is not None and interval > 0:
        jobs.register(JOB, interval, _scheduled(pairings), first_in=min(interval, 60.0))
    try:
        yield
    finally:
        if jobs is not None:
            await jobs.stop(JOB)
        await directory.aclose()


__all__ = [
    "Pairings",
    "Plan",
    "is_current",
    "my_mentors",
    "pairing_json",
    "pairings_ctx",
    "plan_rule",
    "service",
]
