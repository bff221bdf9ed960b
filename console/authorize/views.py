"""Console pages of the authorization pipeline (SPEC §3, §8): policies, rules and
guardrails, the Rego editor with its test panel, backtests, and canary tokens.

Thin adapters over ``console.authorize.services``: every write calls one service function
(which records the event); reading needs ``read``, every form and write
``manage_policies``. Pages work without JavaScript; with HTMX the editor's Check / Test /
Load buttons swap their result in place, and confirmations (mode changes, deletes) open in
the page's dialog.

Choices written down here (SPEC is silent):

* New policies, rules and guardrails made in the console start in **shadow** mode, so an
  operator sees what they would do before they decide anything. A module that does not
  compile can only be saved as **disabled** (a draft): the service refuses anything else
  and its message, with line numbers, is shown next to the module.
* The editor's test panel and the backtest page also take the unsaved text of the form
  (a *draft*): "Backtest these values" posts the form to the backtest page, which carries
  it along as hidden fields.
* Date ranges are entered and shown in UTC, like every time in the console.
* Canary tokens are created on the Settings page only; the page that creates them shows
  the values once (never cached), and nothing shows them again — lists show the
  fingerprints (first 12 hex digits of each token's SHA-256) and the creation date.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from typing import Any

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods

from console.errors import WardenError
from console.models import Agent
from console.roles import can, role_required

from . import charts, forms, rego, selectors, services, validation
from .forms import FormError, template_errors
from .models import MODES, Guardrail, Mode, Policy, Rule

EDITOR = "console/authorize/policy_form.html"
RECENT_ACTIONS = 20
DEFAULT_BACKTEST_DAYS = 7
DATETIME_INPUT = "%Y-%m-%dT%H:%M"


# --- helpers ----------------------------------------------------------------------------
def _live(model, object_id):
    """A policy, rule or guardrail that is not deleted, or 404."""
    try:
        pk = uuid.UUID(str(object_id))
    except ValueError as exc:
        raise Http404("No such object") from exc
    obj = model.objects.select_related("agent").filter(pk=pk, deleted_at__isnull=True).first()
    if obj is None:
        raise Http404("No such object")
    return obj


def _safe_next(request: HttpRequest, fallback: str) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if target and url_has_allowed_host_and_scheme(
        target, {request.get_host()}, request.is_secure()
    ):
        return target
    return fallback


def _agents():
    return Agent.objects.order_by("name").only("id", "name", "status")


def _errors(exc: WardenError) -> dict[str, list[str]]:
    errors = template_errors(exc.fields)
    if not exc.fields:
        errors["form"] = [exc.message]
    return errors


def _changed(response: HttpResponse, message: str) -> HttpResponse:
    response["HX-Trigger"] = json.dumps(
        {"policiesChanged": {}, "warden:done": {"message": message}}
    )
    return response


def _numbered(source: str) -> list[tuple[int, str]]:
    lines = source.split("\n")
    if len(lines) > 1 and lines[-1] == "":
        lines.pop()  # the final newline does not start a line
    return list(enumerate(lines, start=1))


def _utc_input(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).strftime(DATETIME_INPUT)


def _parse_utc(text: str) -> dt.datetime | None:
    try:
        value = dt.datetime.fromisoformat((text or "").strip())
    except ValueError:
        return None
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value


# --- the list -----------------------------------------------------------------------------
def _rows(agent: Agent | None) -> dict[str, Any]:
    policies = selectors.live_policies(agent).select_related("agent", "created_by")
    rules = selectors.live_rules(agent).select_related("agent", "created_by")
    guardrails = selectors.live_guardrails(agent).select_related("agent", "created_by")
    return {
        "policies": list(policies.order_by("name")),
        "rules": [
            {"rule": rule, "summary": forms.rule_summary(rule)}
            for rule in rules.order_by("-priority", "name")
        ],
        "guardrails": [
            {"guardrail": guardrail, "summary": forms.guardrail_summary(guardrail)}
            for guardrail in guardrails.order_by("name")
        ],
    }


@role_required("read")
@require_GET
def policy_list(request: HttpRequest) -> HttpResponse:
    """Policies, rules and guardrails, optionally those that apply to one agent."""
    agent = None
    agent_id = request.GET.get("agent", "")
    if agent_id:
        try:
            agent = forms.agent_choice(agent_id)
        except FormError:
            agent = None
    context = {
        **_rows(agent),
        "agents": _agents(),
        "agent_filter": agent,
        "list_url": reverse("policies") + (f"?agent={agent.id}" if agent else ""),
        "can_manage": can(request.user, "manage_policies"),
        "modes": MODES,
    }
    if request.htmx and request.GET.get("part") == "lists":
        return render(request, "console/policies.html#lists", context)
    return render(request, "console/policies.html", context)


@role_required("read")
@require_GET
def policy_detail(request: HttpRequest, policy_id) -> HttpResponse:
    policy = _live(Policy, policy_id)
    context = {
        "policy": policy,
        "lines": _numbered(policy.module),
        "problems": rego.check_module(policy.module) if policy.mode == Mode.DISABLED else [],
        "history": selectors.config_history(
            ("policy.created", "policy.changed", "policy.backtested"), policy.id
        ),
        "can_manage": can(request.user, "manage_policies"),
        "modes": MODES,
    }
    if request.htmx and request.GET.get("part") == "header":
        return render(request, "console/authorize/policy_detail.html#header", context)
    return render(request, "console/authorize/policy_detail.html", context)


# --- the Rego editor ----------------------------------------------------------------------
def _input_templates(agent: Agent | None) -> dict[str, tuple[str, dict]]:
    """Made-up input documents (SPEC §3.3) to start a test from."""
    base = services.sample_input(agent)

    def variant(action: dict, history: dict | None = None) -> dict:
        document = json.loads(json.dumps(base))
        document["action"] = {**document["action"], **action}
        if history:
            document["history"] = {**document["history"], **history}
        return document

    return {
        "commit": ("contract.commit of USD 95,000 (sensitive)", base),
        "big-commit": (
            "contract.commit of USD 250,000",
            variant({"amount": 250000, "args": {"vendor": "acme", "amount": "250000.00"}}),
        ),
        "read": (
            "invoice.read, no amount",
            variant(
                {
                    "name": "invoice.read",
                    "target": "vendor:acme",
                    "args": {"invoice": "INV-1042"},
                    "amount": None,
                    "currency": "",
                    "sensitive": False,
                }
            ),
        ),
        "payment": (
            "payment.release of USD 40,000, busy day",
            variant(
                {
                    "name": "payment.release",
                    "target": "vendor:globex",
                    "args": {"vendor": "globex", "amount": "40000.00"},
                    "amount": 40000,
                },
                {"actions_last_hour": 40, "actions_last_day": 180, "spend_last_day": 900000},
            ),
        ),
    }


def _sample_document(form: dict[str, str]) -> dict:
    """The input document the test panel's pickers ask for; FormError naming the picker."""
    agent = forms.agent_choice(form["sample_agent"], "sample_agent")
    if form["sample_action"]:
        if agent is None:
            raise FormError({"sample_action": ["Choose the agent first."]})
        try:
            action = selectors.actions_of(agent).filter(pk=uuid.UUID(form["sample_action"])).first()
        except ValueError:
            action = None
        if action is None:
            raise FormError({"sample_action": ["No such action of this agent."]})
        return services.sample_input(action=action)
    templates = _input_templates(agent)
    label_and_document = templates.get(form["sample_template"] or "commit")
    if label_and_document is None:
        raise FormError({"sample_template": ["No such template."]})
    return label_and_document[1]


def _editor_context(request, policy, form, errors, **extra) -> dict[str, Any]:
    agent_id = extra.pop("sample_agent", "")
    sample_agent = None
    if agent_id:
        try:
            sample_agent = forms.agent_choice(agent_id, "sample_agent")
        except FormError:
            sample_agent = None
    context = {
        "policy": policy,
        "form": form,
        "errors": errors,
        "agents": _agents(),
        "modes": MODES,
        "mode_help": forms.MODE_HELP,
        "templates": [(key, label) for key, (label, _) in _input_templates(None).items()],
        "sample_agent": sample_agent,
        "sample_actions": (
            list(selectors.recent_actions(sample_agent, RECENT_ACTIONS)) if sample_agent else []
        ),
        "problems": None,
        "test": None,
        "action": reverse("policy-edit", args=[policy.id]) if policy else reverse("policy-new"),
        "backtest_action": (
            reverse("policy-backtest", args=[policy.id])
            if policy
            else reverse("policy-draft-backtest")
        ),
    }
    context.update(extra)
    marked = {int(n) for n in str(context.get("error_lines") or "").split(",") if n}
    context["gutter"] = [
        (number, number in marked) for number in range(1, form["module"].count("\n") + 2)
    ]
    return context


def _problem_lines(problems) -> str:
    return ",".join(sorted({str(p["line"] if isinstance(p, dict) else p.line) for p in problems}))


def _policy_editor(request: HttpRequest, policy: Policy | None) -> HttpResponse:
    if request.method == "GET":
        form = forms.policy_initial(policy)
        context = _editor_context(
            request,
            policy,
            form,
            {},
            input_text=json.dumps(services.sample_input(None), indent=2),
            sample_template="commit",
        )
        return render(request, EDITOR, context)

    form = forms.policy_form(request.POST)
    intent = request.POST.get("intent", "save")
    panel = {
        "sample_agent": request.POST.get("sample_agent", ""),
        "sample_action": request.POST.get("sample_action", ""),
        "sample_template": request.POST.get("sample_template", ""),
    }
    input_text = request.POST.get("input", "")
    errors: dict[str, list[str]] = {}
    extra: dict[str, Any] = {"input_text": input_text, **panel}
    partial = None
    status = 200

    if intent == "check":
        problems = [p.as_json() for p in services.validate_module(form["module"])]
        extra.update(problems=problems, error_lines=_problem_lines(problems))
        partial = "check-result"
    elif intent == "test":
        try:
            document = forms.parse_input_document(input_text)
        except FormError as exc:
            errors.update(exc.fields)
        else:
            result = services.test_policy(module=form["module"], input_document=document)
            extra.update(test=result, error_lines=_problem_lines(result["problems"]))
        partial = "test-result"
    elif intent == "load":
        try:
            document = _sample_document(panel)
        except FormError as exc:
            errors.update(exc.fields)
        else:
            extra["input_text"] = json.dumps(document, indent=2)
        partial = "test-panel"
    elif intent == "actions":
        partial = "sample-actions"
    else:
        try:
            forms.refuse_nul({**form, "reason": request.POST.get("reason", "")})
            agent = forms.agent_choice(form["agent"])
            if policy is None:
                saved = services.create_policy(
                    by=request.user,
                    name=form["name"],
                    module=form["module"],
                    agent=agent,
                    mode=form["mode"],
                    description=form["description"],
                )
            else:
                saved = services.update_policy(
                    policy,
                    by=request.user,
                    name=form["name"],
                    module=form["module"],
                    agent=agent,
                    mode=form["mode"],
                    description=form["description"],
                    reason=request.POST.get("reason", ""),
                )
        except FormError as exc:
            errors.update(exc.fields)
            status = 400
        except WardenError as exc:
            errors.update(_errors(exc))
            problems = getattr(exc, "problems", None)
            if problems:
                extra["error_lines"] = _problem_lines(problems)
            status = exc.status
        else:
            verb = "created" if policy is None else "saved"
            messages.success(request, f"Policy {saved.name} {verb} (version {saved.version}).")
            return redirect("policy-detail", policy_id=saved.id)

    if errors and status == 200 and partial is None:
        status = 400
    context = _editor_context(request, policy, form, errors, **extra)
    if request.htmx and partial:
        return render(request, f"{EDITOR}#{partial}", context)
    return render(request, EDITOR, context, status=status)


@role_required("manage_policies")
@require_http_methods(["GET", "POST"])
def policy_new(request: HttpRequest) -> HttpResponse:
    return _policy_editor(request, None)


@role_required("manage_policies")
@require_http_methods(["GET", "POST"])
def policy_edit(request: HttpRequest, policy_id) -> HttpResponse:
    return _policy_editor(request, _live(Policy, policy_id))


# --- rules ------------------------------------------------------------------------------
def _rule_editor(request: HttpRequest, rule: Rule | None) -> HttpResponse:
    errors: dict[str, list[str]] = {}
    status = 200
    if request.method == "GET":
        form = forms.rule_initial(rule)
    else:
        form = forms.rule_form(request.POST)
        try:
            forms.refuse_nul({**form, "reason": request.POST.get("reason", "")})
            agent = forms.agent_choice(form["agent"])
            fields = forms.rule_fields(form)
            if rule is None:
                saved = services.create_rule(by=request.user, agent=agent, **fields)
            else:
                saved = services.update_rule(
                    rule,
                    by=request.user,
                    agent=agent,
                    reason=request.POST.get("reason", ""),
                    **fields,
                )
        except FormError as exc:
            errors, status = dict(exc.fields), 400
        except WardenError as exc:
            errors, status = _errors(exc), exc.status
        else:
            verb = "created" if rule is None else "saved"
            messages.success(request, f"Rule {saved.name} {verb} (version {saved.version}).")
            return redirect(f"{reverse('policies')}#rule-{saved.id}")
    context = {
        "rule": rule,
        "form": form,
        "errors": errors,
        "agents": _agents(),
        "kinds": Rule.Kind.choices,
        "verdicts": Rule.RuleVerdict.choices,
        "severities": Rule._meta.get_field("severity").choices,
        "units": [unit for unit, _ in forms.WINDOW_UNITS],
        "modes": MODES,
        "mode_help": forms.MODE_HELP,
        "action": reverse("rule-edit", args=[rule.id]) if rule else reverse("rule-new"),
        "backtest_action": (
            reverse("rule-backtest", args=[rule.id]) if rule else reverse("rule-draft-backtest")
        ),
    }
    return render(request, "console/authorize/rule_form.html", context, status=status)


@role_required("manage_policies")
@require_http_methods(["GET", "POST"])
def rule_new(request: HttpRequest) -> HttpResponse:
    return _rule_editor(request, None)


@role_required("manage_policies")
@require_http_methods(["GET", "POST"])
def rule_edit(request: HttpRequest, rule_id) -> HttpResponse:
    return _rule_editor(request, _live(Rule, rule_id))


# --- guardrails -------------------------------------------------------------------------
def _guardrail_editor(request: HttpRequest, guardrail: Guardrail | None) -> HttpResponse:
    errors: dict[str, list[str]] = {}
    status = 200
    kind = guardrail.kind if guardrail else None
    if request.method == "GET":
        form = forms.guardrail_initial(guardrail)
        if guardrail is None and request.GET.get("kind") in dict(forms.GUARDRAIL_FORM_KINDS):
            form = forms.guardrail_form(request.GET)
    else:
        form = forms.guardrail_form(request.POST, kind=kind)
        try:
            forms.refuse_nul({**form, "reason": request.POST.get("reason", "")})
            if guardrail is None and form["kind"] == Guardrail.Kind.CANARY:
                raise FormError({"kind": ["Create canary tokens on the Settings page."]})
            agent = forms.agent_choice(form["agent"])
            fields = forms.guardrail_fields(form)
            if guardrail is None:
                saved = services.create_guardrail(by=request.user, agent=agent, **fields)
            else:
                fields.pop("kind")
                saved = services.update_guardrail(
                    guardrail,
                    by=request.user,
                    agent=agent,
                    reason=request.POST.get("reason", ""),
                    **fields,
                )
        except FormError as exc:
            errors, status = dict(exc.fields), 400
        except WardenError as exc:
            errors, status = _errors(exc), exc.status
        else:
            verb = "created" if guardrail is None else "saved"
            messages.success(request, f"Guardrail {saved.name} {verb} (version {saved.version}).")
            if saved.kind == Guardrail.Kind.CANARY:
                return redirect(f"{reverse('settings')}#canaries")
            return redirect(f"{reverse('policies')}#guardrail-{saved.id}")
    context = {
        "guardrail": guardrail,
        "form": form,
        "errors": errors,
        "agents": _agents(),
        "kinds": forms.GUARDRAIL_FORM_KINDS,
        "effects": Guardrail.Effect.choices,
        "stages": Guardrail.Stage.choices,
        "severities": Guardrail._meta.get_field("severity").choices,
        "pii_kinds": forms.detectors.PII_KINDS,
        "modes": MODES,
        "mode_help": forms.MODE_HELP,
        "action": (
            reverse("guardrail-edit", args=[guardrail.id])
            if guardrail
            else reverse("guardrail-new")
        ),
    }
    return render(request, "console/authorize/guardrail_form.html", context, status=status)


@role_required("manage_policies")
@require_http_methods(["GET", "POST"])
def guardrail_new(request: HttpRequest) -> HttpResponse:
    return _guardrail_editor(request, None)


@role_required("manage_policies")
@require_http_methods(["GET", "POST"])
def guardrail_edit(request: HttpRequest, guardrail_id) -> HttpResponse:
    return _guardrail_editor(request, _live(Guardrail, guardrail_id))


# --- mode changes and deletes (confirmed) ---------------------------------------------------
def _set_guardrail_mode(guardrail, *, by, mode, reason):
    return services.set_guardrail_enforcement(guardrail, by=by, enforcement=mode, reason=reason)


KINDS: dict[str, dict[str, Any]] = {
    "policy": {
        "model": Policy,
        "set_mode": services.set_policy_mode,
        "delete": services.delete_policy,
        "mode_attr": "mode",
        "url": "policy",
    },
    "rule": {
        "model": Rule,
        "set_mode": services.set_rule_mode,
        "delete": services.delete_rule,
        "mode_attr": "mode",
        "url": "rule",
    },
    "guardrail": {
        "model": Guardrail,
        "set_mode": _set_guardrail_mode,
        "delete": services.delete_guardrail,
        "mode_attr": "enforcement",
        "url": "guardrail",
    },
}
MODE_EXPLAIN = {
    Mode.ENFORCE: "Its verdicts start deciding actions at once: a BLOCK or HALT it gives is "
    "enforced and counts as a violation.",
    Mode.SHADOW: "Its verdicts are recorded on every action as shadow verdicts and never "
    "change the outcome.",
    Mode.DISABLED: "It stops being evaluated. Nothing it would have said is recorded.",
}


def _confirm(request: HttpRequest, kind: str, object_id, operation: str) -> HttpResponse:
    spec = KINDS[kind]
    obj = _live(spec["model"], object_id)
    fallback = reverse("policy-detail", args=[obj.id]) if kind == "policy" else reverse("policies")
    next_url = _safe_next(request, fallback)
    data = request.POST if request.method == "POST" else request.GET
    mode = data.get("mode", "") if operation == "mode" else ""
    context = {
        "kind": kind,
        "obj": obj,
        "operation": operation,
        "mode": mode,
        "current_mode": getattr(obj, spec["mode_attr"]),
        "explain": MODE_EXPLAIN.get(mode, ""),
        "next": next_url,
        "errors": {},
        "reason": data.get("reason", ""),
        "url": reverse(f"{spec['url']}-{operation}", args=[obj.id]),
    }
    template = (
        "console/authorize/confirm.html#form" if request.htmx else "console/authorize/confirm.html"
    )
    if operation == "mode" and mode not in MODES:
        context["errors"] = {"mode": [f"One of {', '.join(MODES)}."]}
        return render(request, template, context, status=400)
    if request.method == "GET":
        return render(request, template, context)
    if "\x00" in context["reason"]:
        context["errors"] = {"form": ["NUL characters are not allowed."]}
        return render(request, template, context, status=400)
    try:
        if operation == "mode":
            spec["set_mode"](obj, by=request.user, mode=mode, reason=context["reason"])
            message = f"{kind.capitalize()} {obj.name}: {mode}."
        else:
            spec["delete"](obj, by=request.user, reason=context["reason"])
            message = f"{kind.capitalize()} {obj.name} deleted."
    except WardenError as exc:
        context["errors"] = _errors(exc)
        return render(request, template, context, status=exc.status)
    if request.htmx:
        response = render(request, "console/contain_form.html#done", {"message": message})
        if operation == "delete":
            messages.success(request, message)
            response["HX-Redirect"] = next_url if kind != "policy" else reverse("policies")
            return response
        return _changed(response, message)
    messages.success(request, message)
    if operation == "delete" and kind == "policy" and next_url == fallback:
        next_url = reverse("policies")
    return redirect(next_url)


@role_required("manage_policies")
@require_http_methods(["GET", "POST"])
def policy_mode(request: HttpRequest, policy_id) -> HttpResponse:
    return _confirm(request, "policy", policy_id, "mode")


@role_required("manage_policies")
@require_http_methods(["GET", "POST"])
def policy_delete(request: HttpRequest, policy_id) -> HttpResponse:
    return _confirm(request, "policy", policy_id, "delete")


@role_required("manage_policies")
@require_http_methods(["GET", "POST"])
def rule_mode(request: HttpRequest, rule_id) -> HttpResponse:
    return _confirm(request, "rule", rule_id, "mode")


@role_required("manage_policies")
@require_http_methods(["GET", "POST"])
def rule_delete(request: HttpRequest, rule_id) -> HttpResponse:
    return _confirm(request, "rule", rule_id, "delete")


@role_required("manage_policies")
@require_http_methods(["GET", "POST"])
def guardrail_mode(request: HttpRequest, guardrail_id) -> HttpResponse:
    return _confirm(request, "guardrail", guardrail_id, "mode")


@role_required("manage_policies")
@require_http_methods(["GET", "POST"])
def guardrail_delete(request: HttpRequest, guardrail_id) -> HttpResponse:
    return _confirm(request, "guardrail", guardrail_id, "delete")


# --- backtests --------------------------------------------------------------------------
def _backtest_range(
    data, default_agent: str = ""
) -> tuple[dict[str, str], dict[str, list[str]], Any]:
    """The backtest form's agent and range; a policy or rule that applies to one agent
    proposes that agent (``default_agent``) until the form says otherwise."""
    now = timezone.now().replace(second=0, microsecond=0) + dt.timedelta(minutes=1)
    form = {
        "agent": data.get("backtest_agent", default_agent),
        "from": data.get("from") or _utc_input(now - dt.timedelta(days=DEFAULT_BACKTEST_DAYS)),
        "to": data.get("to") or _utc_input(now),
    }
    errors: dict[str, list[str]] = {}
    parsed: dict[str, Any] = {}
    for key in ("from", "to"):
        value = _parse_utc(form[key])
        if value is None:
            errors[key] = ["A date and time, UTC (YYYY-MM-DDTHH:MM)."]
        parsed[key] = value
    agent = None
    if not form["agent"]:
        errors["backtest_agent"] = ["Choose the agent whose recorded actions to replay."]
    else:
        try:
            agent = forms.agent_choice(form["agent"], "backtest_agent")
        except FormError as exc:
            errors.update(exc.fields)
    return form, errors, (agent, parsed.get("from"), parsed.get("to"))


def _backtest_page(
    request, *, kind, subject, draft_fields, run, subject_errors=None
) -> HttpResponse:
    data = request.POST if request.method == "POST" else request.GET
    applies_to = getattr(subject["obj"], "agent_id", None)
    form, errors, (agent, start, end) = _backtest_range(data, str(applies_to or ""))
    if not run:
        errors = {}
    result = None
    status = 200
    if subject_errors:
        # A draft that does not validate cannot run; say why, next to its summary.
        errors = {**errors, **{f"draft_{k}": v for k, v in subject_errors.items()}}
        status = 400 if run else 200
        run = None
    if run and not errors:
        try:
            result = run(agent, start, end)
        except WardenError as exc:
            errors = _errors(exc)
            for key in ("to", "from"):
                if key in (exc.fields or {}):
                    errors[key] = exc.fields[key]
            status = exc.status
    elif run:
        status = 400
    document = result.as_json() if result else None
    groups = []
    if document:
        failed = set(document["errors"])
        for verdict in charts.VERDICT_ORDER:
            rows = [
                {**row, "error": row["action_id"] in failed}
                for row in document["actions"].get(verdict, [])
            ]
            groups.append(
                {
                    "verdict": verdict,
                    "label": charts.VERDICT_LABELS[verdict],
                    "count": document["counts"].get(verdict, 0),
                    "rows": rows,
                }
            )
    context = {
        "kind": kind,
        "subject": subject,
        "draft_fields": draft_fields,
        "form": form,
        "errors": errors,
        "agents": _agents(),
        "result": document,
        "bars": charts.verdict_bars(result.counts) if result else [],
        "groups": groups,
    }
    return render(request, "console/authorize/backtest.html", context, status=status)


def _policy_backtest(request: HttpRequest, policy: Policy | None) -> HttpResponse:
    draft_module = request.POST.get("module") if request.method == "POST" else None
    if draft_module is not None:
        draft_module = draft_module.replace("\r\n", "\n")
    if policy is None:
        name = (request.POST.get("name") or "").strip()
        if validation.name_error(name):
            name = "draft"  # the draft's name only labels the backtest event
        policy = Policy(name=name, module=draft_module or "", mode=Mode.DISABLED)
    draft_fields = {"module": draft_module} if draft_module is not None else {}
    if policy._state.adding:
        draft_fields["name"] = policy.name

    def run(agent, start, end):
        return services.backtest_policy(
            policy, agent=agent, start=start, end=end, by=request.user, module=draft_module
        )

    return _backtest_page(
        request,
        kind="policy",
        subject={"obj": policy, "saved": not policy._state.adding, "module": draft_module},
        draft_fields=draft_fields,
        run=run if request.POST.get("run") else None,
    )


@role_required("manage_policies")
@require_http_methods(["GET", "POST"])
def policy_backtest(request: HttpRequest, policy_id) -> HttpResponse:
    return _policy_backtest(request, _live(Policy, policy_id))


@role_required("manage_policies")
@require_http_methods(["GET", "POST"])
def policy_draft_backtest(request: HttpRequest) -> HttpResponse:
    """A backtest of an unsaved module, posted by the editor's "Backtest" button."""
    if request.method == "GET" or "module" not in request.POST:
        messages.error(request, "Write the module first: the editor's Backtest button sends it.")
        return redirect("policy-new")
    return _policy_backtest(request, None)


def _rule_backtest(request: HttpRequest, rule: Rule | None) -> HttpResponse:
    """A saved rule, or the values of the rule form (a draft: saved or not)."""
    draft = None
    draft_fields: dict[str, str] = {}
    draft_errors: dict[str, list[str]] = {}
    shown = rule
    if request.method == "POST" and "kind" in request.POST:
        draft_fields = forms.rule_form(request.POST)
        try:
            draft = forms.rule_fields(draft_fields)
            shown = Rule(id=(rule or Rule()).id, **validation.rule_fields(draft, base=rule))
        except FormError as exc:
            draft_errors = exc.fields
        except WardenError as exc:
            draft_errors = template_errors(exc.fields) or {"form": [exc.message]}
    elif rule is None:
        messages.error(request, "Fill in the rule first: the form's Backtest button sends it.")
        return redirect("rule-new")
    target = rule if rule is not None else Rule()

    def run(agent, start, end):
        return services.backtest_rule(
            target, agent=agent, start=start, end=end, by=request.user, draft=draft
        )

    return _backtest_page(
        request,
        kind="rule",
        subject={
            "obj": shown,
            "saved": rule is not None,
            "draft": bool(draft_fields),
            "summary": forms.rule_summary(shown) if shown is not None and not draft_errors else "",
        },
        draft_fields=draft_fields,
        subject_errors=draft_errors,
        run=run if request.POST.get("run") else None,
    )


@role_required("manage_policies")
@require_http_methods(["GET", "POST"])
def rule_backtest(request: HttpRequest, rule_id) -> HttpResponse:
    return _rule_backtest(request, _live(Rule, rule_id))


@role_required("manage_policies")
@require_http_methods(["GET", "POST"])
def rule_draft_backtest(request: HttpRequest) -> HttpResponse:
    return _rule_backtest(request, None)


# --- canary tokens (Settings) -------------------------------------------------------------
@never_cache
@role_required("manage_policies")
@require_http_methods(["GET", "POST"])
def canary_new(request: HttpRequest) -> HttpResponse:
    """Create a canary token set. The response to the POST is the only time the values are
    shown; it is marked not to be cached."""
    errors: dict[str, list[str]] = {}
    form = forms.canary_form(request.POST if request.method == "POST" else request.GET)
    status = 200
    if request.method == "POST":
        try:
            forms.refuse_nul(form)
            agent = forms.agent_choice(form["agent"])
            tokens = forms.canary_tokens(form)
            guardrail = services.create_guardrail(
                by=request.user,
                agent=agent,
                name=form["name"],
                description=form["description"],
                kind=Guardrail.Kind.CANARY,
                mode=Guardrail.Effect.BLOCK,
                stage=form["stage"],
                enforcement=form["enforcement"],
                config={"tokens": tokens},
            )
        except FormError as exc:
            errors, status = dict(exc.fields), 400
        except WardenError as exc:
            errors, status = _errors(exc), exc.status
        else:
            return render(
                request,
                "console/authorize/canary_created.html",
                {
                    "guardrail": guardrail,
                    "tokens": sorted(set(tokens)),
                },
            )
    form["tokens"] = ""  # never sent back
    context = {
        "form": form,
        "errors": errors,
        "agents": _agents(),
        "stages": Guardrail.Stage.choices,
        "modes": MODES,
        "mode_help": forms.MODE_HELP,
        "max_generated": forms.MAX_GENERATED_TOKENS,
    }
    return render(request, "console/authorize/canary_form.html", context, status=status)
