"""The audit log filter (SPEC §7), shared by the log page, the events API and exports.

One set of query parameters everywhere, so a filtered page, its API call and its export
always mean the same events:

=============  ==========================================================================
``from``       events at or after this time (RFC 3339, ``YYYY-MM-DD`` or
               ``YYYY-MM-DDTHH:MM``; UTC unless an offset is given)
``to``         events before this time; a bare date means the whole of that day
``event_type`` exact type (``action.evaluated``); repeat it for several
``agent``      agent id (UUID)
``session``    session id (UUID)
``actor``      exact actor (``user:alice``, ``agent:<id>``, ``system:integrator``)
``verdict``    ``ALLOW``, ``BLOCK``, ``HALT`` or ``REQUIRE_APPROVAL``
``result``     ``success``, ``denied``, ``failed``, ``approved``, ``rejected`` …
``q``          free text, at least 3 characters (``audit/search.py``)
=============  ==========================================================================

Bad values are refused with a 400 naming each field (``console.errors.Invalid``).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from urllib.parse import urlencode

from django.db.models import QuerySet

from console.errors import Invalid

from . import search

VERDICTS = ("ALLOW", "BLOCK", "HALT", "REQUIRE_APPROVAL")
RESULTS = ("success", "denied", "failed", "approved", "rejected", "expired", "cancelled", "pending")
# docs/events.md, for the filter's drop-down (any well-formed type is accepted).
EVENT_TYPES = (
    "action.evaluated",
    "action.completed",
    "guardrail.hit",
    "approval.requested",
    "approval.decided",
    "approval.expired",
    "approval.cancelled",
    "session.started",
    "session.ended",
    "session.halted",
    "session.revoked",
    "agent.registered",
    "agent.updated",
    "agent.paused",
    "agent.resumed",
    "agent.revoked",
    "key.issued",
    "key.revoked",
    "assessment.completed",
    "trust.changed",
    "tier.changed",
    "alert.raised",
    "policy.created",
    "policy.changed",
    "policy.backtested",
    "rule.created",
    "rule.changed",
    "rule.backtested",
    "guardrail.created",
    "guardrail.changed",
    "export.created",
    "operator.login",
    "operator.logout",
    "operator.login_failed",
    "operator.locked_out",
    "operator.created",
    "operator.updated",
    "operator.token_issued",
    "operator.token_revoked",
    "operator.deactivated",
    "operator.reactivated",
    "operator.password_changed",
    "operator.password_change_failed",
    "operator.password_reset",
    "access.denied",
)
PARAMS = ("from", "to", "event_type", "agent", "session", "actor", "verdict", "result", "q")
_TYPE = re.compile(r"[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+\Z")
_ACTOR = re.compile(r"(agent|user|system):\S.{0,190}\Z")
_RESULT = re.compile(r"[a-z][a-z_]{0,31}\Z")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}\Z")
MAX_TYPES = 20


@dataclass(frozen=True)
class LogFilter:
    start: datetime | None = None
    end: datetime | None = None
    event_types: tuple[str, ...] = ()
    agent: uuid.UUID | None = None
    session: uuid.UUID | None = None
    actor: str = ""
    verdict: str = ""
    result: str = ""
    q: str = ""
    # The parameters as given (for forms and links), normalised.
    params: dict = field(default_factory=dict, compare=False)

    @classmethod
    def parse(cls, data: Mapping) -> LogFilter:
        """Read the filter from a QueryDict or a plain mapping; Invalid names bad fields."""
        errors: dict[str, list[str]] = {}
        params: dict = {}

        def one(name: str) -> str:
            value = data.get(name, "")
            if isinstance(value, list):
                value = value[-1] if value else ""
            value = "" if value is None else str(value).strip()
            if value:
                params[name] = value
            return value

        start = _moment(one("from"), "from", errors, end=False)
        end = _moment(one("to"), "to", errors, end=True)
        if start and end and end <= start:
            errors.setdefault("to", []).append("Must be after 'from'.")
        if hasattr(data, "getlist"):
            types = [t.strip() for t in data.getlist("event_type") if t.strip()]
        else:
            raw = data.get("event_type") or []
            types = [t.strip() for t in ([raw] if isinstance(raw, str) else raw) if t.strip()]
        if types:
            params["event_type"] = types if len(types) > 1 else types[0]
        bad = [t for t in types if not _TYPE.match(t)]
        if bad:
            errors["event_type"] = [f"Not an event type: {bad[0][:64]!r}."]
        elif len(types) > MAX_TYPES:
            errors["event_type"] = [f"At most {MAX_TYPES} types."]
        agent = _uuid(one("agent"), "agent", errors)
        session = _uuid(one("session"), "session", errors)
        actor = one("actor")
        if actor and not _ACTOR.match(actor):
            errors["actor"] = ["Must be agent:<id>, user:<name> or system:<component>."]
        verdict = one("verdict").upper()
        if verdict:
            params["verdict"] = verdict
        if verdict and verdict not in VERDICTS:
            errors["verdict"] = [f"One of {', '.join(VERDICTS)}."]
        result = one("result").lower()
        if result:
            params["result"] = result
        if result and not _RESULT.match(result):
            errors["result"] = ["Not a result (e.g. success, denied, approved)."]
        q = one("q")
        if q and len(q) < search.MIN_LENGTH:
            errors["q"] = [f"At least {search.MIN_LENGTH} characters."]
        elif len(q) > 200:
            errors["q"] = ["At most 200 characters."]
        if errors:
            raise Invalid("The filter is not valid.", fields=errors)
        return cls(
            start=start,
            end=end,
            event_types=tuple(dict.fromkeys(types)),
            agent=agent,
            session=session,
            actor=actor,
            verdict=verdict,
            result=result,
            q=q,
            params=params,
        )

    @property
    def is_empty(self) -> bool:
        return not self.params

    def apply(self, events: QuerySet) -> QuerySet:
        """Filter a GovernanceEvent queryset (each filter has its index, see models.py)."""
        if self.start:
            events = events.filter(timestamp__gte=self.start)
        if self.end:
            events = events.filter(timestamp__lt=self.end)
        if len(self.event_types) == 1:
            events = events.filter(event_type=self.event_types[0])
        elif self.event_types:
            events = events.filter(event_type__in=self.event_types)
        if self.agent:
            events = events.filter(agent_id=self.agent)
        if self.session:
            events = events.filter(session_id=self.session)
        if self.actor:
            events = events.filter(actor=self.actor)
        if self.verdict:
            events = events.filter(verdict=self.verdict)
        if self.result:
            events = events.filter(result=self.result)
        if self.q:
            events = events.alias(search_text=search.search_text()).filter(
                search_text__contains_text=self.q
            )
        return events

    def as_params(self) -> dict:
        """The filter as query parameters (also the manifest's ``filters``)."""
        return dict(self.params)

    def querystring(self, **extra) -> str:
        pairs = []
        for name, value in {**self.params, **extra}.items():
            for item in value if isinstance(value, list) else [value]:
                if item not in (None, ""):
                    pairs.append((name, item))
        return urlencode(pairs)


def _uuid(value: str, name: str, errors: dict) -> uuid.UUID | None:
    if not value:
        return None
    try:
        return uuid.UUID(value)
    except ValueError:
        errors[name] = ["Must be a UUID."]
        return None


def _moment(value: str, name: str, errors: dict, *, end: bool) -> datetime | None:
    if not value:
        return None
    try:
        if _DATE.match(value):
            moment = datetime.combine(datetime.fromisoformat(value).date(), time(), UTC)
            return moment + timedelta(days=1) if end else moment
        moment = datetime.fromisoformat(value.replace("Z", "+00:00").replace(" ", "T"))
    except ValueError:
        errors[name] = ["Not a date or time (use 2026-11-21 or 2026-11-21T13:53:00Z)."]
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)
