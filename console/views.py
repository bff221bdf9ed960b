"""Console pages of the agent registry: dashboard, agents, containment, keys (SPEC §8).

Function views with explicit decorators for method and role. Containment forms work
without JavaScript (a confirmation page) and, with HTMX, inside a dialog: on success the
response triggers ``agentChanged`` so every part of the page showing the agent re-fetches.
"""

from __future__ import annotations

import json
import uuid

from django.contrib import messages
from django.contrib.auth import get_user_model, logout, update_session_auth_hash
from django.contrib.auth.forms import PasswordChangeForm
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from . import selectors, services, tabs
from .authorize import selectors as authorize_selectors
from .errors import WardenError
from .models import Agent, AgentSession, ApiKey, OperatorToken
from .roles import ROLES, can, role_required


def _form_errors(exc: WardenError) -> dict:
    """A refusal as a form shows it: the field errors, or the message above the form."""
    return exc.fields or {"form": [exc.message]}


CONTAINMENT = {
    "pause": {
        "service": services.pause_agent,
        "title": "Pause",
        "explain": "New sessions will be refused with agent_paused. Sessions already open keep "
        "working until they end.",
        "button": "Pause agent",
        "danger": False,
    },
    "resume": {
        "service": services.resume_agent,
        "title": "Resume",
        "explain": "The agent may open new sessions again.",
        "button": "Resume agent",
        "danger": False,
    },
    "revoke": {
        "service": services.revoke_agent,
        "title": "Revoke",
        "explain": "Permanent. Every API key stops working at once, open sessions are closed, "
        "open approval requests are cancelled. History is kept for audit.",
        "button": "Revoke permanently",
        "danger": True,
    },
}


def _agent(agent_id) -> Agent:
    try:
        return get_object_or_404(Agent.objects.select_related("owner"), pk=uuid.UUID(str(agent_id)))
    except ValueError as exc:
        raise Http404("No such agent") from exc


def _safe_next(request: HttpRequest, fallback: str) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if target and url_has_allowed_host_and_scheme(
        target, {request.get_host()}, request.is_secure()
    ):
        return target
    return fallback


def _changed(response: HttpResponse, agent: Agent, message: str) -> HttpResponse:
    response["HX-Trigger"] = json.dumps(
        {"agentChanged": {"agent_id": str(agent.id)}, "warden:done": {"message": message}}
    )
    return response


@role_required("read")
def dashboard(request: HttpRequest) -> HttpResponse:
    context = selectors.dashboard_context()
    if request.htmx and request.GET.get("part") == "fleet":
        return render(request, "console/dashboard.html#fleet", context)
    return render(request, "console/dashboard.html", context)


@role_required("read")
def agent_list(request: HttpRequest) -> HttpResponse:
    status = request.GET.get("status", "")
    agents = selectors.agents_for_list(status=status)
    context = {"agents": agents, "status": status, "statuses": Agent.Status.choices}
    if request.htmx and request.GET.get("part") == "rows":
        return render(request, "console/agent_list.html#rows", context)
    return render(request, "console/agent_list.html", context)


@role_required("read")
def agent_row(request: HttpRequest, agent_id) -> HttpResponse:
    return render(request, "console/agent_list.html#agent-row", {"agent": _agent(agent_id)})


@role_required("register_agent")
@require_http_methods(["GET", "POST"])
def agent_register(request: HttpRequest) -> HttpResponse:
    form = {"name": "", "description": "", "scope": "", "settings": ""}
    errors: dict = {}
    if request.method == "POST":
        form = {key: request.POST.get(key, "") for key in form}
        try:
            scope = json.loads(form["scope"]) if form["scope"].strip() else None
        except json.JSONDecodeError as exc:
            errors["scope"] = [f"Not valid JSON: {exc.msg} (line {exc.lineno})."]
            scope = None
        try:
            settings_doc = json.loads(form["settings"]) if form["settings"].strip() else None
        except json.JSONDecodeError as exc:
            errors["settings"] = [f"Not valid JSON: {exc.msg} (line {exc.lineno})."]
            settings_doc = None
        if not errors:
            try:
                agent = services.register_agent(
                    name=form["name"],
                    description=form["description"],
                    scope=scope,
                    settings=settings_doc,
                    by=request.user,
                )
            except WardenError as exc:
                errors = _form_errors(exc)
            else:
                messages.success(
                    request, f"Agent {agent.name} registered. Assess it before it opens sessions."
                )
                return redirect("agent-detail", agent_id=agent.id)
    return render(
        request,
        "console/agent_register.html",
        {"form": form, "errors": errors},
        status=400 if errors else 200,
    )


@role_required("read")
def agent_detail(request: HttpRequest, agent_id, tab: str = "adapt") -> HttpResponse:
    agent = _agent(agent_id)
    tab_key = tab if tab in tabs.TAB_KEYS else None
    if tab_key is None:
        raise Http404("No such tab")
    template, context = tabs.render_context(tab_key, request, agent)
    context.update({"agent": agent, "tabs": tabs.TABS, "tab": tab_key, "tab_template": template})
    if request.htmx and request.GET.get("part") == "header":
        return render(request, "console/agent_detail.html#agent-header", context)
    if request.htmx and request.GET.get("part") == "tab":
        return render(request, template, context)
    return render(request, "console/agent_detail.html", context)


@role_required("contain")
@require_http_methods(["GET", "POST"])
def agent_contain(request: HttpRequest, agent_id, action: str) -> HttpResponse:
    if action not in CONTAINMENT:
        raise Http404("No such action")
    agent = _agent(agent_id)
    spec = CONTAINMENT[action]
    next_url = _safe_next(request, reverse("agent-detail", args=[agent.id]))
    context = {"agent": agent, "action": action, "spec": spec, "next": next_url, "errors": {}}
    template = "console/contain_form.html#form" if request.htmx else "console/contain_form.html"
    if request.method == "GET":
        return render(request, template, context)
    reason = request.POST.get("reason", "")
    if action == "revoke" and request.POST.get("confirm_name", "").strip() != agent.name:
        context["errors"] = {"confirm_name": ["Type the agent's name exactly to confirm."]}
        context["reason"] = reason
        return render(request, template, context, status=400)
    try:
        agent = spec["service"](agent, by=request.user, reason=reason)
    except WardenError as exc:
        context["errors"] = _form_errors(exc)
        context["reason"] = reason
        return render(request, template, context, status=exc.status)
    message = (
        f"{agent.name}: {spec['title'].lower()}d."
        if action != "revoke"
        else f"{agent.name} revoked."
    )
    if request.htmx:
        return _changed(
            render(request, "console/contain_form.html#done", {"message": message}), agent, message
        )
    messages.success(request, message)
    return redirect(next_url)


@role_required("contain")
@require_http_methods(["GET", "POST"])
def session_halt(request: HttpRequest, session_id) -> HttpResponse:
    try:
        session = get_object_or_404(
            AgentSession.objects.select_related("agent"), pk=uuid.UUID(str(session_id))
        )
    except ValueError as exc:
        raise Http404("No such session") from exc
    next_url = _safe_next(request, reverse("agent-detail", args=[session.agent_id]))
    context = {"session": session, "agent": session.agent, "next": next_url, "errors": {}}
    template = "console/halt_form.html#form" if request.htmx else "console/halt_form.html"
    if request.method == "GET":
        return render(request, template, context)
    reason = request.POST.get("reason", "")
    try:
        services.halt_session(session, by=request.user, reason=reason)
    except WardenError as exc:
        context["errors"] = _form_errors(exc)
        context["reason"] = reason
        return render(request, template, context, status=exc.status)
    message = f"Session {str(session.id)[:8]} halted."
    if request.htmx:
        return _changed(
            render(request, "console/contain_form.html#done", {"message": message}),
            session.agent,
            message,
        )
    messages.success(request, message)
    return redirect(next_url)


@never_cache  # the one response that shows the key
@role_required("manage_keys")
@require_POST
def key_issue(request: HttpRequest, agent_id) -> HttpResponse:
    agent = _agent(agent_id)
    try:
        key, full = services.issue_key(agent, by=request.user, label=request.POST.get("label", ""))
    except WardenError as exc:
        messages.error(request, exc.message)
        return redirect("agent-tab", agent_id=agent.id, tab="adapt")
    # Shown once, on this response only; never stored in plain text.
    return render(
        request, "console/key_issued.html", {"agent": agent, "key": key, "full_key": full}
    )


@role_required("manage_keys")
@require_http_methods(["GET", "POST"])
def key_revoke(request: HttpRequest, agent_id, key_id) -> HttpResponse:
    agent = _agent(agent_id)
    try:
        key = get_object_or_404(ApiKey, agent=agent, pk=uuid.UUID(str(key_id)))
    except ValueError as exc:
        raise Http404("No such key") from exc
    context = {"agent": agent, "key": key, "errors": {}}
    if request.method == "GET":
        return render(request, "console/key_revoke.html", context)
    try:
        services.revoke_key(key, by=request.user, reason=request.POST.get("reason", ""))
    except WardenError as exc:
        context["errors"] = _form_errors(exc)
        return render(request, "console/key_revoke.html", context, status=exc.status)
    messages.success(request, f"Key {key.prefix} revoked.")
    return redirect("agent-tab", agent_id=agent.id, tab="adapt")


@role_required("read")
def settings_page(request: HttpRequest) -> HttpResponse:
    """Operators and roles, their API tokens, agents' API keys, the log's signing keys, and
    canary tokens (``console.authorize.views.canary_new``)."""
    users = get_user_model().objects.prefetch_related("groups").order_by("username")
    return render(
        request,
        "console/settings.html",
        {
            "users": users,
            "can_manage_users": can(request.user, "manage_users"),
            "tokens": selectors.operator_tokens(),
            "agent_keys": selectors.agent_keys(),
            "can_manage_keys": can(request.user, "manage_keys"),
            "signing_keys": selectors.signing_keys(),
            "canaries": authorize_selectors.canary_guardrails(),
            "can_manage_policies": can(request.user, "manage_policies"),
        },
    )


@never_cache  # the one response that shows the token
@role_required("manage_users")
@require_POST
def operator_token_issue(request: HttpRequest, username: str) -> HttpResponse:
    person = _operator(username)
    try:
        token, full = services.issue_operator_token(person, by=request.user)
    except WardenError as exc:
        return _operator_page(request, person, errors=_form_errors(exc), status=exc.status)
    return render(
        request, "console/token_issued.html", {"person": person, "token": token, "full": full}
    )


@role_required("manage_users")
@require_http_methods(["GET", "POST"])
def operator_token_revoke(request: HttpRequest, token_prefix: str) -> HttpResponse:
    token = get_object_or_404(OperatorToken.objects.select_related("user"), prefix=token_prefix)
    context = {"token": token, "errors": {}}
    if request.method == "GET":
        return render(request, "console/token_revoke.html", context)
    try:
        services.revoke_operator_token(
            token, by=request.user, reason=request.POST.get("reason", "")
        )
    except WardenError as exc:
        context["errors"] = _form_errors(exc)
        return render(request, "console/token_revoke.html", context, status=exc.status)
    messages.success(
        request, f"Token wdn_op_{token.prefix}_… of {token.user.get_username()} revoked."
    )
    return redirect(reverse("settings") + "#tokens")


def _operator(username: str):
    return get_object_or_404(get_user_model().objects.prefetch_related("groups"), username=username)


def _operator_page(request, person, *, errors=None, status=200, form=None) -> HttpResponse:
    context = {
        "person": person,
        "roles": ROLES,
        "held": set(services.operator_roles(person)),
        "errors": errors or {},
        "form": form or "",
        "tokens": person.api_tokens.order_by("-created_at"),
    }
    return render(request, "console/operator.html", context, status=status)


@never_cache  # the response to the POST shows the password
@role_required("manage_users")
@require_http_methods(["GET", "POST"])
def operator_new(request: HttpRequest) -> HttpResponse:
    """Create an operator with roles; the random first password is shown once."""
    form = {"username": "", "roles": [], "reason": ""}
    errors: dict = {}
    status = 200
    if request.method == "POST":
        form = {
            "username": request.POST.get("username", ""),
            "roles": request.POST.getlist("roles"),
            "reason": request.POST.get("reason", ""),
        }
        try:
            person, password = services.create_operator(by=request.user, **form)
        except WardenError as exc:
            errors, status = _form_errors(exc), exc.status
        else:
            return render(
                request, "console/password_reset.html", {"person": person, "password": password}
            )
    context = {"form": form, "errors": errors, "roles": ROLES}
    return render(request, "console/operator_new.html", context, status=status)


@role_required("manage_users")
def operator_detail(request: HttpRequest, username: str) -> HttpResponse:
    """One operator: their roles and status, with the forms that change them."""
    return _operator_page(request, _operator(username))


@role_required("manage_users")
@require_POST
def operator_roles(request: HttpRequest, username: str) -> HttpResponse:
    person = _operator(username)
    try:
        services.set_operator_roles(
            person,
            by=request.user,
            roles=request.POST.getlist("roles"),
            reason=request.POST.get("reason", ""),
        )
    except WardenError as exc:
        errors = _form_errors(exc)
        return _operator_page(request, person, errors=errors, status=exc.status, form="roles")
    messages.success(request, f"Roles of {person.get_username()} changed.")
    return redirect("operator-detail", username=person.get_username())


@role_required("manage_users")
@require_POST
def operator_active(request: HttpRequest, username: str) -> HttpResponse:
    person = _operator(username)
    active = request.POST.get("active") == "1"
    try:
        services.set_operator_active(
            person, by=request.user, active=active, reason=request.POST.get("reason", "")
        )
    except WardenError as exc:
        errors = _form_errors(exc)
        return _operator_page(request, person, errors=errors, status=exc.status, form="active")
    state = "reactivated" if active else "deactivated"
    messages.success(request, f"{person.get_username()} {state}.")
    return redirect("operator-detail", username=person.get_username())


PASSWORD_FAILURES = "warden_password_change_failures"
MAX_PASSWORD_FAILURES = 5


@role_required("read")
@require_http_methods(["GET", "POST"])
def password_change(request: HttpRequest) -> HttpResponse:
    """Every operator changes their own password (the current one is asked for); their
    other console sessions end, this one stays. Five wrong current passwords in one
    session end it."""
    form = PasswordChangeForm(request.user, request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = services.change_password(
            request.user, new_password=form.cleaned_data["new_password1"]
        )
        update_session_auth_hash(request, user)
        request.session.pop(PASSWORD_FAILURES, None)
        messages.success(request, "Password changed. Your other sessions are logged out.")
        return redirect("password-change")
    if request.method == "POST" and "old_password" in form.errors:
        # A wrong current password: someone holding this session may be guessing it.
        failures = request.session.get(PASSWORD_FAILURES, 0) + 1
        services.record_password_change_failure(request.user, failures=failures)
        if failures >= MAX_PASSWORD_FAILURES:
            logout(request)
            messages.error(request, "Too many wrong current passwords: you were logged out.")
            return redirect("login")
        request.session[PASSWORD_FAILURES] = failures
    status = 400 if request.method == "POST" else 200
    return render(request, "registration/password_change.html", {"form": form}, status=status)


@never_cache  # the one response that shows the password
@role_required("manage_users")
@require_POST
def operator_password_reset(request: HttpRequest, username: str) -> HttpResponse:
    person = _operator(username)
    try:
        password = services.reset_operator_password(
            person, by=request.user, reason=request.POST.get("reason", "")
        )
    except WardenError as exc:
        errors = _form_errors(exc)
        return _operator_page(request, person, errors=errors, status=exc.status, form="password")
    return render(request, "console/password_reset.html", {"person": person, "password": password})


def healthz(request: HttpRequest) -> HttpResponse:
    return HttpResponse("ok", content_type="text/plain")
