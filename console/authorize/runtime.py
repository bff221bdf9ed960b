"""The runtime of the pipeline: one proposal → one verdict, one result → one record
(SPEC §3, §9). Called by the agent API; re-exported by ``console.authorize.services``.

:func:`evaluate_action` — in one transaction:

1. ``Idempotency-Key``: the first answer of the same (agent, key) is replayed when the body
   is the same (422 ``idempotency_key_reused`` otherwise); while the first request is still
   being evaluated a second one gets 409 ``idempotency_in_progress`` (PostgreSQL: a
   try-lock on the key; SQLite serialises writers, so the second waits and is replayed).
2. A row lock on the session, then the agent's advisory lock: proposals of one agent are
   decided one after the other, so no two of them — in one session or in parallel
   sessions — can overspend a budget (per session or per day) or slip past a rule's count
   together. Different agents are decided in parallel.
3. The session must be open: ``ended`` / ``revoked`` → 409 ``session_ended`` /
   ``session_revoked`` (nothing is evaluated; the API records ``access.denied``). A
   ``halted`` session answers HALT (source ``session``, severity minor) to every later
   proposal, recorded like any other: the input guardrails still redact what is stored.
4. The layers (``console.authorize.pipeline``), then: REQUIRE_APPROVAL opens the approval
   request (``approvals.services.open_request``); the ``action.evaluated`` event (payload
   as docs/events.md), one ``guardrail.hit`` per guardrail that found something; the
   ``Action`` row; the session's counters; a HALT ends the session
   (``console.services.halt_session``, which pauses the agent when ``pause_on_halt``);
   the stored answer for the idempotency key; and the trust hook.
5. PostgreSQL: the transaction commits without waiting for its WAL flush, which releases
   the agent's lock at once, and the answer is returned only once the flush is done
   (``rows.durable_before_return``): an agent's proposals no longer queue behind each
   other's fsync, and no answer is given for a decision that is not on disk.

:func:`report_result` — the result of an action: once per action (a retry with the same
``Idempotency-Key`` gets the first answer); refused for BLOCK / HALT actions (409
``action_not_allowed``); for REQUIRE_APPROVAL the approval is consumed
(``approvals.services.consume_approval``, 409 ``approval_not_granted`` when there is none).
Output guardrails run on the output: redaction, and a canary → HALT + critical violation
(the session is halted if still open). Results may be reported after the session closed:
the action ran before.
"""

from __future__ import annotations

import hashlib
import threading
import uuid
import zlib
from decimal import Decimal
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from audit import canonical
from audit.services import record
from console.errors import Conflict, Invalid, NotFound, Unprocessable

from . import clock, pipeline, rows, selectors
from .context import COMMITTED_VERDICTS, Config, Context, Proposal
from .layers import guardrails as guardrail_layer
from .models import Action, ConfigVersion, IdempotencyRecord
from .verdicts import Finding, Verdict, combine

# pg_try_advisory_xact_lock(class, key) class for idempotency keys ("WIDP").
IDEMPOTENCY_LOCK_CLASS = 0x57494450
_RESULT = {
    Verdict.ALLOW: "success",
    Verdict.BLOCK: "denied",
    Verdict.HALT: "denied",
    Verdict.REQUIRE_APPROVAL: "pending",
}


def args_sha256(args: Any) -> str:
    """SHA-256 of the RFC 8785 canonical JSON of the arguments (``null`` when absent)."""
    return hashlib.sha256(canonical.dumps(args)).hexdigest()


def request_sha256(session_id: Any, body: Any) -> str:
    return hashlib.sha256(str(session_id).encode() + b"\x00" + canonical.dumps(body)).hexdigest()


def _replay(agent, key: str, digest: str) -> dict | None:
    """The stored answer for this (agent, key), or None to evaluate (see the module
    docstring); raises 409 while another request holds the key, 422 for another body."""
    lock = None
    if connection.vendor == "postgresql":
        lock = (IDEMPOTENCY_LOCK_CLASS, zlib.crc32(f"{agent.id}:{key}".encode()) - 2**31)
    claimed, stored_digest, response = rows.stored_answer(IdempotencyRecord, agent.id, key, lock)
    if not claimed:
        raise Conflict(
            "The first request with this Idempotency-Key is still being evaluated.",
            code="idempotency_in_progress",
        )
    if stored_digest is None:
        return None
    if stored_digest != digest:
        raise Unprocessable(
            "This Idempotency-Key was already used for a different request.",
            code="idempotency_key_reused",
        )
    return response


def _lock(agent, session, *, defer_flush: bool = False):
    """Lock the session row (its counters move under it), then the agent (its daily
    budget and rule counts are read under it). ``defer_flush``: the transaction commits
    without waiting for the disk (``rows.durable_before_return``), so the next proposal of
    the agent does not wait for this one's fsync.

    The agent is locked with an advisory lock, not its row: a HALT's ``halt_session`` and
    the containment services lock the agent row, and none of them takes this lock, so no
    two writers wait on each other in a cycle. The agent was read by authentication at the
    start of this request, so its status, tier, scope and settings are current. Lock order
    everywhere: sessions before their agent.
    """
    from console.models import AgentSession

    # The configuration's version token comes with the session row (one round trip).
    also = f"({CONFIG_TOKEN_SQL}) AS config_token"
    if defer_flush:
        also += f", {rows.COMMIT_WITHOUT_FLUSH}"
    locked = rows.locked(AgentSession, session.pk, also=also, then=rows.agent_lock(agent.id))
    return agent, locked


_config_lock = threading.Lock()
_config_cache: tuple[Any, tuple[list, list, list]] | None = None


CONFIG_TOKEN_SQL = f"SELECT token FROM {ConfigVersion._meta.db_table} WHERE id = 1"
_UNREAD: Any = object()


def _config_token():
    with connection.cursor() as cursor:
        cursor.execute(CONFIG_TOKEN_SQL)
        row = cursor.fetchone()
    return row[0] if row else None


def _live_config(token=_UNREAD) -> tuple[list, list, list]:
    """Every active policy, rule and guardrail, read once per configuration version
    (``token``: the version as already read in this transaction)."""
    global _config_cache
    if token is _UNREAD:
        token = _config_token()  # the raw column, as the session lock reads it too
    cached = _config_cache
    if token is not None and cached is not None and cached[0] == token:
        return cached[1]
    loaded = (
        list(selectors.applicable_policies(None, every_agent=True)),
        list(selectors.applicable_rules(None, every_agent=True)),
        list(selectors.applicable_guardrails(None, every_agent=True)),
    )
    if token is not None:
        with _config_lock:
            _config_cache = (token, loaded)
    return loaded


def load_config(agent, *, token=_UNREAD) -> Config:
    """The configuration that applies to ``agent`` (for it or for every agent), in
    evaluation order; the shared part is cached per configuration version (one query, or
    none when the caller read the ``token`` already)."""
    policies, rules, guardrails = _live_config(token)

    def mine(items):
        return [item for item in items if item.agent_id is None or item.agent_id == agent.id]

    return Config(policies=mine(policies), rules=mine(rules), guardrails=mine(guardrails))


def _session_fields(session) -> dict:
    return {
        "session_id": session.id,
        "workflow_id": session.workflow_id,
        "run_id": session.run_id,
    }


def _record_hits(hits, *, agent, session, action_id) -> None:
    for hit in hits:
        guardrail = hit.guardrail
        record(
            "guardrail.hit",
            actor=agent.actor,
            agent_id=agent.id,
            **_session_fields(session),
            result="success",
            reason=f"{guardrail.source}: {', '.join(hit.findings)}",
            payload={
                "action_id": action_id,
                "guardrail": guardrail.name,
                "guardrail_id": guardrail.id,
                "kind": guardrail.kind,
                "mode": guardrail.mode,
                "stage": hit.stage,
                "findings": hit.findings,
                "shadow": hit.shadow,
            },
        )


def evaluate_action(
    agent,
    session,
    *,
    name: str,
    target: str | None = None,
    args: Any = None,
    amount: Decimal | None = None,
    currency: str | None = None,
    sensitive: bool = False,
    parent_action_id: uuid.UUID | None = None,
    idempotency_key: str | None = None,
    request_digest: str | None = None,
    now=None,
) -> dict[str, Any]:
    """Decide one proposed action (see the module docstring); returns the SPEC §9 answer.

    ``agent`` is the agent as read at the start of this request (the API's authentication
    reads it on every request), so its effective tier, scope and settings are current.
    ``now`` replaces the pipeline's clock (tests of multi-day stories).
    """
    from approvals.services import open_request
    from console.models import AgentSession
    from console.services import halt_session
    from trust.hooks import event_recorded

    with rows.durable_before_return() as defer_flush, transaction.atomic():
        if idempotency_key is not None:
            replayed = _replay(agent, idempotency_key, request_digest or "")
            if replayed is not None:
                return replayed
        agent, session = _lock(agent, session, defer_flush=defer_flush)
        # Read the clock once the locks are held: a proposal that waited for another one
        # must see it in its history (rules count actions up to now).
        now = now or clock.now()
        if session.status in (AgentSession.Status.ENDED, AgentSession.Status.REVOKED):
            raise Conflict(f"The session is {session.status}.", code=f"session_{session.status}")
        halted = session.status == AgentSession.Status.HALTED

        depth = 1
        if parent_action_id is not None:
            parent = (
                Action.objects.filter(pk=parent_action_id, session_id=session.id)
                .values_list("depth", flat=True)
                .first()
            )
            if parent is None:
                raise Invalid(
                    "No such parent action in this session.",
                    fields={"parent_action_id": ["No action with this id in this session."]},
                )
            depth = parent + 1
        proposal = Proposal(
            name=name,
            target=target or "",
            args=args,
            amount=amount,
            currency=currency or "",
            sensitive=bool(sensitive),
            parent_action_id=parent_action_id,
            depth=depth,
            args_sha256=args_sha256(args),
        )
        if halted:
            config = Config(guardrails=load_config(agent, token=session.config_token).guardrails)
            ctx = Context(agent, session, proposal, now, config)
            refusal = Finding(
                "session", "session", Verdict.HALT, "the session is halted", severity="minor"
            )
            evaluation = pipeline.run(ctx, layers=(guardrail_layer,), extra=[refusal])
        else:
            ctx = Context(
                agent, session, proposal, now, load_config(agent, token=session.config_token)
            )
            evaluation = pipeline.run(ctx)
        outcome = evaluation.outcome
        action_id = uuid.uuid4()
        effective_tier = ctx.effective_tier

        approval = None
        if outcome.verdict is Verdict.REQUIRE_APPROVAL:
            approval = open_request(
                agent=agent,
                session=session,
                action_id=action_id,
                action_name=name,
                target=proposal.target,
                args_sha256=proposal.args_sha256,
                amount=amount,
                currency=proposal.currency,
                reason=outcome.reason,
                source=outcome.source,
                severity=outcome.severity,
                effective_tier=effective_tier,
                args=evaluation.args,
            )
        approval_id = getattr(approval, "id", None)
        approval_expires_at = getattr(approval, "expires_at", None)

        event_id = uuid.uuid4()
        action = Action(
            id=action_id,
            agent_id=agent.id,
            session_id=session.id,
            name=name,
            target=proposal.target,
            args=evaluation.args,
            args_sha256=proposal.args_sha256,
            amount=amount,
            currency=proposal.currency,
            sensitive=proposal.sensitive,
            parent_id=parent_action_id,
            depth=depth,
            verdict=str(outcome.verdict),
            source=outcome.source[:200],
            reason=outcome.reason,
            severity=outcome.severity,
            in_scope=evaluation.in_scope,
            approval_id=approval_id,
            event_id=event_id,
            created_at=now,
        )
        spend = amount if amount and str(outcome.verdict) in COMMITTED_VERDICTS else Decimal("0")
        writes = [
            rows.insert_statement(action),
            rows.count_session_action_statement(AgentSession, session.pk, spend),
        ]
        answer = {
            "action_id": str(action_id),
            "verdict": str(outcome.verdict),
            "reason": outcome.reason,
            "source": outcome.source,
            "constrained": evaluation.constrained,
            "args": evaluation.args,
            "approval_id": str(approval_id) if approval_id else None,
            "approval_expires_at": _time(approval_expires_at),
            "event_id": str(event_id),
        }
        if idempotency_key is not None:
            record_answer = IdempotencyRecord(
                agent_id=agent.id,
                key=idempotency_key,
                request_sha256=request_digest or "",
                response=answer,
                action_id=action_id,
            )
            writes.append(rows.insert_statement(record_answer))
        event = record(
            "action.evaluated",
            actor=agent.actor,
            agent_id=agent.id,
            **_session_fields(session),
            verdict=str(outcome.verdict),
            result=_RESULT[outcome.verdict],
            reason=outcome.reason,
            payload={
                "action_id": action_id,
                "source": outcome.source,
                "action": {
                    "name": name,
                    "target": proposal.target or None,
                    "args": evaluation.args,
                    "args_sha256": proposal.args_sha256,
                    "amount": amount,
                    "currency": proposal.currency or None,
                    "sensitive": proposal.sensitive,
                    "parent_action_id": parent_action_id,
                },
                "constrained": evaluation.constrained,
                "in_scope": evaluation.in_scope,
                "layers": [f.as_json() for f in evaluation.findings],
                "shadow_verdicts": outcome.shadow_verdicts,
                "violation": outcome.violation,
                "approval_id": approval_id,
                "effective_tier": effective_tier,
            },
            event_id=event_id,
            also=writes,  # one round trip with the event
        )
        event_recorded(event)
        _record_hits(evaluation.hits, agent=agent, session=session, action_id=action_id)
        if outcome.verdict is Verdict.HALT and not halted:
            halt_session(
                session,
                actor=agent.actor,
                reason=f"HALT by {outcome.source}: {outcome.reason}"[:2000],
            )
    return answer


def _time(value) -> str | None:
    if value is None:
        return None
    from audit.timefmt import format_timestamp

    return format_timestamp(value)


def report_result(
    agent,
    session,
    action_id: uuid.UUID,
    *,
    status: str,
    output: Any = None,
    idempotency_key: str | None = None,
    now=None,
) -> dict[str, Any]:
    """Record the result of an executed action (see the module docstring)."""
    from approvals.services import consume_approval
    from console.models import AgentSession
    from console.services import halt_session
    from trust.hooks import event_recorded

    now = now or clock.now()
    with transaction.atomic():
        agent, session = _lock(agent, session)
        action = (
            Action.objects.select_for_update().filter(pk=action_id, session_id=session.id).first()
        )
        if action is None:
            raise NotFound("No such action in this session.", code="action_not_found")
        if action.result_status is not None:
            if idempotency_key is not None and action.result_key == idempotency_key:
                return action.result_response
            raise Conflict(
                "This action's result was already reported.", code="result_already_reported"
            )
        if action.verdict in ("BLOCK", "HALT"):
            raise Conflict(
                f"This action got {action.verdict}; it was not allowed to run.",
                code="action_not_allowed",
            )
        if action.verdict == "REQUIRE_APPROVAL" and not consume_approval(
            action_id=action.id, session=session, args_sha256=action.args_sha256
        ):
            raise Conflict("This action has no granted approval.", code="approval_not_granted")

        guardrails = load_config(agent).guardrails
        findings, redacted, hits = guardrail_layer.run(guardrails, stage="output", document=output)
        outcome = combine(findings)
        refused = outcome.verdict in (Verdict.BLOCK, Verdict.HALT)
        event = record(
            "action.completed",
            actor=agent.actor,
            agent_id=agent.id,
            **_session_fields(session),
            verdict=str(outcome.verdict) if refused else None,
            result="success" if status == "ok" else "failed",
            reason=outcome.reason if refused else f"result reported: {status}",
            payload={
                "action_id": action.id,
                "status": status,
                "output": redacted,
                "args_sha256": action.args_sha256,
                "constrained": any(f.transformed for f in findings),
                "layers": [f.as_json() for f in findings],
                "shadow_verdicts": outcome.shadow_verdicts,
                "violation": outcome.violation,
                "source": outcome.source if refused else None,
            },
        )
        event_recorded(event)
        _record_hits(hits, agent=agent, session=session, action_id=action.id)
        answer: dict[str, Any] = {
            "action_id": str(action.id),
            "status": "recorded",
            "event_id": str(event.id),
        }
        if refused:
            answer.update(
                verdict=str(outcome.verdict), reason=outcome.reason, source=outcome.source
            )
        Action.objects.filter(pk=action.pk).update(
            result_status=status,
            result_at=now if now else timezone.now(),
            result_event_id=event.id,
            result_key=idempotency_key,
            result_response=answer,
        )
        if outcome.verdict is Verdict.HALT and session.status == AgentSession.Status.OPEN:
            halt_session(
                session,
                actor=agent.actor,
                reason=f"HALT by {outcome.source}: {outcome.reason}"[:2000],
            )
    return answer
