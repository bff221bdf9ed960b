"""How Python values cross the wire: decimal-string amounts, JSON args, signatures."""

from __future__ import annotations

import inspect
import subprocess
import sys
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from warden_client import WardenProtocolError
from warden_client._encoding import call_arguments, decimal_string, rebuild_call, to_json

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("amount", "wire"),
    [
        (Decimal("250000.00"), "250000.00"),
        (Decimal("1E+3"), "1000"),
        (95000, "95000"),
        (0.1, "0.1"),
        (1e-7, "0.0000001"),
        (" 12.50 ", "12.50"),
        ("-3", "-3"),
    ],
)
def test_amounts_travel_as_plain_decimal_strings(amount, wire):
    assert decimal_string(amount) == wire


@pytest.mark.parametrize("amount", [True, float("nan"), float("inf"), "ten", Decimal("NaN"), [1]])
def test_amounts_that_are_not_numbers_are_refused(amount):
    with pytest.raises((TypeError, ValueError)):
        decimal_string(amount)


def test_args_become_plain_json():
    when = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    ident = uuid.UUID(int=7)
    assert to_json({"at": when, "id": ident, "n": Decimal("1.50"), "t": (1, 2)}) == {
        "at": "2024-05-01T12:00:00+00:00",
        "id": str(ident),
        "n": "1.50",
        "t": [1, 2],
    }
    with pytest.raises(TypeError, match="not JSON serialisable"):
        to_json({"f": object()})
    with pytest.raises(ValueError):
        to_json({"x": float("nan")})


def test_call_arguments_and_rebuild_call_are_inverse():
    def f(a, /, b, *rest, c=3, **more):
        return a, b, rest, c, more

    signature = inspect.signature(f)
    named = call_arguments(signature, (1, 2, 9, 8), {"d": 4})
    assert named == {"a": 1, "b": 2, "rest": [9, 8], "c": 3, "d": 4}
    args, kwargs = rebuild_call(signature, named)
    assert f(*args, **kwargs) == (1, 2, (9, 8), 3, {"d": 4})


def test_rebuild_call_refuses_what_cannot_be_applied_exactly():
    def f(a, b, /):
        return a, b

    signature = inspect.signature(f)
    with pytest.raises(WardenProtocolError, match="gap"):
        rebuild_call(signature, {"b": 1})  # b cannot be passed without a
    with pytest.raises(WardenProtocolError, match="unknown"):
        rebuild_call(signature, {"a": 1, "b": 2, "c": 3})
    with pytest.raises(WardenProtocolError, match="not a JSON object"):
        rebuild_call(signature, ["a"])

    def g(a, b=2):
        return a, b

    args, kwargs = rebuild_call(inspect.signature(g), {"a": 1})  # b left to its default
    assert g(*args, **kwargs) == (1, 2)


def test_the_client_imports_no_django():
    code = (
        "import warden_client, sys; "
        "assert not any(m.startswith('django') for m in sys.modules), "
        "sorted(m for m in sys.modules if m.startswith('django'))"
    )
    completed = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert completed.returncode == 0, completed.stderr


def test_the_package_is_typed():
    assert (ROOT / "warden_client" / "py.typed").is_file()
