"""The verdict charts' arithmetic (console.authorize.charts): pure, no Django."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys

from hypothesis import given
from hypothesis import strategies as st

from console.authorize.charts import VERDICT_ORDER, daily_columns, verdict_bars


def test_the_chart_module_imports_no_django():
    code = (
        "import sys, types; "
        "pkg = types.ModuleType('console'); pkg.__path__ = ['console']; sys.modules['console'] = pkg; "
        "import console.authorize.charts; "
        "sys.exit(any(m == 'django' or m.startswith('django.') for m in sys.modules))"
    )
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


def test_bars_are_relative_to_the_biggest_and_in_verdict_order():
    bars = verdict_bars({"BLOCK": 5, "ALLOW": 20, "HALT": 0})
    assert [b.verdict for b in bars] == list(VERDICT_ORDER)
    by = {b.verdict: b for b in bars}
    assert by["ALLOW"].width == 100 and by["BLOCK"].width == 25
    assert by["HALT"].width == 0 and by["REQUIRE_APPROVAL"].count == 0
    assert by["ALLOW"].percent == 80.0 and by["BLOCK"].percent == 20.0
    assert by["REQUIRE_APPROVAL"].slug == "require-approval"


def test_a_tiny_count_stays_visible_and_nothing_divides_by_zero():
    by = {b.verdict: b for b in verdict_bars({"ALLOW": 100000, "HALT": 1})}
    assert by["HALT"].width == 1.0
    assert all(b.width == 0 and b.percent == 0 for b in verdict_bars({}))


@given(st.dictionaries(st.sampled_from(VERDICT_ORDER), st.integers(0, 10**6)))
def test_bars_stay_within_the_chart(counts):
    bars = verdict_bars(counts)
    assert all(0 <= b.width <= 100 for b in bars)
    if any(counts.values()):
        assert max(b.width for b in bars) == 100
        assert abs(sum(b.percent for b in bars) - 100) < 0.5


def test_columns_cover_every_day_oldest_first_and_stack_from_the_bottom():
    today = dt.date(2025, 3, 14)
    rows = [
        (today, "ALLOW", 6),
        (today, "HALT", 2),
        (today - dt.timedelta(days=2), "BLOCK", 4),
        (today - dt.timedelta(days=30), "ALLOW", 99),  # outside the range
    ]
    columns = daily_columns(rows, last_day=today, days=7, width=70, height=80, gap=2)
    assert [c.day for c in columns] == [today - dt.timedelta(days=6 - i) for i in range(7)]
    last = columns[-1]
    assert last.total == 8 and [s.verdict for s in last.segments] == ["ALLOW", "HALT"]
    allow, halt = last.segments
    assert allow.height == 60 and allow.y == 20 and halt.height == 20 and halt.y == 0
    assert columns[-3].segments[0].height == 40 and columns[-3].segments[0].y == 40
    assert columns[0].segments == () and columns[0].x == 1 and columns[0].width == 8


@given(
    st.lists(
        st.tuples(st.integers(0, 13), st.sampled_from(VERDICT_ORDER), st.integers(0, 500)),
        max_size=40,
    )
)
def test_columns_never_overflow(raw):
    today = dt.date(2025, 1, 31)
    rows = [(today - dt.timedelta(days=d), v, n) for d, v, n in raw]
    columns = daily_columns(rows, last_day=today, days=14, height=80)
    busiest = max(c.total for c in columns)
    for column in columns:
        expected = 0 if busiest == 0 else 80 * column.total / busiest
        assert abs(sum(s.height for s in column.segments) - expected) < 0.1
        assert all(s.y >= -0.01 and s.y + s.height <= 80.01 for s in column.segments)
