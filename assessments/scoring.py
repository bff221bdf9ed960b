"""Risk assessment arithmetic and its parameter table (SPEC §2.1, §2.2); no Django import.

This module owns:

* ``CATEGORIES`` / ``PARAMETERS``: the 14 parameters, their options and option values
  (SPEC §2.1, after the OWASP AIVSS calculator), each option with a one-line plain-language
  explanation and an example. The wizard renders exactly this table.
* ``validate_answers``: checks a raw answer mapping and reports *every* bad field at once
  (unknown key, missing key, unknown option).
* ``score``: the arithmetic of SPEC §2.2, and ``initial_trust_score`` (SPEC §5.1 for a new
  agent, whose behavioural and alignment components are both 100).

Rounding
--------
All arithmetic is done in ``decimal.Decimal`` on the exact option values (``Decimal(".85")``,
never a float). The only inexact step is the division in ``base_security``, evaluated with 34
significant digits. Rounding is ``ROUND_HALF_UP``:

* ``risk_percent = round(100·risk, 2)`` is computed from the *unrounded* sub-scores;
* ``risk_profile_score = 100 − risk_percent`` is then exact;
* the sub-scores ``base_security``, ``ai_specific`` and ``impact`` are reported to 4
  decimals, half-up (``ai_specific`` and ``impact`` are exact at 4 decimals anyway).

Why half-up: over all answer combinations, 483 distinct ``(base, ai, impact)`` triples put
``100·risk`` exactly on a half cent, so the mode matters. For example network / low / none /
none / changed, AI answers medium, very_low, very_high, medium, very_low, and impact
answers medium, critical, medium, high give exactly 70.675: half-up gives 70.68, whereas
Python's ``round(float, 2)`` gives 70.67 (the float is 70.67499…). Half-up is what a person
checking the arithmetic by hand expects, and it reproduces every entry of
``shared/vectors/risk_profile.json`` (none of which is a tie). See
``tests/assessments/test_scoring.py``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, localcontext
from typing import Any

from trust import scoring as trust_scoring

_CENT = Decimal("0.01")
_SUBSCORE = Decimal("0.0001")
_HUNDRED = Decimal("100")


@dataclass(frozen=True)
class Option:
    key: str
    value: Decimal
    label: str
    explanation: str
    example: str


@dataclass(frozen=True)
class Parameter:
    key: str
    category: str
    title: str
    question: str
    # Ordered from the least to the most severe (ascending value): the wizard lists them in
    # this order and the property tests use it to define "more severe".
    options: tuple[Option, ...]

    def option(self, key: str) -> Option:
        for option in self.options:
            if option.key == key:
                return option
        raise KeyError(key)

    @property
    def option_keys(self) -> tuple[str, ...]:
        return tuple(option.key for option in self.options)


@dataclass(frozen=True)
class Category:
    key: str
    title: str
    weight: Decimal
    summary: str
    parameters: tuple[Parameter, ...]


def _opt(key: str, value: str, label: str, explanation: str, example: str) -> Option:
    return Option(key, Decimal(value), label, explanation, example)


def _five_level(
    specs: Mapping[str, tuple[str, str]],
) -> tuple[Option, ...]:
    """AI-specific options (SPEC §2.1): very_low .2 … very_high 1.0, higher = more risk."""
    values = {"very_low": ".2", "low": ".4", "medium": ".6", "high": ".8", "very_high": "1.0"}
    labels = {
        "very_low": "Very low",
        "low": "Low",
        "medium": "Medium",
        "high": "High",
        "very_high": "Very high",
    }
    return tuple(_opt(key, values[key], labels[key], *specs[key]) for key in values)


def _impact_levels(specs: Mapping[str, tuple[str, str]]) -> tuple[Option, ...]:
    """Impact options (SPEC §2.1): none 0, low .22, medium .56, high .85, critical 1.0."""
    values = {"none": "0", "low": ".22", "medium": ".56", "high": ".85", "critical": "1.0"}
    labels = {
        "none": "None",
        "low": "Low",
        "medium": "Medium",
        "high": "High",
        "critical": "Critical",
    }
    return tuple(_opt(key, values[key], labels[key], *specs[key]) for key in values)


BASE_SECURITY = "base_security"
AI_SPECIFIC = "ai_specific"
IMPACT = "impact"

CATEGORIES: tuple[Category, ...] = (
    Category(
        BASE_SECURITY,
        "Base Security",
        Decimal("0.25"),
        "How exposed the agent is to attack: who can reach it, how easily, and how far a "
        "compromise spreads.",
        (
            Parameter(
                "attack_vector",
                BASE_SECURITY,
                "Attack vector",
                "From where can someone reach the agent to attack or misuse it?",
                (
                    _opt(
                        "physical",
                        ".20",
                        "Physical",
                        "Only someone with hands on the machine can give it input.",
                        "An agent on an air-gapped lab workstation.",
                    ),
                    _opt(
                        "local",
                        ".55",
                        "Local",
                        "Only users or programs already on the same computer can reach it.",
                        "A command-line agent that works on files on one developer's laptop.",
                    ),
                    _opt(
                        "adjacent",
                        ".62",
                        "Adjacent network",
                        "Reachable only from the same internal network segment or VPN.",
                        "An IT helper bot reachable only from the office network.",
                    ),
                    _opt(
                        "network",
                        ".85",
                        "Network",
                        "Reachable from the internet, or it reads content that anyone can send.",
                        "A public chat assistant, or an agent that reads incoming email.",
                    ),
                ),
            ),
            Parameter(
                "attack_complexity",
                BASE_SECURITY,
                "Attack complexity",
                "How hard is it to make an attack on the agent work?",
                (
                    _opt(
                        "high",
                        ".44",
                        "High",
                        "An attack only works under special conditions the attacker does not "
                        "control.",
                        "The attacker must know a per-deployment secret or win a timing race.",
                    ),
                    _opt(
                        "low",
                        ".77",
                        "Low",
                        "No special conditions: an attack works reliably, every time.",
                        "A crafted instruction hidden in a document the agent reads is enough.",
                    ),
                ),
            ),
            Parameter(
                "privileges_required",
                BASE_SECURITY,
                "Privileges required",
                "What access does an attacker need before they can influence the agent?",
                (
                    _opt(
                        "high",
                        ".27",
                        "High",
                        "Only administrators or other privileged accounts can give it input.",
                        "Only the operations team's admin accounts can start its runs.",
                    ),
                    _opt(
                        "low",
                        ".62",
                        "Low",
                        "Any ordinary signed-in user can give it input.",
                        "Any employee can message the agent on the intranet.",
                    ),
                    _opt(
                        "none",
                        ".85",
                        "None",
                        "Anyone, without an account, can give it input.",
                        "It processes vendor invoices that anyone can email in.",
                    ),
                ),
            ),
            Parameter(
                "user_interaction",
                BASE_SECURITY,
                "User interaction",
                "Does an attack need a person, other than the attacker, to do something?",
                (
                    _opt(
                        "required",
                        ".62",
                        "Required",
                        "A person has to act (open, approve, click) before an attack can land.",
                        "A human clicks 'run' on every task the agent proposes.",
                    ),
                    _opt(
                        "none",
                        ".85",
                        "None",
                        "Nobody needs to do anything: the agent acts on input by itself.",
                        "It handles every new invoice automatically as it arrives.",
                    ),
                ),
            ),
            Parameter(
                "scope",
                BASE_SECURITY,
                "Scope",
                "Can a compromise of the agent reach beyond its own system?",
                (
                    _opt(
                        "unchanged",
                        "1.0",
                        "Unchanged",
                        "Damage stays inside the agent's own system and data.",
                        "A summariser that holds no credentials for other systems.",
                    ),
                    _opt(
                        "changed",
                        "1.5",
                        "Changed",
                        "A compromise can spill into other systems the agent has access to.",
                        "An agent that holds API keys for the ERP and the payment platform.",
                    ),
                ),
            ),
        ),
    ),
    Category(
        AI_SPECIFIC,
        "AI-Specific",
        Decimal("0.45"),
        "Risks that come from the model and its autonomy: manipulation, the data it handles, "
        "its effect on people, how much it decides and how much it changes itself.",
        (
            Parameter(
                "model_robustness",
                AI_SPECIFIC,
                "Model robustness risk",
                "How much risk comes from the model being fooled or behaving unpredictably "
                "(prompt injection, jailbreaks, hallucination)? The option names the risk, so "
                "a weak model is a high risk.",
                _five_level(
                    {
                        "very_low": (
                            "Hardened: inputs are constrained and outputs strictly validated.",
                            "A classifier choosing from a fixed label set, tested against "
                            "adversarial inputs.",
                        ),
                        "low": (
                            "Tested against injection, with checks on the outputs that matter.",
                            "Structured extraction with schema validation and red-team tests.",
                        ),
                        "medium": (
                            "A general model with some guardrails, not tested against a "
                            "determined attacker.",
                            "A chat model with a system prompt and a basic content filter.",
                        ),
                        "high": (
                            "A free-form model acting on untrusted input with little validation.",
                            "An agent that follows instructions found in the web pages it browses.",
                        ),
                        "very_high": (
                            "Known to be easy to manipulate or unpredictable, with no defences.",
                            "An unevaluated experimental fine-tune that reads arbitrary email.",
                        ),
                    }
                ),
            ),
            Parameter(
                "data_sensitivity",
                AI_SPECIFIC,
                "Data sensitivity",
                "How sensitive is the data the agent can read or write?",
                _five_level(
                    {
                        "very_low": (
                            "Public information only.",
                            "Product documentation and public web pages.",
                        ),
                        "low": (
                            "Internal data that would do no harm if disclosed.",
                            "Canteen menus, meeting-room schedules.",
                        ),
                        "medium": (
                            "Internal business data: disclosure would hurt, but not seriously.",
                            "Internal project plans, draft price lists.",
                        ),
                        "high": (
                            "Confidential data: personal data, financial records, contracts.",
                            "Invoices, vendor bank details, employee records.",
                        ),
                        "very_high": (
                            "Regulated or secret data whose disclosure is a serious incident.",
                            "Health records, payment card numbers, credentials, trade secrets.",
                        ),
                    }
                ),
            ),
            Parameter(
                "ethical_impact",
                AI_SPECIFIC,
                "Ethical impact",
                "How much can the agent's decisions affect people's rights, fairness or wellbeing?",
                _five_level(
                    {
                        "very_low": (
                            "No effect on people.",
                            "Reformatting log files.",
                        ),
                        "low": (
                            "Small effects on people that are easily reversed.",
                            "Suggesting meeting times.",
                        ),
                        "medium": (
                            "Noticeable effects on people that a human can still correct.",
                            "Ordering the customer support queue.",
                        ),
                        "high": (
                            "Significant effects on individuals; bias or error would be unfair.",
                            "Shortlisting job applicants, choosing which vendors get paid first.",
                        ),
                        "very_high": (
                            "Decides about people's livelihood, safety or legal standing.",
                            "Approving loans, denying insurance claims, medical triage.",
                        ),
                    }
                ),
            ),
            Parameter(
                "decision_criticality",
                AI_SPECIFIC,
                "Decision criticality",
                "How consequential are the decisions and actions the agent takes on its own?",
                _five_level(
                    {
                        "very_low": (
                            "Informational only: it decides nothing.",
                            "Answering questions about public documentation.",
                        ),
                        "low": (
                            "Suggestions that a person always reviews before anything happens.",
                            "Drafting an email that a human reads and sends.",
                        ),
                        "medium": (
                            "Routine actions that are easy to undo.",
                            "Tagging invoices and routing them for review.",
                        ),
                        "high": (
                            "Important actions that are costly to undo.",
                            "Placing purchase orders within a set budget.",
                        ),
                        "very_high": (
                            "Critical or irreversible actions.",
                            "Committing contracts, moving money, deleting production data.",
                        ),
                    }
                ),
            ),
            Parameter(
                "adaptability",
                AI_SPECIFIC,
                "Adaptability",
                "How freely does the agent plan, remember and change its own behaviour?",
                _five_level(
                    {
                        "very_low": (
                            "Fixed behaviour: the same input always leads to the same steps.",
                            "A scripted workflow that calls a model for one step.",
                        ),
                        "low": (
                            "Chooses among a few predefined paths.",
                            "A router that picks one of five tools.",
                        ),
                        "medium": (
                            "Plans multi-step tasks with a fixed set of tools.",
                            "A tool-using agent with a handful of tools and no memory.",
                        ),
                        "high": (
                            "Plans open-ended tasks, keeps memory and sets its own sub-goals.",
                            "An agent that decides which vendors to contact and remembers "
                            "past deals.",
                        ),
                        "very_high": (
                            "Rewrites its own prompts, tools or code, or learns while running.",
                            "A self-improving agent that fine-tunes itself on its results.",
                        ),
                    }
                ),
            ),
        ),
    ),
    Category(
        IMPACT,
        "Impact",
        Decimal("0.30"),
        "What could happen if the agent is misused or goes wrong: disclosure, corruption, "
        "disruption and physical harm.",
        (
            Parameter(
                "confidentiality_impact",
                IMPACT,
                "Confidentiality impact",
                "If the agent is misused, how bad could the disclosure of information be?",
                _impact_levels(
                    {
                        "none": (
                            "Nothing confidential could leak.",
                            "It only ever sees public pages.",
                        ),
                        "low": (
                            "Some internal data could leak, with limited harm.",
                            "A few internal wiki pages.",
                        ),
                        "medium": (
                            "A significant amount of confidential data, or some personal data.",
                            "One customer's order history.",
                        ),
                        "high": (
                            "Large amounts of confidential or personal data.",
                            "The whole vendor master file with bank details.",
                        ),
                        "critical": (
                            "Everything it can reach, including secrets or regulated data at "
                            "scale.",
                            "All customer records together with API credentials.",
                        ),
                    }
                ),
            ),
            Parameter(
                "integrity_impact",
                IMPACT,
                "Integrity impact",
                "If the agent is misused, how badly could it corrupt data or make wrong changes?",
                _impact_levels(
                    {
                        "none": (
                            "It cannot change anything.",
                            "A read-only reporting agent.",
                        ),
                        "low": (
                            "Small changes that are easy to spot and revert.",
                            "Wrong tags on a few support tickets.",
                        ),
                        "medium": (
                            "Changes that take real effort to find and fix.",
                            "Edits to customer records in a CRM.",
                        ),
                        "high": (
                            "Changes to financial or business-critical records.",
                            "Altered invoice amounts or vendor bank details.",
                        ),
                        "critical": (
                            "Changes that cannot be undone, or falsify records system-wide.",
                            "Committed contracts or payments that cannot be recalled.",
                        ),
                    }
                ),
            ),
            Parameter(
                "availability_impact",
                IMPACT,
                "Availability impact",
                "If the agent is misused, how badly could it disrupt systems or services?",
                _impact_levels(
                    {
                        "none": (
                            "No effect on any service.",
                            "It only reads data.",
                        ),
                        "low": (
                            "Minor slowdowns, or a short outage of a minor service.",
                            "Flooding a test queue.",
                        ),
                        "medium": (
                            "A partial outage of a business service.",
                            "Locking some users out of the invoice portal.",
                        ),
                        "high": (
                            "A major service goes down for many users.",
                            "Using up the company-wide ERP API quota.",
                        ),
                        "critical": (
                            "Complete, prolonged loss of critical systems.",
                            "Rolling back or deleting production infrastructure.",
                        ),
                    }
                ),
            ),
            Parameter(
                "safety_impact",
                IMPACT,
                "Safety impact",
                "If the agent is misused, could it cause physical harm or put people in danger?",
                _impact_levels(
                    {
                        "none": (
                            "No path to physical harm.",
                            "Back-office paperwork.",
                        ),
                        "low": (
                            "Harm is unlikely and would be minor.",
                            "Misconfiguring an office thermostat.",
                        ),
                        "medium": (
                            "Injury or harm to health is possible.",
                            "Wrong reminders in a medication app.",
                        ),
                        "high": (
                            "Serious injury is possible.",
                            "Controlling warehouse robots or laboratory equipment.",
                        ),
                        "critical": (
                            "Loss of life is possible.",
                            "Controlling medical devices, vehicles or industrial safety systems.",
                        ),
                    }
                ),
            ),
        ),
    ),
)

PARAMETERS: dict[str, Parameter] = {
    parameter.key: parameter for category in CATEGORIES for parameter in category.parameters
}
PARAMETER_KEYS: tuple[str, ...] = tuple(PARAMETERS)
CATEGORY_BY_KEY: dict[str, Category] = {category.key: category for category in CATEGORIES}

# SPEC §2.2: the product of the most severe base-security values normalises to 1.
_BASE_MAX = Decimal("0.85") * Decimal("0.77") * Decimal("0.85") * Decimal("0.85") * Decimal("1.5")

# SPEC §2.2 "Tier meaning"; ``governance`` says what the tier preset adds (SPEC §3.2 step 7).
TIER_MEANINGS: dict[int, dict[str, str]] = {
    1: {
        "label": "Low",
        "meaning": "Read-only work on public data.",
        "governance": "No extra approvals from the tier preset.",
    },
    2: {
        "label": "Medium",
        "meaning": "Internal data, non-critical actions.",
        "governance": "No extra approvals from the tier preset.",
    },
    3: {
        "label": "High",
        "meaning": "Personal or financial data, critical actions.",
        "governance": "Sensitive actions wait for a human approval.",
    },
    4: {
        "label": "Critical",
        "meaning": "System administration, destructive actions.",
        "governance": "Every action that is not read-only waits for approval by two people.",
    },
}


class InvalidAnswers(ValueError):
    """Raised by ``validate_answers``; ``fields`` maps each bad parameter to its reasons."""

    def __init__(self, fields: dict[str, list[str]]):
        super().__init__("invalid answers: " + ", ".join(sorted(fields)))
        self.fields = fields


def allowed_options_text(parameter: Parameter) -> str:
    return ", ".join(parameter.option_keys)


def answer_errors(answers: Any, *, partial: bool = False) -> dict[str, list[str]]:
    """Every problem with ``answers``, keyed by parameter (``{}`` when all is well).

    With ``partial=True`` missing parameters are not errors (a wizard step in progress).
    A non-mapping gets the key ``""`` (the caller names the field holding it).
    """
    if not isinstance(answers, Mapping):
        return {"": [f"Expected an object with the {len(PARAMETERS)} answers."]}
    errors: dict[str, list[str]] = {}
    for key in answers:
        if key not in PARAMETERS:
            errors[str(key)] = [
                f"Unknown parameter; the parameters are {', '.join(PARAMETER_KEYS)}."
            ]
    for key, parameter in PARAMETERS.items():
        if key not in answers:
            if not partial:
                errors[key] = [f"Missing; choose one of {allowed_options_text(parameter)}."]
            continue
        value = answers[key]
        if not isinstance(value, str) or value not in parameter.option_keys:
            errors[key] = [
                f"{value!r} is not an option; choose one of {allowed_options_text(parameter)}."
            ]
    return errors


def validate_answers(answers: Any) -> dict[str, str]:
    """The 14 answers in parameter order, or ``InvalidAnswers`` naming every bad field."""
    errors = answer_errors(answers)
    if errors:
        raise InvalidAnswers(errors)
    return {key: answers[key] for key in PARAMETER_KEYS}


def _values(answers: Mapping[str, str], category: str) -> list[Decimal]:
    return [
        parameter.option(answers[parameter.key]).value
        for parameter in CATEGORY_BY_KEY[category].parameters
    ]


def base_security(answers: Mapping[str, str]) -> Decimal:
    """SPEC §2.2: ``(AV·AC·PR·UI·S) / (0.85·0.77·0.85·0.85·1.5)``, unrounded, in [0, 1]."""
    product = Decimal(1)
    for value in _values(answers, BASE_SECURITY):
        product *= value
    with localcontext() as context:
        context.prec = 34
        return product / _BASE_MAX


def _mean(values: list[Decimal]) -> Decimal:
    # Exact: the values have at most two decimals and there are 4 or 5 of them.
    return sum(values, Decimal(0)) / len(values)


def ai_specific(answers: Mapping[str, str]) -> Decimal:
    """SPEC §2.2: mean of the five AI-specific values."""
    return _mean(_values(answers, AI_SPECIFIC))


def impact(answers: Mapping[str, str]) -> Decimal:
    """SPEC §2.2: mean of the four impact values."""
    return _mean(_values(answers, IMPACT))


def category_score(answers: Mapping[str, str], category: str) -> Decimal:
    return {BASE_SECURITY: base_security, AI_SPECIFIC: ai_specific, IMPACT: impact}[category](
        answers
    )


def risk_tier(risk_percent: Decimal) -> int:
    """SPEC §2.2: 1 if < 25, 2 if < 50, 3 if < 75, else 4."""
    if risk_percent < 25:
        return 1
    if risk_percent < 50:
        return 2
    if risk_percent < 75:
        return 3
    return 4


def round_subscore(value: Decimal) -> Decimal:
    return value.quantize(_SUBSCORE, rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class RiskProfile:
    """The numbers of SPEC §2.2 for one set of answers."""

    base_security: Decimal  # 4 decimals
    ai_specific: Decimal  # 4 decimals
    impact: Decimal  # 4 decimals
    risk_percent: Decimal  # 2 decimals, 0–100
    risk_tier: int  # 1–4
    risk_profile_score: Decimal  # 2 decimals, 0–100

    @property
    def tier_label(self) -> str:
        return TIER_MEANINGS[self.risk_tier]["label"]

    def initial_trust_score(self) -> Decimal:
        return initial_trust_score(self.risk_profile_score)


def score(answers: Mapping[str, Any]) -> RiskProfile:
    """SPEC §2.2 for a complete, valid set of answers (``InvalidAnswers`` otherwise)."""
    answers = validate_answers(answers)
    base = base_security(answers)
    ai = ai_specific(answers)
    imp = impact(answers)
    weights = {category.key: category.weight for category in CATEGORIES}
    with localcontext() as context:
        context.prec = 34
        risk = weights[BASE_SECURITY] * base + weights[AI_SPECIFIC] * ai + weights[IMPACT] * imp
        risk_percent = (_HUNDRED * risk).quantize(_CENT, rounding=ROUND_HALF_UP)
    return RiskProfile(
        base_security=round_subscore(base),
        ai_specific=round_subscore(ai),
        impact=round_subscore(imp),
        risk_percent=risk_percent,
        risk_tier=risk_tier(risk_percent),
        risk_profile_score=_HUNDRED - risk_percent,
    )


def initial_trust_score(risk_profile_score: Decimal) -> Decimal:
    """SPEC §5.1 for a new agent: behavioural = alignment = 100."""
    return trust_scoring.trust_score(risk_profile_score, _HUNDRED, _HUNDRED)


def changed_answers(
    previous: Mapping[str, str] | None, current: Mapping[str, str]
) -> list[dict[str, str]]:
    """The parameters whose answer differs, in parameter order, with labels for display."""
    if previous is None:
        return []
    changes = []
    for key, parameter in PARAMETERS.items():
        before, after = previous.get(key), current.get(key)
        if before == after:
            continue
        changes.append(
            {
                "key": key,
                "title": parameter.title,
                "category": CATEGORY_BY_KEY[parameter.category].title,
                "from": before or "",
                "to": after or "",
                "from_label": option_label(parameter, before),
                "to_label": option_label(parameter, after),
            }
        )
    return changes


def option_label(parameter: Parameter, key: str | None) -> str:
    if key is None:
        return "–"
    try:
        return parameter.option(key).label
    except KeyError:
        return key
