"""Console pages of the approval queue (SPEC §4, §8).

The queue page lists what waits for a human, most urgent first; a websocket (reviewers:
``/ws/approvals/``, others: the console's ``/ws/live/``) carries hints and the page
re-fetches its cards with HTMX (``?part=cards``). Without JavaScript every form still works:
a decision redirects back to the queue with a message, Reject / Pause / Revoke open a
confirmation page instead of a dialog.
"""

from __future__ import annotations

import json

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods, require_POST

from audit.timefmt import format_timestamp
from console.errors import Invalid, WardenError
from console.roles import can, role_required

from . import rules, selectors, services
from .models import ApprovalRequest

Status = ApprovalRequest.Status

DIALOGS = {
    "reject": {
        "title": "Reject",
        "explain": "The agent is told rejected and the action does not run. Your reason is "
        "recorded in the signed log and shown to the agent.",
        "button": "Reject request",
    },
    "pause": {
        "title": "Pause the agent",
        "explain": "Resolves the review with Pause: new sessions are refused until someone "
        "resumes the agent; sessions already open run to their end.",
        "button": "Pause agent",
    },
    "revoke": {
        "title": "Revoke the agent",
        "explain": "Resolves the review with Revoke. Permanent: every API key stops working at "
        "once, open sessions are closed and open approval requests are cancelled.",
        "button": "Revoke permanently",
    },
}


def _approval(approval_id) -> ApprovalRequest:
    approval = selectors.get(approval_id)
    if approval is None:
        raise Http404("No such approval request")
    return approval


def _queue_url(request: HttpRequest) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if target and url_has_allowed_host_and_scheme(
        target, {request.get_host()}, request.is_secure()
    ):
        return target
    return reverse("approval-queue")


def _card(request: HttpRequest, approval: ApprovalRequest, history: list, now, **extra) -> dict:
    status = selectors.effective_status(approval, now)
    decisions = list(approval.decisions.all())
    user = request.user
    return {
        "r": approval,
        "status": status,
        "open": status == Status.PENDING,
        "history": history,
        "sla": selectors.sla_state(approval, now),
        "decisions": decisions,
        "approvals_given": sum(1 for d in decisions if d.decision == "approve"),
        "is_owner": approval.agent.owner_id == user.pk,
        "voted": any(d.reviewer_id == user.pk for d in decisions),
        "created_at": format_timestamp(approval.created_at),
        "expires_at": format_timestamp(approval.expires_at) if approval.expires_at else "",
        "sla_at_risk_at": format_timestamp(approval.sla_at_risk_at),
        "sla_due_at": format_timestamp(approval.sla_due_at),
        "args_text": json.dumps(approval.args, indent=2, sort_keys=True, ensure_ascii=False)
        if approval.args
        else "",
        **extra,
    }


def _common(request: HttpRequest, now) -> dict:
    return {"can_decide": can(request.user, "decide"), "server_now": format_timestamp(now)}


@role_required("read")
def queue(request: HttpRequest) -> HttpResponse:
    now = timezone.now()
    filters, errors = selectors.parse_filters(request.GET)
    rows, total = selectors.queue(filters, now=now)
    history = selectors.recent_actions([row.agent_id for row in rows])
    context = {
        **_common(request, now),
        "cards": [_card(request, row, history[row.agent_id], now) for row in rows],
        "total": total,
        "shown": len(rows),
        "filters": filters,
        "filter_query": filters.as_query(),
        "filter_errors": errors,
        "agents": selectors.queue_agents(now),
        "priorities": [(p, p.title()) for p in reversed(rules.PRIORITIES)],
        "tiers": [1, 2, 3, 4],
        "sla_states": [("ok", "On time"), ("at_risk", "At risk"), ("breached", "Breached")],
        "kinds": ApprovalRequest.Kind.choices,
    }
    # The cards alone for the live re-fetch (?part=cards) and the filter form (target #queue,
    # so the URL it pushes into the history stays a plain, shareable queue URL).
    if request.htmx and (request.GET.get("part") == "cards" or request.htmx.target == "queue"):
        return render(request, "approvals/queue.html#cards", context)
    return render(request, "approvals/queue.html", context)


@role_required("read")
def badge(request: HttpRequest) -> HttpResponse:
    return render(
        request, "approvals/_badge.html#count", {"pending_approvals": selectors.pending_count()}
    )


@role_required("read")
def dashboard_panel(request: HttpRequest) -> HttpResponse:
    return render(
        request, "approvals/_dashboard.html#body", {"summary": selectors.dashboard_summary()}
    )


def _outcome_message(approval: ApprovalRequest, status: str) -> str:
    if status == Status.APPROVED:
        return "Approved: the agent may run this action once."
    if status == Status.REJECTED:
        return "Rejected: the agent has been told."
    if status == Status.RESOLVED:
        return f"Review resolved: {approval.get_outcome_display().lower()}."
    if status == Status.PENDING:
        return "Your approval is recorded; a second reviewer must approve too (four-eyes)."
    return f"This request is {status}."


@role_required("decide")
@require_POST
def decide(request: HttpRequest, approval_id) -> HttpResponse:
    approval = _approval(approval_id)
    decision = request.POST.get("decision", "")
    comment = request.POST.get("comment", "")
    in_dialog = request.POST.get("dialog") == "1"
    error: WardenError | None = None
    try:
        if approval.is_review:
            if decision == "revoke" and request.POST.get("confirm_name", "").strip() != (
                approval.agent.name
            ):
                raise Invalid(
                    "Type the agent's name exactly to confirm.",
                    fields={"confirm_name": ["Type the agent's name exactly to confirm."]},
                )
            services.resolve_review(approval, by=request.user, outcome=decision, comment=comment)
        else:
            services.decide(approval, by=request.user, decision=decision, comment=comment)
    except WardenError as exc:
        error = exc
    now = timezone.now()
    fresh = selectors.get(approval.id)
    status = selectors.effective_status(fresh, now)

    if not request.htmx:
        if error is not None:
            messages.error(request, error.message)
            if in_dialog:
                return _dialog(request, fresh, decision, comment=comment, error=error)
        else:
            messages.success(request, _outcome_message(fresh, status))
        return redirect(_queue_url(request))

    if in_dialog:
        if error is not None:
            return _dialog(request, fresh, decision, comment=comment, error=error)
        message = _outcome_message(fresh, status)
        response = render(request, "console/contain_form.html#done", {"message": message})
        response["HX-Trigger"] = json.dumps(
            {"queueChanged": {"approval_id": str(fresh.id)}, "warden:done": {"message": message}}
        )
        return response

    history = selectors.recent_actions([fresh.agent_id])[fresh.agent_id]
    card = _card(
        request,
        fresh,
        history,
        now,
        message="" if error else _outcome_message(fresh, status),
        error=error.message if error else "",
    )
    response = render(
        request,
        "approvals/queue.html#card",
        {**_common(request, now), "card": card},
        status=error.status if error else 200,
    )
    # Also above the queue, where a live re-fetch of the cards does not wipe it out (and on
    # <body>: the form that asked may have been replaced by such a re-fetch meanwhile).
    response["HX-Trigger"] = json.dumps(
        {
            "warden:notice": {
                "message": error.message if error else card["message"],
                "level": "error" if error else "ok",
                "target": "body",
            }
        }
    )
    return response


def _dialog(
    request: HttpRequest,
    approval: ApprovalRequest,
    decision: str,
    *,
    comment: str = "",
    error: WardenError | None = None,
) -> HttpResponse:
    spec = DIALOGS.get(decision)
    if spec is None:
        raise Http404("No such decision")
    errors: dict = {}
    if error is not None:
        errors = error.fields or {"form": [error.message]}
    template = "approvals/decide_form.html#form" if request.htmx else "approvals/decide_form.html"
    return render(
        request,
        template,
        {
            "approval": approval,
            "decision": decision,
            "spec": spec,
            "comment": comment,
            "errors": errors,
            "next": _queue_url(request),
        },
        status=error.status if error is not None else 200,
    )


def _open_or_refuse(request: HttpRequest, approval: ApprovalRequest, decision: str):
    """The dialog for a request that can still be decided; else the reason it cannot."""
    status = selectors.effective_status(approval)
    if status != Status.PENDING:
        error = services.not_pending_error(approval, status)
        return _dialog(request, approval, decision, error=error)
    return _dialog(request, approval, decision)


@role_required("decide")
@require_http_methods(["GET"])
def reject_form(request: HttpRequest, approval_id) -> HttpResponse:
    approval = _approval(approval_id)
    if approval.is_review:
        raise Http404("A review is resolved with keep, pause or revoke")
    return _open_or_refuse(request, approval, "reject")


@role_required("decide")
@require_http_methods(["GET"])
def resolve_form(request: HttpRequest, approval_id, outcome: str) -> HttpResponse:
    if outcome not in ("pause", "revoke"):
        raise Http404("No such outcome")
    approval = _approval(approval_id)
    if not approval.is_review:
        raise Http404("An action request is approved or rejected")
    return _open_or_refuse(request, approval, outcome)
