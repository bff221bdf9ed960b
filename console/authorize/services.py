"""Every write of the authorization pipeline, one function per change (SPEC §3, §9).

Configuration (each function records one event in its transaction):

* policies — :func:`create_policy`, :func:`update_policy`, :func:`set_policy_mode`,
  :func:`delete_policy` → ``policy.created`` / ``policy.changed``;
* rules — :func:`create_rule`, :func:`update_rule`, :func:`set_rule_mode`,
  :func:`delete_rule` → ``rule.created`` / ``rule.changed``;
* guardrails — :func:`create_guardrail`, :func:`update_guardrail`,
  :func:`set_guardrail_enforcement`, :func:`delete_guardrail` → ``guardrail.created`` /
  ``guardrail.changed``.

``delete_*`` keeps the row (events and backtests refer to it): it sets ``deleted_at``,
disables it and frees its name. Every change bumps ``version``. A policy whose module does
not compile can be saved only with mode ``disabled`` (a draft); enabling it raises
``Invalid`` with ``fields["module"]`` listing ``"line L, column C: message"`` and
``problems`` on the exception (:class:`PolicyInvalid`).

Reads that change nothing: :func:`validate_module` (compile problems with line numbers),
:func:`test_policy` (a module against an input document), :func:`sample_input` (the SPEC
§3.3 document of a recorded action, or a made-up one), and the backtests
:func:`backtest_policy` / :func:`backtest_rule`, which record one ``policy.backtested`` /
``rule.backtested`` event each.

The runtime (:func:`evaluate_action`, :func:`report_result`) lives in
``console.authorize.runtime`` and is re-exported here.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from audit.services import record
from audit.timefmt import format_timestamp
from console.errors import Conflict, Invalid

from . import canary, rego, validation
from .context import Config, Context, Proposal
from .layers import policies as policy_layer
from .layers import rules as rule_layer
from .models import Action, ConfigVersion, Guardrail, Mode, Policy, Rule
from .validation import UNSET
from .verdicts import Verdict

MAX_BACKTEST_ACTIONS = 5000
LISTED_PER_VERDICT = 200


class PolicyInvalid(Invalid):
    """A module that does not compile; ``problems`` are rego.CompileProblem values."""

    def __init__(self, problems: list[rego.CompileProblem]):
        super().__init__(
            "The policy module does not compile: " + "; ".join(str(p) for p in problems),
            code="policy_invalid",
            fields={"module": [str(p) for p in problems]},
        )
        self.problems = problems


def _actor(user) -> str:
    if isinstance(user, str):
        return user
    return f"user:{user.get_username()}"


def _name_taken(model, name: str, exclude=None) -> bool:
    query = model.objects.filter(name=name, deleted_at__isnull=True)
    if exclude is not None:
        query = query.exclude(pk=exclude.pk)
    return query.exists()


def _taken(kind: str) -> Conflict:
    return Conflict(
        f"A {kind} with this name already exists.",
        code="name_taken",
        fields={"name": [f"A {kind} with this name already exists."]},
    )


def _agent_ref(agent) -> str | None:
    return str(agent.id) if agent is not None else None


def _locked(model, obj):
    current = model.objects.select_for_update().get(pk=obj.pk)
    if current.deleted_at is not None:
        raise Conflict(f"This {model._meta.verbose_name} was deleted.", code="deleted")
    return current


def _config_changed() -> None:
    """Give the configuration a new version token, in the caller's transaction: every
    process reloads its cached policies, rules and guardrails (runtime.load_config)."""
    table = ConfigVersion._meta.db_table
    token = ConfigVersion._meta.get_field("token").get_db_prep_value(uuid.uuid4(), connection)
    moment = ConfigVersion._meta.get_field("changed_at").get_db_prep_value(
        timezone.now(), connection
    )
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (id, token, changed_at) VALUES (1, %s, %s) "
            "ON CONFLICT (id) DO UPDATE SET token = excluded.token, changed_at = excluded.changed_at",
            [token, moment],
        )


# --- policies -----------------------------------------------------------------------
def validate_module(module: str) -> list[rego.CompileProblem]:
    """Compile problems of a Rego module, each with line and column; [] when it compiles."""
    return rego.check_module(module)


def _checked_module(module: str, mode: str) -> str:
    problems = rego.check_module(module)
    if problems and mode != Mode.DISABLED:
        raise PolicyInvalid(problems)
    return rego.parse_package(module) or ""


def _policy_payload(policy: Policy, **extra) -> dict:
    return {
        "id": str(policy.id),
        "name": policy.name,
        "mode": policy.mode,
        "version": policy.version,
        "agent": _agent_ref(policy.agent),
        "package": policy.package,
        "module_sha256": rego.source_sha256(policy.module),
        **extra,
    }


def create_policy(
    *, by, name: str, module: str, agent=None, mode: str = Mode.ENFORCE, description: str = ""
) -> Policy:
    clean = validation.policy_fields(
        {"name": name, "module": module, "mode": mode, "description": description}
    )
    package = _checked_module(clean["module"], clean["mode"])
    try:
        with transaction.atomic():
            if _name_taken(Policy, clean["name"]):
                raise _taken("policy")
            policy = Policy.objects.create(
                name=clean["name"],
                description=clean.get("description", ""),
                module=clean["module"],
                package=package,
                agent=agent,
                mode=clean["mode"],
                created_by=None if isinstance(by, str) else by,
            )
            _config_changed()
            record(
                "policy.created",
                actor=_actor(by),
                agent_id=agent.id if agent is not None else None,
                reason=f"policy {policy.name} created",
                payload=_policy_payload(policy),
            )
    except IntegrityError as exc:
        raise _taken("policy") from exc
    return policy


def update_policy(
    policy: Policy,
    *,
    by,
    name=None,
    module=None,
    agent=UNSET,
    mode=None,
    description=None,
    reason: str = "",
) -> Policy:
    """Change any of a policy's fields (``agent=None`` makes it apply to every agent)."""
    data = {
        k: v
        for k, v in {
            "name": name,
            "module": module,
            "mode": mode,
            "description": description,
        }.items()
        if v is not None
    }
    clean = validation.policy_fields(data, partial=True)
    try:
        with transaction.atomic():
            current = _locked(Policy, policy)
            changed = []
            for key, value in clean.items():
                if getattr(current, key) != value:
                    setattr(current, key, value)
                    changed.append(key)
            if agent is not UNSET and current.agent_id != (agent.id if agent is not None else None):
                current.agent = agent
                changed.append("agent")
            if "module" in changed or "mode" in changed:
                current.package = _checked_module(current.module, current.mode)
            if not changed:
                return current
            if "name" in changed and _name_taken(Policy, current.name, exclude=current):
                raise _taken("policy")
            current.version += 1
            current.save()
            _config_changed()
            record(
                "policy.changed",
                actor=_actor(by),
                agent_id=current.agent_id,
                reason=reason or f"policy {current.name} changed: {', '.join(changed)}",
                payload=_policy_payload(current, changes=changed),
            )
    except IntegrityError as exc:
        raise _taken("policy") from exc
    return current


def set_policy_mode(policy: Policy, *, by, mode: str, reason: str = "") -> Policy:
    """enforce | shadow | disabled (a module that does not compile cannot be enabled)."""
    return update_policy(policy, by=by, mode=mode, reason=reason)


def delete_policy(policy: Policy, *, by, reason: str = "") -> Policy:
    with transaction.atomic():
        current = _locked(Policy, policy)
        current.deleted_at = timezone.now()
        current.mode = Mode.DISABLED
        current.version += 1
        current.save()
        _config_changed()
        record(
            "policy.changed",
            actor=_actor(by),
            agent_id=current.agent_id,
            reason=reason or f"policy {current.name} deleted",
            payload=_policy_payload(current, changes=["deleted"], deleted=True),
        )
    return current


# --- rules ----------------------------------------------------------------------------
def _rule_payload(rule: Rule, **extra) -> dict:
    return {
        "id": str(rule.id),
        "name": rule.name,
        "mode": rule.mode,
        "version": rule.version,
        "agent": _agent_ref(rule.agent),
        "kind": rule.kind,
        "pattern": rule.pattern,
        "then_pattern": rule.then_pattern,
        "window_seconds": rule.window_seconds,
        "threshold": rule.threshold,
        "verdict": rule.verdict,
        "severity": rule.severity,
        "priority": rule.priority,
        **extra,
    }


def create_rule(*, by, agent=None, **fields: Any) -> Rule:
    """Fields: name, kind, pattern, then_pattern, window_seconds, threshold, verdict,
    severity, priority, mode, description (SPEC §9 rule body)."""
    clean = validation.rule_fields(fields)
    try:
        with transaction.atomic():
            if _name_taken(Rule, clean["name"]):
                raise _taken("rule")
            rule = Rule.objects.create(
                agent=agent, created_by=None if isinstance(by, str) else by, **clean
            )
            _config_changed()
            record(
                "rule.created",
                actor=_actor(by),
                agent_id=agent.id if agent is not None else None,
                reason=f"rule {rule.name} created",
                payload=_rule_payload(rule),
            )
    except IntegrityError as exc:
        raise _taken("rule") from exc
    return rule


def update_rule(rule: Rule, *, by, agent=UNSET, reason: str = "", **fields: Any) -> Rule:
    try:
        with transaction.atomic():
            current = _locked(Rule, rule)
            clean = validation.rule_fields(fields, base=current)
            changed = [k for k, v in clean.items() if getattr(current, k) != v]
            for key in changed:
                setattr(current, key, clean[key])
            if agent is not UNSET and current.agent_id != (agent.id if agent is not None else None):
                current.agent = agent
                changed.append("agent")
            if not changed:
                return current
            if "name" in changed and _name_taken(Rule, current.name, exclude=current):
                raise _taken("rule")
            current.version += 1
            current.save()
            _config_changed()
            record(
                "rule.changed",
                actor=_actor(by),
                agent_id=current.agent_id,
                reason=reason or f"rule {current.name} changed: {', '.join(changed)}",
                payload=_rule_payload(current, changes=changed),
            )
    except IntegrityError as exc:
        raise _taken("rule") from exc
    return current


def set_rule_mode(rule: Rule, *, by, mode: str, reason: str = "") -> Rule:
    return update_rule(rule, by=by, mode=mode, reason=reason)


def delete_rule(rule: Rule, *, by, reason: str = "") -> Rule:
    with transaction.atomic():
        current = _locked(Rule, rule)
        current.deleted_at = timezone.now()
        current.mode = Mode.DISABLED
        current.version += 1
        current.save()
        _config_changed()
        record(
            "rule.changed",
            actor=_actor(by),
            agent_id=current.agent_id,
            reason=reason or f"rule {current.name} deleted",
            payload=_rule_payload(current, changes=["deleted"], deleted=True),
        )
    return current


# --- guardrails -------------------------------------------------------------------------
def _guardrail_payload(guardrail: Guardrail, **extra) -> dict:
    # Never the canary tokens: config holds only their count and fingerprints.
    return {
        "id": str(guardrail.id),
        "name": guardrail.name,
        "mode": guardrail.mode,
        "enforcement": guardrail.enforcement,
        "version": guardrail.version,
        "agent": _agent_ref(guardrail.agent),
        "kind": guardrail.kind,
        "stage": guardrail.stage,
        "severity": guardrail.severity,
        "config": guardrail.config,
        **extra,
    }


def create_guardrail(*, by, agent=None, **fields: Any) -> Guardrail:
    """Fields: name, kind, mode (redact|block|log), config, stage, enforcement, severity,
    description. Canary ``config`` is ``{"tokens": [...]}``: stored encrypted, never shown."""
    clean = validation.guardrail_fields(fields)
    tokens = clean.pop("tokens")
    try:
        with transaction.atomic():
            if _name_taken(Guardrail, clean["name"]):
                raise _taken("guardrail")
            guardrail = Guardrail(
                agent=agent, created_by=None if isinstance(by, str) else by, **clean
            )
            if tokens is not UNSET:
                guardrail.secret = canary.seal(tokens)
            guardrail.save()
            _config_changed()
            record(
                "guardrail.created",
                actor=_actor(by),
                agent_id=agent.id if agent is not None else None,
                reason=f"guardrail {guardrail.name} created",
                payload=_guardrail_payload(guardrail),
            )
    except IntegrityError as exc:
        raise _taken("guardrail") from exc
    return guardrail


def update_guardrail(
    guardrail: Guardrail, *, by, agent=UNSET, reason: str = "", **fields: Any
) -> Guardrail:
    try:
        with transaction.atomic():
            current = _locked(Guardrail, guardrail)
            if "kind" in fields and fields["kind"] != current.kind:
                raise Invalid(
                    "A guardrail's kind cannot change; create another one.",
                    fields={"kind": ["A guardrail's kind cannot change."]},
                )
            clean = validation.guardrail_fields(fields, base=current)
            tokens = clean.pop("tokens")
            changed = [k for k, v in clean.items() if getattr(current, k) != v]
            for key in changed:
                setattr(current, key, clean[key])
            if tokens is not UNSET:
                if tokens != list(canary.tokens_of(current) or ()):
                    current.secret = canary.seal(tokens)
                    if "config" not in changed:
                        changed.append("config")
            if agent is not UNSET and current.agent_id != (agent.id if agent is not None else None):
                current.agent = agent
                changed.append("agent")
            if not changed:
                return current
            if "name" in changed and _name_taken(Guardrail, current.name, exclude=current):
                raise _taken("guardrail")
            current.version += 1
            current.save()
            _config_changed()
            record(
                "guardrail.changed",
                actor=_actor(by),
                agent_id=current.agent_id,
                reason=reason or f"guardrail {current.name} changed: {', '.join(changed)}",
                payload=_guardrail_payload(current, changes=changed),
            )
    except IntegrityError as exc:
        raise _taken("guardrail") from exc
    return current


def set_guardrail_enforcement(
    guardrail: Guardrail, *, by, enforcement: str, reason: str = ""
) -> Guardrail:
    """enforce | shadow | disabled."""
    return update_guardrail(guardrail, by=by, enforcement=enforcement, reason=reason)


def delete_guardrail(guardrail: Guardrail, *, by, reason: str = "") -> Guardrail:
    with transaction.atomic():
        current = _locked(Guardrail, guardrail)
        current.deleted_at = timezone.now()
        current.enforcement = Mode.DISABLED
        current.version += 1
        current.save()
        _config_changed()
        record(
            "guardrail.changed",
            actor=_actor(by),
            agent_id=current.agent_id,
            reason=reason or f"guardrail {current.name} deleted",
            payload=_guardrail_payload(current, changes=["deleted"], deleted=True),
        )
    return current


DEFAULT_GUARDRAILS = (
    {
        "name": "pii",
        "kind": "pii",
        "mode": "redact",
        "stage": "both",
        "description": "Redacts e-mail addresses, phone numbers, card numbers, IBANs, SSNs and secrets.",
    },
    {
        "name": "payload-size",
        "kind": "payload_size",
        "mode": "block",
        "stage": "input",
        "config": {"max_bytes": 65536},
        "description": "Blocks proposals whose arguments exceed 64 KiB.",
    },
)


def ensure_default_guardrails() -> int:
    """Create the fresh-install guardrails (PII redaction, payload size) unless a guardrail
    of that name ever existed (a deleted default stays deleted). Run after ``migrate``;
    installing is not a change anyone made, so no event is recorded. Returns how many."""
    created = 0
    for spec in DEFAULT_GUARDRAILS:
        if Guardrail.objects.filter(name=spec["name"]).exists():
            continue
        clean = validation.guardrail_fields(dict(spec))
        clean.pop("tokens")
        Guardrail.objects.create(**clean)
        created += 1
    if created:
        _config_changed()
    return created


# --- testing a policy -------------------------------------------------------------------
def test_policy(*, module: str, input_document: Any) -> dict[str, Any]:
    """Evaluate a (draft) module against an input document; changes nothing.

    Returns ``{"ok", "verdict", "reason", "severity", "error", "problems"}``: ``problems``
    are compile problems (``{"line", "column", "message"}``), ``error`` a run-time error.
    """
    if not isinstance(input_document, dict):
        raise Invalid(
            "The input document must be a JSON object.", fields={"input": ["Expected an object."]}
        )
    try:
        compiled = rego.compiled("test", 0, module if isinstance(module, str) else "")
    except rego.PolicyCompileError as exc:
        return {
            "ok": False,
            "verdict": None,
            "reason": "",
            "severity": None,
            "error": "the module does not compile",
            "problems": [p.as_json() for p in exc.problems],
        }
    result = rego.evaluate(compiled, input_document)
    return {
        "ok": result.ok,
        "verdict": str(result.verdict) if result.verdict else None,
        "reason": result.reason,
        "severity": result.severity,
        "error": result.error,
        "problems": [],
    }


def _context_for(action: Action, agent, config: Config, *, with_session_totals: bool) -> Context:
    session = action.session
    if with_session_totals:
        # The session as it stood when the action was proposed.
        from django.db.models import Count, Q, Sum

        before = Action.objects.filter(
            session_id=session.id, created_at__lt=action.created_at
        ).aggregate(
            n=Count("id"), spend=Sum("amount", filter=Q(verdict__in=("ALLOW", "REQUIRE_APPROVAL")))
        )
        session.action_count = before["n"] or 0
        session.spend_total = before["spend"] or Decimal("0")
    proposal = Proposal(
        name=action.name,
        target=action.target,
        args=action.args,
        amount=action.amount,
        currency=action.currency,
        sensitive=action.sensitive,
        parent_action_id=action.parent_id,
        depth=action.depth,
        args_sha256=action.args_sha256,
    )
    return Context(
        agent=agent,
        session=session,
        proposal=proposal,
        now=action.created_at,
        config=config,
        exclude_action_id=action.id,
    )


def sample_input(agent=None, action: Action | None = None) -> dict[str, Any]:
    """A SPEC §3.3 input document for the policy test panel: the one a recorded action was
    (re)evaluated with, or a made-up proposal of ``agent``."""
    if action is not None:
        ctx = _context_for(action, action.agent, Config(), with_session_totals=True)
        return ctx.policy_input()
    now = timezone.now()
    agent_doc = {
        "id": str(agent.id) if agent else str(uuid.uuid4()),
        "name": agent.name if agent else "example-agent",
        "status": agent.status if agent else "active",
        "risk_tier": agent.risk_tier if agent else 2,
        "trust_tier": agent.trust_tier if agent else 2,
        "effective_tier": (agent.effective_tier or agent.risk_tier) if agent else 2,
        "trust_score": float(agent.trust_score)
        if agent and agent.trust_score is not None
        else 80.0,
        "scope": agent.scope if agent else {},
    }
    return {
        "agent": agent_doc,
        "session": {
            "id": str(uuid.uuid4()),
            "workflow_id": None,
            "action_count": 3,
            "spend_total": 0,
            "started_at": format_timestamp(now - dt.timedelta(minutes=5)),
        },
        "action": {
            "name": "contract.commit",
            "target": "vendor:acme",
            "args": {"vendor": "acme", "amount": "95000.00"},
            "amount": 95000,
            "currency": "USD",
            "sensitive": True,
            "parent_action_id": None,
        },
        "history": {"actions_last_hour": 3, "actions_last_day": 12, "spend_last_day": 0},
        "now": format_timestamp(now),
    }


# --- backtests --------------------------------------------------------------------------
@dataclass
class BacktestResult:
    """How a policy or rule would have decided an agent's recorded actions."""

    kind: str  # policy | rule
    subject: dict[str, Any]
    agent_id: str
    start: dt.datetime
    end: dt.datetime
    counts: dict[str, int] = field(default_factory=lambda: {v.value: 0 for v in Verdict})
    actions: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)  # action ids whose evaluation failed
    not_applicable: int = 0  # rules: actions the rule does not look at (counted as ALLOW)
    changed: int = 0  # actions whose recorded verdict differs from this one's
    total: int = 0
    truncated: bool = False

    def add(self, action: Action, verdict: Verdict) -> None:
        key = str(verdict)
        self.counts[key] = self.counts.get(key, 0) + 1
        self.total += 1
        if action.verdict != key:
            self.changed += 1
        listed = self.actions.setdefault(key, [])
        if len(listed) < LISTED_PER_VERDICT:
            listed.append(
                {
                    "action_id": str(action.id),
                    "session_id": str(action.session_id),
                    "event_id": str(action.event_id) if action.event_id else None,
                    "name": action.name,
                    "target": action.target,
                    "created_at": format_timestamp(action.created_at),
                    "recorded_verdict": action.verdict,
                }
            )

    def as_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            self.kind: self.subject,
            "agent": self.agent_id,
            "from": format_timestamp(self.start),
            "to": format_timestamp(self.end),
            "counts": self.counts,
            "actions": {k: self.actions.get(k, []) for k in self.counts},
            "errors": self.errors,
            "not_applicable": self.not_applicable,
            "changed": self.changed,
            "total": self.total,
            "truncated": self.truncated,
        }


def _range(start, end) -> tuple[dt.datetime, dt.datetime]:
    errors = {}
    for key, value in (("from", start), ("to", end)):
        if not isinstance(value, dt.datetime) or value.tzinfo is None:
            errors[key] = ["A timezone-aware date-time (RFC 3339) is required."]
    if errors:
        raise Invalid("The date range is not valid.", fields=errors)
    if start >= end:
        raise Invalid("The range is empty.", fields={"to": ["Must be after from."]})
    return start, end


def _backtest_actions(agent, start, end) -> tuple[list[Action], bool]:
    actions = list(
        Action.objects.filter(agent_id=agent.id, created_at__gte=start, created_at__lt=end)
        .select_related("session")
        .order_by("created_at")[: MAX_BACKTEST_ACTIONS + 1]
    )
    return actions[:MAX_BACKTEST_ACTIONS], len(actions) > MAX_BACKTEST_ACTIONS


def _record_backtest(event_type: str, result: BacktestResult, *, by, agent) -> None:
    with transaction.atomic():
        record(
            event_type,
            actor=_actor(by),
            agent_id=agent.id,
            reason=f"backtest of {result.kind} {result.subject['name']} over {result.total} actions",
            payload={
                **{k: result.subject.get(k) for k in ("id", "name", "mode", "version")},
                "draft": result.subject.get("draft", False),
                "agent": str(agent.id),
                "from": result.start,
                "to": result.end,
                "counts": result.counts,
                "total": result.total,
                "truncated": result.truncated,
            },
        )


def backtest_policy(
    policy: Policy, *, agent, start: dt.datetime, end: dt.datetime, by, module: str | None = None
) -> BacktestResult:
    """Run ``policy`` (saved, in any mode, or an unsaved draft; ``module`` overrides its
    source) against ``agent``'s actions recorded in ``[start, end)``.

    Evaluation errors count under the verdict ``fail_mode`` gives them and are listed in
    ``errors``. Read-only apart from the one ``policy.backtested`` event.
    """
    start, end = _range(start, end)
    draft = policy._state.adding or module is not None
    source = module if module is not None else policy.module
    problems = rego.check_module(source)
    if problems:
        raise PolicyInvalid(problems)
    subject = {
        "id": None if policy._state.adding else str(policy.id),
        "name": policy.name or "draft",
        "mode": policy.mode,
        "version": None if policy._state.adding else policy.version,
        "draft": draft,
    }
    result = BacktestResult("policy", subject, str(agent.id), start, end)
    actions, result.truncated = _backtest_actions(agent, start, end)
    for action in actions:
        ctx = _context_for(action, agent, Config(), with_session_totals=True)
        outcome = policy_layer.evaluate_policy(
            policy, ctx.policy_input(), module=source if draft else None
        )
        finding = policy_layer.finding_for(
            policy, outcome, fail_mode=agent.fail_mode, mode="enforce"
        )
        if not outcome.ok:
            result.errors.append(str(action.id))
        result.add(action, finding.verdict)
    _record_backtest("policy.backtested", result, by=by, agent=agent)
    return result


def backtest_rule(
    rule: Rule, *, agent, start: dt.datetime, end: dt.datetime, by, draft: dict | None = None
) -> BacktestResult:
    """Run ``rule`` (saved or unsaved; ``draft`` fields override it) against ``agent``'s
    actions recorded in ``[start, end)``, each against the history before it (one indexed
    query per action, as live). Read-only apart from one ``rule.backtested`` event."""
    start, end = _range(start, end)
    saved = not rule._state.adding
    is_draft = not saved or bool(draft)
    if draft:
        clean = validation.rule_fields(draft, base=None if rule._state.adding else rule)
        rule = Rule(id=rule.id, **clean)
    elif rule._state.adding:
        rule = Rule(
            id=rule.id,
            **validation.rule_fields(
                {
                    k: getattr(rule, k)
                    for k in (
                        "name",
                        "description",
                        "kind",
                        "pattern",
                        "then_pattern",
                        "window_seconds",
                        "threshold",
                        "verdict",
                        "severity",
                        "priority",
                        "mode",
                    )
                }
            ),
        )
    subject = {
        "id": str(rule.id) if saved else None,
        "name": rule.name,
        "mode": rule.mode,
        "version": rule.version,
        "draft": is_draft,
    }
    result = BacktestResult("rule", subject, str(agent.id), start, end)
    actions, result.truncated = _backtest_actions(agent, start, end)
    for action in actions:
        ctx = _context_for(action, agent, Config(), with_session_totals=False)
        checked = rule_layer.check(rule, ctx)
        if checked is None:
            result.not_applicable += 1
            result.add(action, Verdict.ALLOW)
            continue
        triggered, _ = checked
        result.add(action, Verdict.parse(rule.verdict) if triggered else Verdict.ALLOW)
    _record_backtest("rule.backtested", result, by=by, agent=agent)
    return result


# --- housekeeping ---------------------------------------------------------------------
IDEMPOTENCY_RETENTION = dt.timedelta(hours=24)


def purge_idempotency_records(*, older_than: dt.timedelta = IDEMPOTENCY_RETENTION) -> int:
    """Forget stored first answers older than ``older_than`` (default 24 hours): a client
    retries for seconds, not days. The actions and events stay. Periodic job
    ``console.purge_idempotency_records``; returns how many were removed."""
    from .models import IdempotencyRecord

    cutoff = timezone.now() - older_than
    removed, _ = IdempotencyRecord.objects.filter(created_at__lt=cutoff).delete()
    return removed


# --- the runtime (re-exported) ----------------------------------------------------------
from .runtime import evaluate_action, report_result  # noqa: E402, F401
