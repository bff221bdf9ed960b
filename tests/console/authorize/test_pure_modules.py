"""The pure parts of the pipeline: verdict precedence (SPEC §3.1), glob patterns (§3.2),
and that verdicts, patterns, detectors and rego import no Django."""

from __future__ import annotations

import re
import subprocess
import sys
from fnmatch import fnmatchcase

from hypothesis import given
from hypothesis import strategies as st

from console.authorize.patterns import compile_regex, is_literal, pattern_error, sql_regex
from console.authorize.verdicts import Finding, Verdict, combine


def test_pure_modules_import_no_django():
    # Import them without the ``console`` package's __init__ (which starts Celery), so the
    # check covers these modules' own imports.
    code = (
        "import sys, types; "
        "pkg = types.ModuleType('console'); pkg.__path__ = ['console']; sys.modules['console'] = pkg; "
        "import console.authorize.verdicts, console.authorize.patterns, "
        "console.authorize.detectors, console.authorize.rego; "
        "sys.exit(any(m == 'django' or m.startswith('django.') for m in sys.modules))"
    )
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


def f(verdict, source="x", mode="enforce", severity=None, layer="rules", **kw):
    return Finding(
        layer, source, Verdict(verdict), f"{source} says {verdict}", mode, severity, **kw
    )


def test_precedence_is_halt_then_block_then_approval_then_allow():
    findings = [
        f("ALLOW", "a"),
        f("REQUIRE_APPROVAL", "b"),
        f("BLOCK", "c"),
        f("HALT", "d"),
        f("BLOCK", "e"),
    ]
    outcome = combine(findings)
    assert (outcome.verdict, outcome.source) == (Verdict.HALT, "d")
    assert outcome.violation == {"severity": "critical"}
    assert combine(findings[:3]).verdict is Verdict.BLOCK
    assert combine(findings[:2]).verdict is Verdict.REQUIRE_APPROVAL
    assert combine(findings[:1]).verdict is Verdict.ALLOW


def test_a_tie_goes_to_the_first_finding_in_pipeline_order():
    outcome = combine([f("BLOCK", "scope", layer="scope"), f("BLOCK", "rule:late")])
    assert outcome.source == "scope"


def test_shadow_findings_never_change_the_outcome_but_are_reported():
    outcome = combine([f("ALLOW", "a"), f("HALT", "rule:new", mode="shadow")])
    assert outcome.verdict is Verdict.ALLOW and outcome.violation is None
    assert outcome.shadow_verdicts == [
        {"source": "rule:new", "verdict": "HALT", "reason": "rule:new says HALT"}
    ]


def test_violations_take_the_deciding_severity_or_the_default():
    assert combine([f("BLOCK", severity="minor")]).violation == {"severity": "minor"}
    assert combine([f("BLOCK")]).violation == {"severity": "major"}
    assert combine([f("REQUIRE_APPROVAL", severity="major")]).violation is None


def test_an_allow_that_redacted_names_its_guardrail():
    outcome = combine([f("ALLOW", "budgets"), f("ALLOW", "guardrail:pii", transformed=True)])
    assert (outcome.source, outcome.reason) == ("guardrail:pii", "guardrail:pii says ALLOW")
    assert combine([f("ALLOW")]).source == "pipeline"


def test_verdicts_parse_any_case_and_refuse_unknown_ones():
    assert Verdict.parse("require_approval") is Verdict.REQUIRE_APPROVAL
    assert Verdict.parse(" Halt ") is Verdict.HALT
    for bad in ("maybe", "", 1, None):
        try:
            Verdict.parse(bad)
        except ValueError:
            continue
        raise AssertionError(f"{bad!r} parsed")


globs = st.text(alphabet="ab.*?[]!-:_", max_size=8).filter(lambda p: pattern_error(p) is None)
names = st.text(alphabet="ab.-:_[]!*", max_size=8)


@given(globs, names)
def test_the_sql_regex_of_a_glob_matches_exactly_what_fnmatch_matches(pattern, name):
    assert bool(compile_regex(pattern).fullmatch(name)) == fnmatchcase(name, pattern)


def test_sql_regex_examples():
    assert sql_regex("payment.*") == "^payment\\..*$"
    assert re.fullmatch(sql_regex("vendor:*"), "vendor:acme")
    assert not re.fullmatch(sql_regex("contract.commit"), "contract_commit")
    assert is_literal("contract.commit") and not is_literal("contract.*")
    assert pattern_error("a\\b") and pattern_error("") and pattern_error("x" * 201)
