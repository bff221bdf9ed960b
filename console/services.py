"""Every write to the agent registry (SPEC §1), one function per change.

Each function opens the transaction, makes the change with a conditional update (so two
operators racing cannot both win), records its event in the same transaction, and schedules
side effects (websocket hints) after commit.
"""

from __future__ import annotations

import logging
import secrets

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from audit.services import record

from . import credentials, hints
from .errors import Conflict, Invalid
from .models import Agent, AgentSession, ApiKey, OperatorToken
from .roles import ADMIN, ROLES
from .validation import normalize_scope, normalize_settings, require_reason

log = logging.getLogger("warden.console")


def _user_actor(user) -> str:
    return f"user:{user.get_username()}"


# --- agents ---------------------------------------------------------------------------
def register_agent(
    *, name: str, by, description: str = "", scope=None, settings=None, reason: str = ""
) -> Agent:
    name = (name or "").strip()
    if not name:
        raise Invalid("A name is required.", fields={"name": ["This field is required."]})
    if len(name) > 100:
        raise Invalid("The name is too long.", fields={"name": ["At most 100 characters."]})
    scope_doc = normalize_scope(scope)
    settings_doc = normalize_settings(settings)
    try:
        with transaction.atomic():
            agent = Agent.objects.create(
                name=name,
                description=description or "",
                owner=by,
                scope=scope_doc,
                fail_mode=settings_doc["fail_mode"],
                pause_on_halt=settings_doc["pause_on_halt"],
                approval_ttl_seconds=settings_doc["approval_ttl_seconds"],
                budgets=settings_doc["budgets"],
            )
            record(
                "agent.registered",
                actor=_user_actor(by),
                agent_id=agent.id,
                reason=reason or "registered",
                payload={
                    "name": agent.name,
                    "description": agent.description,
                    "owner": by.get_username(),
                    "scope": scope_doc,
                    "settings": agent.settings_document(),
                },
            )
    except IntegrityError as exc:
        if Agent.objects.filter(name=name).exists():
            raise Conflict(
                "An agent with this name already exists.",
                code="name_taken",
                fields={"name": ["An agent with this name already exists."]},
            ) from exc
        raise
    return agent


def update_agent(
    agent: Agent, *, by, reason: str, description=None, scope=None, settings=None, owner=None
) -> Agent:
    """Change an agent's description, scope, settings or owner (admin)."""
    reason = require_reason(reason)
    with transaction.atomic():
        agent = Agent.objects.select_for_update().get(pk=agent.pk)
        if agent.status == Agent.Status.REVOKED:
            raise Conflict("A revoked agent cannot be changed.", code="agent_revoked")
        before = {
            "description": agent.description,
            "scope": agent.scope,
            "settings": agent.settings_document(),
            "owner": agent.owner.get_username(),
        }
        if description is not None:
            agent.description = description
        if scope is not None:
            agent.scope = normalize_scope(scope)
        if settings is not None:
            doc = normalize_settings(settings, base=agent.settings_document())
            agent.fail_mode = doc["fail_mode"]
            agent.pause_on_halt = doc["pause_on_halt"]
            agent.approval_ttl_seconds = doc["approval_ttl_seconds"]
            agent.budgets = doc["budgets"]
        if owner is not None:
            agent.owner = owner
        agent.save()
        after = {
            "description": agent.description,
            "scope": agent.scope,
            "settings": agent.settings_document(),
            "owner": agent.owner.get_username(),
        }
        changed = {k: {"from": before[k], "to": after[k]} for k in before if before[k] != after[k]}
        record(
            "agent.updated",
            actor=_user_actor(by),
            agent_id=agent.id,
            reason=reason,
            payload={"changes": changed},
        )
    hints.agent_changed_on_commit(agent.id)
    return agent


def _transition(
    agent: Agent, *, by, reason: str, source: set[str], target: str, event: str
) -> Agent:
    reason = require_reason(reason)
    with transaction.atomic():
        current = Agent.objects.select_for_update().get(pk=agent.pk)
        if current.status not in source:
            raise Conflict(
                f"The agent is {current.status}; it cannot become {target}.",
                code=f"agent_{current.status}",
            )
        previous = current.status
        current.status = target
        current.save(update_fields=["status", "updated_at"])
        record(
            event,
            actor=_user_actor(by),
            agent_id=current.id,
            reason=reason,
            payload={"from": previous, "to": target},
        )
    hints.agent_changed_on_commit(current.id)
    return current


def pause_agent(agent: Agent, *, by, reason: str) -> Agent:
    """Active → Paused: new sessions are refused; open ones run to their end (SPEC §1)."""
    return _transition(
        agent,
        by=by,
        reason=reason,
        source={Agent.Status.ACTIVE},
        target=Agent.Status.PAUSED,
        event="agent.paused",
    )


def resume_agent(agent: Agent, *, by, reason: str) -> Agent:
    """Paused → Active."""
    return _transition(
        agent,
        by=by,
        reason=reason,
        source={Agent.Status.PAUSED},
        target=Agent.Status.ACTIVE,
        event="agent.resumed",
    )


def revoke_agent(agent: Agent, *, by, reason: str) -> Agent:
    """Active/Paused → Revoked, permanently (SPEC §1).

    Every key stops authenticating at once, open sessions close as ``revoked``, open
    approval requests are cancelled and live subscribers are told.
    """
    reason = require_reason(reason)
    actor = _user_actor(by)
    with transaction.atomic():
        now = timezone.now()
        # Open sessions before the agent row: the order proposals and halts take them in.
        sessions = list(
            AgentSession.objects.select_for_update().filter(
                agent=agent, status=AgentSession.Status.OPEN
            )
        )
        current = Agent.objects.select_for_update().get(pk=agent.pk)
        if current.status == Agent.Status.REVOKED:
            raise Conflict("The agent is already revoked.", code="agent_revoked")
        previous = current.status
        current.status = Agent.Status.REVOKED
        current.save(update_fields=["status", "updated_at"])
        keys = list(
            ApiKey.objects.filter(agent=agent, revoked_at__isnull=True).values_list("id", flat=True)
        )
        ApiKey.objects.filter(id__in=keys).update(revoked_at=now)
        record(
            "agent.revoked",
            actor=actor,
            agent_id=agent.id,
            reason=reason,
            payload={
                "from": previous,
                "to": Agent.Status.REVOKED,
                "keys_revoked": [str(k) for k in keys],
            },
        )
        from approvals.services import cancel_open_requests_for_agent

        # The requests first, under the revocation's reason and actor; the sessions then
        # close with nothing left pending.
        cancel_open_requests_for_agent(agent, by=by, reason=f"agent revoked: {reason}")
        for session in sessions:
            _close_session(
                session,
                status=AgentSession.Status.REVOKED,
                actor=actor,
                reason=f"agent revoked: {reason}",
                event="session.revoked",
            )
    hints.agent_changed_on_commit(agent.id, kind="revoked")
    return Agent.objects.get(pk=agent.pk)


# --- keys -----------------------------------------------------------------------------
def issue_key(agent: Agent, *, by, label: str = "") -> tuple[ApiKey, str]:
    """A new API key; the plain key is returned once and never stored (SPEC §1)."""
    with transaction.atomic():
        agent = Agent.objects.select_for_update().get(pk=agent.pk)
        if agent.status == Agent.Status.REVOKED:
            raise Conflict("A revoked agent cannot get keys.", code="agent_revoked")
        prefix, full = credentials.generate(credentials.AGENT_KEY)
        key = ApiKey.objects.create(
            agent=agent,
            prefix=prefix,
            key_hash=credentials.key_hash(full),
            label=(label or "")[:100],
            created_by=by,
        )
        record(
            "key.issued",
            actor=_user_actor(by),
            agent_id=agent.id,
            reason="key issued",
            payload={"key_id": str(key.id), "prefix": prefix, "label": key.label},
        )
    return key, full


def revoke_key(key: ApiKey, *, by, reason: str) -> ApiKey:
    reason = require_reason(reason)
    with transaction.atomic():
        updated = ApiKey.objects.filter(pk=key.pk, revoked_at__isnull=True).update(
            revoked_at=timezone.now()
        )
        if not updated:
            raise Conflict("This key is already revoked.", code="key_revoked")
        record(
            "key.revoked",
            actor=_user_actor(by),
            agent_id=key.agent_id,
            reason=reason,
            payload={"key_id": str(key.id), "prefix": key.prefix},
        )
    return ApiKey.objects.get(pk=key.pk)


# --- operators ------------------------------------------------------------------------
def issue_operator_token(user, *, by) -> tuple[OperatorToken, str]:
    """A new operator API token; the plain token is returned once and never stored."""
    if not user.is_active:
        raise Conflict("A deactivated operator cannot get tokens.", code="operator_inactive")
    with transaction.atomic():
        prefix, full = credentials.generate(credentials.OPERATOR_TOKEN)
        token = OperatorToken.objects.create(
            user=user, prefix=prefix, key_hash=credentials.key_hash(full)
        )
        record(
            "operator.token_issued",
            actor=by if isinstance(by, str) else _user_actor(by),
            reason="operator API token issued",
            payload={"user": user.get_username(), "prefix": prefix},
        )
    return token, full


def revoke_operator_token(token: OperatorToken, *, by, reason: str) -> OperatorToken:
    """Revoke one operator API token: it stops authenticating on its very next request
    (authentication reads the token on every request; nothing caches it)."""
    reason = require_reason(reason)
    with transaction.atomic():
        updated = OperatorToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(
            revoked_at=timezone.now()
        )
        if not updated:
            raise Conflict("This token is already revoked.", code="token_revoked")
        record(
            "operator.token_revoked",
            actor=_user_actor(by),
            reason=reason,
            payload={"user": token.user.get_username(), "prefix": token.prefix},
        )
    return OperatorToken.objects.select_related("user").get(pk=token.pk)


_ADMINS = Q(is_superuser=True) | Q(groups__name=ADMIN)


def _groups(roles: list[str]) -> list[Group]:
    return [Group.objects.get_or_create(name=name)[0] for name in roles]


def _checked_roles(roles) -> list[str]:
    if not isinstance(roles, list | tuple) or not all(isinstance(r, str) for r in roles):
        raise Invalid("Roles must be a list of role names.", fields={"roles": ["A list."]})
    unknown = sorted(set(roles) - set(ROLES))
    if unknown:
        raise Invalid(
            f"Unknown role: {', '.join(unknown)}.",
            fields={"roles": [f"Choose from {', '.join(ROLES)}."]},
        )
    if not roles:
        raise Invalid(
            "An operator needs at least one role (to take every role away, deactivate them).",
            fields={"roles": ["Choose at least one role."]},
        )
    return sorted(set(roles))


def create_operator(*, by, username: str, roles, reason: str):
    """A new operator with ``roles`` and a random password, returned once to hand over
    (they change it after logging in). Returns ``(user, password)``."""
    User = get_user_model()
    reason = require_reason(reason)
    username = username.strip() if isinstance(username, str) else ""
    try:
        User.username_validator(username)
    except ValidationError as exc:
        raise Invalid("The user name is not valid.", fields={"username": exc.messages}) from exc
    if not username or len(username) > 150:
        raise Invalid("The user name is not valid.", fields={"username": ["1 to 150 characters."]})
    roles = _checked_roles(roles)
    password = secrets.token_urlsafe(12)
    try:
        with transaction.atomic():
            user = User.objects.create_user(username, password=password)
            user.groups.set(_groups(roles))
            record(
                "operator.created",
                actor=_user_actor(by),
                reason=reason,
                payload={"username": username, "roles": roles},
            )
    except IntegrityError as exc:
        raise Conflict(
            "An operator with this user name exists.",
            code="username_taken",
            fields={"username": ["Taken."]},
        ) from exc
    return user, password


def operator_roles(user) -> list[str]:
    """The roles an operator holds (a superuser is always an admin)."""
    names = set(user.groups.filter(name__in=ROLES).values_list("name", flat=True))
    if user.is_superuser:
        names.add(ADMIN)
    return sorted(names)


def _lock_operators(user):
    """Lock the operator being changed and every active admin, so two admins changing each
    other at once cannot both pass the last-admin check."""
    User = get_user_model()
    list(
        User.objects.select_for_update(of=("self",))
        .filter(_ADMINS, is_active=True)
        .values_list("pk")
    )
    return User.objects.select_for_update().get(pk=user.pk)


def _keeps_an_admin(user, *, roles: list[str], active: bool) -> bool:
    """Whether an active admin other than ``user`` remains, or ``user`` stays one."""
    if active and ADMIN in roles:
        return True
    User = get_user_model()
    return User.objects.filter(_ADMINS, is_active=True).exclude(pk=user.pk).exists()


def set_operator_roles(user, *, by, roles, reason: str):
    """Replace an operator's roles (SPEC §8). They apply from the operator's next request.
    Refused: no role at all (deactivate instead), an admin dropping their own admin role,
    a superuser without admin, and the change that would leave no active admin."""
    reason = require_reason(reason)
    roles = _checked_roles(roles)
    with transaction.atomic():
        user = _lock_operators(user)
        previous = operator_roles(user)
        if user.is_superuser and ADMIN not in roles:
            raise Invalid(
                "A superuser is always an admin.", fields={"roles": ["Keep the admin role."]}
            )
        if user.pk == by.pk and ADMIN in previous and ADMIN not in roles:
            raise Conflict(
                "You cannot remove your own admin role; ask another admin.", code="self_demotion"
            )
        if not _keeps_an_admin(user, roles=roles, active=user.is_active):
            raise Conflict("This would leave Warden without an active admin.", code="last_admin")
        if roles == previous:
            raise Conflict("The operator already has exactly these roles.", code="no_change")
        user.groups.set(_groups(roles))
        record(
            "operator.updated",
            actor=_user_actor(by),
            reason=reason,
            payload={"username": user.get_username(), "roles": roles, "previous_roles": previous},
        )
        hints.operator_changed_on_commit(user.pk)
    return user


def set_operator_active(user, *, by, active: bool, reason: str):
    """Deactivate an operator (their console session and API tokens are refused from their
    next request; the tokens work again if they are reactivated) or reactivate one.
    Refused: deactivating yourself, and deactivating the last active admin."""
    reason = require_reason(reason)
    with transaction.atomic():
        user = _lock_operators(user)
        if user.is_active == active:
            state = "active" if active else "deactivated"
            raise Conflict(f"The operator is already {state}.", code=f"already_{state}")
        if not active and user.pk == by.pk:
            raise Conflict("You cannot deactivate yourself.", code="self_deactivation")
        roles = operator_roles(user)
        if not active and not _keeps_an_admin(user, roles=roles, active=False):
            raise Conflict("This would leave Warden without an active admin.", code="last_admin")
        user.is_active = active
        user.save(update_fields=["is_active"])
        record(
            "operator.reactivated" if active else "operator.deactivated",
            actor=_user_actor(by),
            reason=reason,
            payload={"username": user.get_username(), "roles": roles},
        )
        hints.operator_changed_on_commit(user.pk)
    return user


def change_password(user, *, new_password: str):
    """An operator's own new password (already validated by Django's password change form,
    which checked the current one). Their other console sessions end."""
    with transaction.atomic():
        user.set_password(new_password)
        user.save(update_fields=["password"])
        record(
            "operator.password_changed",
            actor=_user_actor(user),
            reason="password changed by the operator",
            payload={"username": user.get_username()},
        )
    return user


def record_password_change_failure(user, *, failures: int) -> None:
    """A wrong current password on the password change form (the view ends the session
    at the fifth)."""
    with transaction.atomic():
        record(
            "operator.password_change_failed",
            actor=_user_actor(user),
            result="failed",
            reason="wrong current password on the password change form",
            payload={"username": user.get_username(), "failures": failures},
        )


def reset_operator_password(user, *, by, reason: str) -> str:
    """An admin sets a new random password for another operator (a forgotten one) and
    gets it once, to hand over; the operator's console sessions end."""
    reason = require_reason(reason)
    if user.pk == by.pk:
        raise Conflict("Change your own password from your account page.", code="own_password")
    password = secrets.token_urlsafe(12)
    with transaction.atomic():
        user = get_user_model().objects.select_for_update().get(pk=user.pk)
        user.set_password(password)
        user.save(update_fields=["password"])
        record(
            "operator.password_reset",
            actor=_user_actor(by),
            reason=reason,
            payload={"username": user.get_username()},
        )
    return password


# --- sessions -------------------------------------------------------------------------
def open_session(agent: Agent, *, workflow_id: str | None = None, goal: str = "") -> AgentSession:
    """Open a session for an authenticated agent (SPEC §9 ``POST /api/v1/sessions``)."""
    with transaction.atomic():
        current = Agent.objects.get(pk=agent.pk)
        if current.status == Agent.Status.REVOKED:
            raise Conflict("This agent has been revoked.", code="agent_revoked")
        if current.status == Agent.Status.PAUSED:
            raise Conflict("This agent is paused; new sessions are refused.", code="agent_paused")
        if not current.is_assessed:
            raise Conflict(
                "This agent has no risk assessment yet; assess it before opening sessions.",
                code="agent_not_assessed",
            )
        session = AgentSession.objects.create(
            agent=current, workflow_id=workflow_id or None, goal=goal or ""
        )
        record(
            "session.started",
            actor=current.actor,
            agent_id=current.id,
            session_id=session.id,
            workflow_id=session.workflow_id,
            run_id=session.run_id,
            payload={"goal": session.goal, "effective_tier": current.effective_tier},
        )
    return session


def _close_session(
    session: AgentSession, *, status: str, actor: str, reason: str, event: str
) -> None:
    """Close a locked open session and record it (caller holds the transaction)."""
    session.status = status
    session.ended_at = timezone.now()
    session.end_reason = reason
    session.save(update_fields=["status", "ended_at", "end_reason"])
    recorded = record(
        event,
        actor=actor,
        agent_id=session.agent_id,
        session_id=session.id,
        workflow_id=session.workflow_id,
        run_id=session.run_id,
        result="success" if status == AgentSession.Status.ENDED else status,
        reason=reason,
        payload={
            "status": status,
            "action_count": session.action_count,
            "spend_total": session.spend_total,
        },
    )
    from approvals.services import cancel_open_requests_for_session
    from trust.hooks import event_recorded

    event_recorded(recorded)  # alignment is computed at session end (SPEC §5.3)
    cancel_open_requests_for_session(session, reason=f"the session that asked is {status}")


def _locked_open_session(session: AgentSession) -> AgentSession:
    locked = AgentSession.objects.select_for_update().get(pk=session.pk)
    if locked.status != AgentSession.Status.OPEN:
        raise Conflict(f"The session is {locked.status}.", code=f"session_{locked.status}")
    return locked


def end_session(session: AgentSession, *, reason: str = "ended by agent") -> AgentSession:
    with transaction.atomic():
        locked = _locked_open_session(session)
        _close_session(
            locked,
            status=AgentSession.Status.ENDED,
            actor=f"agent:{locked.agent_id}",
            reason=reason,
            event="session.ended",
        )
    hints.session_closed_on_commit(locked)
    return locked


def halt_session(
    session: AgentSession, *, by=None, reason: str, actor: str | None = None
) -> AgentSession:
    """End one session now: every later action on it gets HALT (SPEC §1).

    Called by on-call (``by``) or by the pipeline on a HALT verdict (``actor``). Pauses the
    agent too when its ``pause_on_halt`` setting is on.
    """
    reason = require_reason(reason)
    actor = actor or _user_actor(by)
    with transaction.atomic():
        # The session first, then its agent: the order every writer takes them in
        # (proposals, revocation), so two of them never wait on each other.
        locked = _locked_open_session(session)
        _close_session(
            locked,
            status=AgentSession.Status.HALTED,
            actor=actor,
            reason=reason,
            event="session.halted",
        )
        agent = Agent.objects.select_for_update().get(pk=locked.agent_id)
        if agent.pause_on_halt_effective and agent.status == Agent.Status.ACTIVE:
            Agent.objects.filter(pk=agent.pk).update(
                status=Agent.Status.PAUSED, updated_at=timezone.now()
            )
            record(
                "agent.paused",
                actor=actor,
                agent_id=agent.id,
                reason=f"pause on halt: {reason}",
                payload={
                    "from": Agent.Status.ACTIVE,
                    "to": Agent.Status.PAUSED,
                    "session_id": locked.id,
                },
            )
    hints.session_closed_on_commit(locked)
    hints.agent_changed_on_commit(locked.agent_id)
    return locked
