"""SPEC §2.1–§2.2 arithmetic as pure functions, against the shared vectors and properties."""

import json
import subprocess
import sys
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from assessments import scoring
from tests.assessments.vectors import COPY, VECTORS, shared_path

# SPEC §2.1, restated independently of the module's table.
SPEC_VALUES = {
    "attack_vector": {"network": "0.85", "adjacent": "0.62", "local": "0.55", "physical": "0.20"},
    "attack_complexity": {"low": "0.77", "high": "0.44"},
    "privileges_required": {"none": "0.85", "low": "0.62", "high": "0.27"},
    "user_interaction": {"none": "0.85", "required": "0.62"},
    "scope": {"unchanged": "1.0", "changed": "1.5"},
    **{
        key: {"very_high": "1.0", "high": "0.8", "medium": "0.6", "low": "0.4", "very_low": "0.2"}
        for key in (
            "model_robustness",
            "data_sensitivity",
            "ethical_impact",
            "decision_criticality",
            "adaptability",
        )
    },
    **{
        key: {"none": "0", "low": "0.22", "medium": "0.56", "high": "0.85", "critical": "1.0"}
        for key in (
            "confidentiality_impact",
            "integrity_impact",
            "availability_impact",
            "safety_impact",
        )
    },
}
CATEGORY_OF = {
    **dict.fromkeys(list(SPEC_VALUES)[:5], "base_security"),
    **dict.fromkeys(list(SPEC_VALUES)[5:10], "ai_specific"),
    **dict.fromkeys(list(SPEC_VALUES)[10:], "impact"),
}


def two(value) -> Decimal:
    return Decimal(str(value)).quantize(Decimal("0.01"))


# --- the parameter table --------------------------------------------------------------
def test_table_has_the_14_parameters_and_option_values_of_the_spec():
    assert list(scoring.PARAMETERS) == list(SPEC_VALUES)
    for key, options in SPEC_VALUES.items():
        parameter = scoring.PARAMETERS[key]
        assert parameter.category == CATEGORY_OF[key]
        assert {o.key: o.value for o in parameter.options} == {
            k: Decimal(v) for k, v in options.items()
        }


def test_category_weights_are_25_45_30():
    weights = {c.key: c.weight for c in scoring.CATEGORIES}
    assert weights == {
        "base_security": Decimal("0.25"),
        "ai_specific": Decimal("0.45"),
        "impact": Decimal("0.30"),
    }


def test_every_option_has_a_plain_explanation_and_an_example():
    for parameter in scoring.PARAMETERS.values():
        assert parameter.question.endswith("?") or "?" in parameter.question
        for option in parameter.options:
            assert option.label and option.explanation.strip() and option.example.strip()
            assert option.explanation != option.example
        explanations = [o.explanation for o in parameter.options]
        assert len(set(explanations)) == len(explanations), parameter.key


def test_options_are_listed_from_least_to_most_severe():
    for parameter in scoring.PARAMETERS.values():
        values = [o.value for o in parameter.options]
        assert values == sorted(values), parameter.key


# --- the shared vectors ---------------------------------------------------------------
@pytest.mark.parametrize("vector", VECTORS, ids=[v["name"] for v in VECTORS])
def test_vector_is_reproduced(vector):
    profile = scoring.score(vector["answers"])
    expected = vector["expected"]
    # Sub-scores are given to 4 decimals in the vector file; match them exactly.
    for key in ("base_security", "ai_specific", "impact"):
        assert getattr(profile, key) == Decimal(str(expected[key])).quantize(Decimal("0.0001"))
    assert profile.risk_percent == two(expected["risk_percent"])
    assert profile.risk_tier == expected["risk_tier"]
    assert profile.risk_profile_score == two(expected["risk_profile_score"])
    assert profile.initial_trust_score() == two(expected["initial_trust_score"])


def test_the_procurement_agent_is_65_27_percent_tier_3():
    profile = scoring.score(next(v for v in VECTORS if v["name"] == "procurement_agent")["answers"])
    assert (profile.risk_percent, profile.risk_tier) == (Decimal("65.27"), 3)
    assert profile.tier_label == "High"


def test_vendored_vector_copy_matches_the_shared_file():
    path = shared_path()
    if path is None:
        pytest.skip("no ../shared directory next to this checkout")
    assert json.loads(COPY.read_text()) == json.loads(path.read_text())


# --- rounding -------------------------------------------------------------------------
def test_exact_half_cent_rounds_half_up():
    # base 1.0, ai 0.52, impact 0.7425 → 100·risk = 70.675 exactly (module docstring).
    answers = {
        "attack_vector": "network",
        "attack_complexity": "low",
        "privileges_required": "none",
        "user_interaction": "none",
        "scope": "changed",
        "model_robustness": "medium",
        "data_sensitivity": "very_low",
        "ethical_impact": "very_high",
        "decision_criticality": "medium",
        "adaptability": "very_low",
        "confidentiality_impact": "medium",
        "integrity_impact": "critical",
        "availability_impact": "medium",
        "safety_impact": "high",
    }
    assert scoring.base_security(answers) == 1
    assert scoring.ai_specific(answers) == Decimal("0.52")
    assert scoring.impact(answers) == Decimal("0.7425")
    profile = scoring.score(answers)
    assert profile.risk_percent == Decimal("70.68")
    assert profile.risk_profile_score == Decimal("29.32")
    # The float path lands on the other side of the tie: why the module uses Decimal.
    assert round(100 * (0.25 * 1.0 + 0.45 * 0.52 + 0.30 * 0.7425), 2) == 70.67


@pytest.mark.parametrize(
    ("percent", "tier"),
    [
        ("0", 1),
        ("24.99", 1),
        ("25", 2),
        ("49.99", 2),
        ("50", 3),
        ("74.99", 3),
        ("75", 4),
        ("100", 4),
    ],
)
def test_risk_tier_boundaries(percent, tier):
    assert scoring.risk_tier(Decimal(percent)) == tier


# --- validation -----------------------------------------------------------------------
def test_validation_names_every_bad_field_at_once():
    answers = dict(VECTORS[0]["answers"])
    del answers["scope"]
    answers["attack_vector"] = "internet"
    answers["safety_impact"] = 3
    answers["colour"] = "blue"
    with pytest.raises(scoring.InvalidAnswers) as caught:
        scoring.validate_answers(answers)
    fields = caught.value.fields
    assert set(fields) == {"scope", "attack_vector", "safety_impact", "colour"}
    assert "unchanged, changed" in fields["scope"][0]
    assert "'internet' is not an option" in fields["attack_vector"][0]
    assert "physical, local, adjacent, network" in fields["attack_vector"][0]
    assert "none, low, medium, high, critical" in fields["safety_impact"][0]
    assert "Unknown parameter" in fields["colour"][0]


def test_validation_of_a_non_object():
    assert scoring.answer_errors(["network"]) == {"": ["Expected an object with the 14 answers."]}
    with pytest.raises(scoring.InvalidAnswers):
        scoring.score("network")


def test_partial_validation_ignores_missing_answers_only():
    assert scoring.answer_errors({"scope": "changed"}, partial=True) == {}
    assert set(scoring.answer_errors({"scope": "wide"}, partial=True)) == {"scope"}


def test_changed_answers_lists_differences_in_parameter_order():
    before = dict(VECTORS[0]["answers"])
    after = dict(before, safety_impact="low", attack_vector="local")
    changes = scoring.changed_answers(before, after)
    assert [(c["key"], c["from"], c["to"]) for c in changes] == [
        ("attack_vector", "network", "local"),
        ("safety_impact", "none", "low"),
    ]
    assert changes[1]["from_label"] == "None" and changes[1]["to_label"] == "Low"
    assert scoring.changed_answers(None, after) == []


def test_module_has_no_django_import():
    code = (
        "import sys, assessments.scoring; "
        "sys.exit(any(m == 'django' or m.startswith('django.') for m in sys.modules))"
    )
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


# --- properties (hypothesis) ----------------------------------------------------------
answer_sets = st.fixed_dictionaries(
    {key: st.sampled_from(p.option_keys) for key, p in scoring.PARAMETERS.items()}
)


@given(answer_sets)
def test_results_are_always_within_bounds(answers):
    profile = scoring.score(answers)
    for value in (profile.base_security, profile.ai_specific, profile.impact):
        assert Decimal(0) <= value <= Decimal(1)
        assert value.as_tuple().exponent == -4
    assert Decimal(0) <= profile.risk_percent <= Decimal(100)
    assert profile.risk_percent.as_tuple().exponent == -2
    assert profile.risk_profile_score == Decimal(100) - profile.risk_percent
    assert profile.risk_tier == scoring.risk_tier(profile.risk_percent)
    assert Decimal(0) <= profile.initial_trust_score() <= Decimal(100)


@given(answer_sets, st.sampled_from(scoring.PARAMETER_KEYS), st.data())
def test_a_more_severe_answer_never_lowers_the_risk(answers, key, data):
    options = scoring.PARAMETERS[key].option_keys
    current = options.index(answers[key])
    worse = data.draw(st.sampled_from(options[current:]), label="more severe option")
    before = scoring.score(answers)
    after = scoring.score(dict(answers, **{key: worse}))
    assert after.risk_percent >= before.risk_percent
    assert after.risk_tier >= before.risk_tier
    category = scoring.PARAMETERS[key].category
    assert getattr(after, category) >= getattr(before, category)


@given(answer_sets)
def test_the_same_answers_always_give_the_same_numbers(answers):
    first = scoring.score(answers)
    reordered = dict(reversed(list(answers.items())))
    assert scoring.score(reordered) == first
    assert scoring.score(dict(answers)) == first
