"""The risk assessment wizard (SPEC §2, §8): one step per category, then Review.

Works without JavaScript: every step is a plain form whose buttons post the answers given
so far (the other steps' answers ride along as hidden inputs) and the server redirects to
the chosen step with the answers in the query string, so Back / Next, the step links and
the browser's own back button all keep them. Moving forward from a step with an
unanswered question re-shows the step naming each one; going back never blocks. With
HTMX, a change to any answer re-renders the live panel (sub-scores, risk, tier, predicted
trust) from ``assessment_panel``. Review saves through ``services.assess_agent``.
"""

from __future__ import annotations

import uuid
from urllib.parse import urlencode

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse, QueryDict
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from console.errors import WardenError
from console.models import Agent
from console.roles import role_required
from trust import scoring as trust_scoring

from . import scoring, selectors, services

REVIEW = "review"
# (URL slug, category key); the last step is Review.
STEPS: tuple[tuple[str, str | None], ...] = (
    ("base-security", scoring.BASE_SECURITY),
    ("ai-specific", scoring.AI_SPECIFIC),
    ("impact", scoring.IMPACT),
    (REVIEW, None),
)
STEP_SLUGS = tuple(slug for slug, _ in STEPS)
STEP_OF_CATEGORY = {category: slug for slug, category in STEPS if category}
STEP_TITLES = {
    "base-security": "Base Security",
    "ai-specific": "AI-Specific",
    "impact": "Impact",
    REVIEW: "Review",
}


def _agent(agent_id) -> Agent:
    try:
        return get_object_or_404(Agent.objects.select_related("owner"), pk=uuid.UUID(str(agent_id)))
    except ValueError as exc:
        raise Http404("No such agent") from exc


def _read_answers(data: QueryDict) -> tuple[dict[str, str], dict[str, list[str]]]:
    """Known answers from a form or query string, and the reasons for any bad values."""
    answers: dict[str, str] = {}
    errors: dict[str, list[str]] = {}
    for key, parameter in scoring.PARAMETERS.items():
        value = data.get(key, "")
        if not value:
            continue
        if value in parameter.option_keys:
            answers[key] = value
        else:
            errors[key] = [
                f"{value!r} is not an option; choose one of "
                f"{scoring.allowed_options_text(parameter)}."
            ]
    return answers, errors


def _query(answers: dict[str, str]) -> str:
    ordered = [(key, answers[key]) for key in scoring.PARAMETER_KEYS if key in answers]
    return urlencode(ordered)


def _step_url(agent: Agent, slug: str, answers: dict[str, str]) -> str:
    url = reverse("assessment-step", args=[agent.id, slug])
    query = _query(answers)
    return f"{url}?{query}" if query else url


def _missing(answers: dict[str, str], category_key: str | None = None) -> list[scoring.Parameter]:
    categories = (
        [scoring.CATEGORY_BY_KEY[category_key]] if category_key else list(scoring.CATEGORIES)
    )
    return [
        parameter
        for category in categories
        for parameter in category.parameters
        if parameter.key not in answers
    ]


def _assessable(request: HttpRequest, agent: Agent) -> HttpResponse | None:
    if agent.status == Agent.Status.REVOKED:
        messages.error(request, f"{agent.name} is revoked; a revoked agent cannot be assessed.")
        return redirect("agent-tab", agent_id=agent.id, tab="assess")
    return None


def panel_context(agent: Agent, answers: dict[str, str]) -> dict:
    """The live panel: sub-scores of complete categories, and the results once all 14 are in."""
    categories = []
    for category in scoring.CATEGORIES:
        total = len(category.parameters)
        answered = sum(1 for parameter in category.parameters if parameter.key in answers)
        value = (
            scoring.round_subscore(scoring.category_score(answers, category.key))
            if answered == total
            else None
        )
        categories.append(
            {"category": category, "answered": answered, "total": total, "value": value}
        )
    missing = _missing(answers)
    context: dict = {
        "panel_categories": categories,
        "panel_missing": len(missing),
        "profile": None,
        "agent": agent,
        "behavioral": agent.behavioral,
        "alignment": agent.alignment,
    }
    if not missing:
        profile = scoring.score(answers)
        trust = trust_scoring.trust_score(
            profile.risk_profile_score, agent.behavioral, agent.alignment
        )
        trust_tier = trust_scoring.trust_tier(trust)
        context.update(
            {
                "profile": profile,
                "tier_meaning": scoring.TIER_MEANINGS[profile.risk_tier],
                "predicted_trust": trust,
                "predicted_trust_tier": trust_tier,
                "predicted_effective_tier": trust_scoring.effective_tier(
                    profile.risk_tier, trust_tier
                ),
            }
        )
    return context


def _steps_nav(agent: Agent, current: str, answers: dict[str, str]) -> list[dict]:
    nav = []
    for index, (slug, category_key) in enumerate(STEPS, start=1):
        total: int | None = None
        answered: int | None = None
        if category_key:
            category = scoring.CATEGORY_BY_KEY[category_key]
            total = len(category.parameters)
            answered = sum(1 for p in category.parameters if p.key in answers)
        nav.append(
            {
                "number": index,
                "slug": slug,
                "title": STEP_TITLES[slug],
                "url": _step_url(agent, slug, answers),
                "current": slug == current,
                "answered": answered,
                "total": total,
                "complete": total is not None and answered == total,
            }
        )
    return nav


def _wizard_context(
    agent: Agent,
    slug: str,
    answers: dict[str, str],
    errors: dict[str, list[str]],
) -> dict:
    latest = selectors.latest(agent)
    index = STEP_SLUGS.index(slug)
    context = {
        "agent": agent,
        "latest": latest,
        "step_slug": slug,
        "step_number": index + 1,
        "step_title": STEP_TITLES[slug],
        "steps": _steps_nav(agent, slug, answers),
        "previous_slug": STEP_SLUGS[index - 1] if index > 0 else None,
        "next_slug": STEP_SLUGS[index + 1] if index + 1 < len(STEP_SLUGS) else None,
        "answers": answers,
        "errors": errors,
        "query": _query(answers),
        **panel_context(agent, answers),
    }
    category_key = STEPS[index][1]
    if category_key:
        category = scoring.CATEGORY_BY_KEY[category_key]
        own = {parameter.key for parameter in category.parameters}
        context.update(
            {
                "category": category,
                "questions": [
                    {
                        "parameter": parameter,
                        "selected": answers.get(parameter.key),
                        "errors": errors.get(parameter.key, []),
                    }
                    for parameter in category.parameters
                ],
                "carried": [(k, v) for k, v in answers.items() if k not in own],
            }
        )
    else:
        context.update(_review_context(agent, latest, answers))
    return context


def _review_context(agent: Agent, latest, answers: dict[str, str]) -> dict:
    missing = _missing(answers)
    rows = []
    for category in scoring.CATEGORIES:
        slug = STEP_OF_CATEGORY[category.key]
        for parameter in category.parameters:
            key = answers.get(parameter.key)
            rows.append(
                {
                    "category": category.title,
                    "step_url": _step_url(agent, slug, answers),
                    "parameter": parameter,
                    "answer": key,
                    "option": parameter.option(key) if key else None,
                    "changed": latest is not None and latest.answers.get(parameter.key) != key,
                }
            )
    context: dict = {
        "review_rows": rows,
        "review_missing": missing,
        "tier_meanings": scoring.TIER_MEANINGS,
        "carried": list(answers.items()),
        "changes": scoring.changed_answers(latest.answers, answers) if latest else [],
        "next_version": (latest.version + 1) if latest else 1,
    }
    return context


@role_required("assess")
def assessment_start(request: HttpRequest, agent_id) -> HttpResponse:
    """Begin the wizard: empty for a first assessment, prefilled with the current version."""
    agent = _agent(agent_id)
    refused = _assessable(request, agent)
    if refused:
        return refused
    latest = selectors.latest(agent)
    return redirect(_step_url(agent, STEP_SLUGS[0], latest.answers if latest else {}))


@role_required("assess")
@require_http_methods(["GET", "POST"])
def assessment_step(request: HttpRequest, agent_id, step: str) -> HttpResponse:
    agent = _agent(agent_id)
    if step not in STEP_SLUGS:
        raise Http404("No such step")
    refused = _assessable(request, agent)
    if refused:
        return refused
    if request.method == "GET":
        answers, errors = _read_answers(request.GET)
        return _render(request, agent, step, answers, errors)

    answers, errors = _read_answers(request.POST)
    target = request.POST.get("go", "")
    if step == REVIEW and target == "save":
        return _save(request, agent, answers, errors)
    if target not in STEP_SLUGS:
        target = step
    index = STEP_SLUGS.index(step)
    category_key = STEPS[index][1]
    if category_key and STEP_SLUGS.index(target) > index:
        # Leaving forward: every question of this step needs an answer; say which.
        own = {parameter.key for parameter in scoring.CATEGORY_BY_KEY[category_key].parameters}
        for parameter in _missing(answers, category_key):
            errors.setdefault(parameter.key, ["Choose one option before moving on."])
        if own & set(errors):
            return _render(request, agent, step, answers, errors, status=400)
    return redirect(_step_url(agent, target, answers))


def _render(request, agent, step, answers, errors, *, status=200) -> HttpResponse:
    context = _wizard_context(agent, step, answers, errors)
    template = "assessments/review.html" if step == REVIEW else "assessments/wizard.html"
    return render(request, template, context, status=status)


def _save(request: HttpRequest, agent: Agent, answers, errors) -> HttpResponse:
    reason = request.POST.get("reason", "")
    try:
        expected = int(request.POST.get("expected_version", ""))
    except ValueError:
        expected = None
    if errors or _missing(answers):
        context = _wizard_context(agent, REVIEW, answers, errors)
        context["reason"] = reason
        context["form_errors"] = ["Some questions are unanswered; answer them before saving."]
        return render(request, "assessments/review.html", context, status=400)
    try:
        assessment = services.assess_agent(
            agent, answers=answers, by=request.user, reason=reason, expected_version=expected
        )
    except WardenError as exc:
        context = _wizard_context(agent, REVIEW, answers, {})
        context["reason"] = reason
        context["form_errors"] = [exc.message]
        context["reason_errors"] = (exc.fields or {}).get("reason", [])
        return render(request, "assessments/review.html", context, status=exc.status)
    messages.success(
        request,
        f"{agent.name}: assessment version {assessment.version} saved — risk "
        f"{assessment.risk_percent}%, tier {assessment.risk_tier} ({assessment.tier_label}).",
    )
    return redirect("agent-tab", agent_id=agent.id, tab="assess")


@role_required("assess")
@require_POST
def assessment_panel(request: HttpRequest, agent_id) -> HttpResponse:
    """The live panel for the answers posted so far (HTMX, on every change)."""
    agent = _agent(agent_id)
    answers, _ = _read_answers(request.POST)
    return render(request, "assessments/wizard.html#live-panel", panel_context(agent, answers))
