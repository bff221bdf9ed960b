"""Rego in-process (SPEC §3.2 step 5): compile problems with line numbers, one compile per
policy version, parallel evaluations, and errors that are verdicts."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from console.authorize import rego
from console.authorize.verdicts import Verdict

LIMIT = """package warden.limit

import rego.v1

default verdict := "allow"

verdict := "block" if input.action.amount > 1000

reason := sprintf("amount %v over 1000", [input.action.amount]) if verdict == "block"

severity := "minor" if verdict == "block"
"""


@pytest.fixture(autouse=True)
def _fresh_cache():
    rego.clear_cache()
    yield
    rego.clear_cache()


def test_compile_problems_carry_line_and_column():
    source = 'package warden.x\n\ndefault verdict := "allow"\n\nverdict := 1 +* 2\n'
    problems = rego.check_module(source)
    assert problems and problems[0].line == 5
    assert problems[0].as_json()["message"] == "Invalid arithmetic operator"
    unclosed = rego.check_module('package warden.x\nverdict := {"a": 1\n')
    assert unclosed[0].line == 2


def test_a_module_needs_a_package_and_a_verdict():
    assert [p.message for p in rego.check_module('verdict := "allow"\n')] == [
        "the module must start with a package declaration"
    ]
    assert [p.message for p in rego.check_module("package a\n\nx := 1\n")] == [
        "the module must define `verdict`"
    ]
    assert rego.check_module("   ")[0].message == "the module is empty"


def test_evaluation_reads_verdict_reason_and_severity():
    compiled = rego.compiled("p", 1, LIMIT)
    result = rego.evaluate(compiled, {"action": {"amount": 1500}})
    assert (result.verdict, result.reason, result.severity) == (
        Verdict.BLOCK,
        "amount 1500 over 1000",
        "minor",
    )
    assert rego.evaluate(compiled, {"action": {"amount": 10}}).verdict is Verdict.ALLOW


@pytest.mark.parametrize(
    ("source", "error"),
    [
        ('package w\nverdict := "maybe"\n', "unknown verdict 'maybe'"),
        ("package w\nverdict := 3\n", "a verdict must be a string"),
        (
            'package w\nimport rego.v1\nverdict := "allow" if input.x == 99\n',
            "`verdict` is undefined",
        ),
        (
            'package w\nimport rego.v1\nverdict := "allow"\nverdict := "block" if input.x == 1\n',
            "evaluation error",
        ),
        ("package w\nverdict := nope(1)\n", "Function not found: nope"),
        ('package w\nverdict := "allow"\nseverity := "huge"\n', "unknown severity"),
    ],
)
def test_bad_results_are_errors_not_verdicts(source, error):
    result = rego.evaluate(rego.compiled("p", 1, source), {"x": 1})
    assert result.verdict is None and error in result.error


def test_each_policy_version_is_compiled_once(monkeypatch):
    calls = []
    real = rego.compile_module
    monkeypatch.setattr(rego, "compile_module", lambda source: calls.append(1) or real(source))
    for _ in range(5):
        rego.compiled("p", 1, LIMIT)
    rego.compiled("p", 2, LIMIT)
    assert len(calls) == 2 and rego.cache_size() == 2


def test_threads_share_a_compiled_module_and_get_their_own_answers():
    compiled = rego.compiled("p", 1, LIMIT)
    wrong = []

    def work(offset: int) -> None:
        for amount in range(offset, offset + 2000, 37):
            expected = Verdict.BLOCK if amount > 1000 else Verdict.ALLOW
            if rego.evaluate(compiled, {"action": {"amount": amount}}).verdict is not expected:
                wrong.append(amount)

    threads = [threading.Thread(target=work, args=(n * 11,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert wrong == []


def test_compile_errors_raise_with_every_problem():
    with pytest.raises(rego.PolicyCompileError) as raised:
        rego.compile_module('package w\ndefault verdict := "allow"\nverdict := "x" if {\n')
    assert raised.value.problems and "line" in str(raised.value)


# Run in a fresh interpreter: greenlet (which Celery imports in every Warden process) loads
# libstdc++ before regopy does, as in the server; then 4,000 evaluations. The resident set
# grew about 3 KB per evaluation (12 MB here) before rego.py shared the C++ allocator.
_EVALUATIONS_IN_A_FRESH_PROCESS = """
import greenlet  # noqa: F401 - loads libstdc++ first, as Celery's import does
from console.authorize import rego

def resident() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * 4096

policy = rego.compile_module(%r)
document = {"action": {"name": "invoice.read", "amount": 125.0, "target": "vendor:acme",
                       "args": {"invoice": "INV-1", "lines": 14}}, "agent": {"tier": 2}}
for _ in range(300):
    rego.evaluate(policy, document)
before = resident()
for _ in range(4000):
    assert rego.evaluate(policy, document).verdict is not None
print(rego.CXX_ALLOCATOR_SHARED, resident() - before)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/statm")
def test_evaluations_do_not_grow_the_process_memory():
    root = Path(__file__).resolve().parents[3]
    result = subprocess.run(
        [sys.executable, "-c", _EVALUATIONS_IN_A_FRESH_PROCESS % LIMIT],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    shared, grown = result.stdout.split()
    assert int(grown) < 2 * 2**20, f"{int(grown) / 4000:.0f} bytes kept per evaluation"
    assert shared == "True"


# --- the input document ------------------------------------------------------------------
ECHO = """package warden.echo

import rego.v1

default verdict := "allow"

seen := input
"""

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False, width=32)
    | st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00")),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.text(
                st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=8
            ),
            children,
            max_size=4,
        )
    ),
    max_leaves=20,
)


def _seen(set_input) -> str:
    """The engine's raw answer of ECHO (the input as it saw it), with the input set by
    ``set_input(interpreter)``."""
    from regopy import Interpreter
    from regopy.rego_shared import rego_bundle_query, rego_free_output, rego_output_string

    interpreter = Interpreter()
    set_input(interpreter)
    output = rego_bundle_query(interpreter._impl, rego.compiled("echo", 1, ECHO).bundle._impl)
    try:
        return rego_output_string(output)
    finally:
        rego_free_output(output)


@given(
    document=st.dictionaries(
        st.text(
            st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=8
        ),
        json_values,
        max_size=5,
    )
)
@settings(max_examples=150, deadline=None)
def test_the_engine_is_given_the_same_input_as_regopys_own_conversion(document):
    # rego._push makes regopy's C calls directly; the policy must see the same document.
    from regopy import Input

    ours = _seen(lambda interpreter: rego._set_input(interpreter, document))
    assert ours == _seen(lambda interpreter: interpreter.set_input(Input(document)))
    assert '"seen"' in ours


@pytest.mark.parametrize(
    "document",
    [
        {"action": {"target": "vendor:acme\x00; other"}},
        {"action": {"args": {"to\x00": "x"}}},
        {"action": {"args": [1, "a\x00"]}},
    ],
)
def test_a_nul_character_in_the_input_is_an_evaluation_error_not_a_shorter_string(document):
    # The engine reads C strings: "vendor:acme\0; other" would look like "vendor:acme" to
    # an allow-list policy. It is an error, which follows the agent's fail_mode.
    allow_list = rego.compile_module(
        'package warden.allow\n\nimport rego.v1\n\ndefault verdict := "block"\n\n'
        'verdict := "allow" if input.action.target == "vendor:acme"\n'
    )
    result = rego.evaluate(allow_list, document)
    assert result.verdict is None and "NUL" in result.error


def test_an_integer_beyond_64_bits_is_an_evaluation_error():
    result = rego.evaluate(rego.compile_module(ECHO), {"action": {"amount": 2**64}})
    assert result.verdict is None and "64 bits" in result.error
