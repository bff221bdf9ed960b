"""The example agent (examples/procurement_agent.py) runs the short procurement story."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "examples" / "procurement_agent.py"


def run_example(fake, *extra):
    return subprocess.run(
        [sys.executable, str(SCRIPT), "--url", fake.url, "--key", fake.key, *extra],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_example_story_reads_flags_waits_for_approval_and_is_blocked_on_payment(fake):
    fake.verdicts["contract.commit"] = {
        "verdict": "REQUIRE_APPROVAL",
        "reason": "sensitive action at effective tier 3",
        "source": "tier",
    }
    fake.decide_after["contract.commit"] = (0.3, "approved", "budgeted")
    fake.verdicts["payment.release"] = {
        "verdict": "BLOCK",
        "reason": "payment.release is excluded",
        "source": "scope",
    }
    completed = run_example(fake, "--workflow-id", "demo-1")
    assert completed.returncode == 0, completed.stderr
    out = completed.stdout
    assert "REQUIRE_APPROVAL (tier: sensitive action at effective tier 3)" in out
    assert "approved by reviewer — budgeted" in out
    assert "committed CTR-acme-95000.00" in out
    assert "payment.release  BLOCK (scope: payment.release is excluded)" in out

    names = [r.body["name"] for r in fake.calls("POST", r"/api/v1/sessions/[^/]+/actions")]
    assert names == ["invoice.read"] * 3 + [
        "invoice.flag",
        "review.route",
        "contract.commit",
        "payment.release",
    ]
    (session,) = fake.sessions.values()
    assert session["status"] == "ended" and session["workflow_id"] == "demo-1"
    reported = [a for a in fake.actions.values() if a["result"] is not None]
    assert len(reported) == 6  # everything that ran; not the blocked payment


def test_the_example_says_why_it_could_not_start(fake):
    fake.agent_status = "paused"
    completed = run_example(fake)
    assert completed.returncode == 1
    assert "409 agent_paused" in completed.stdout


def test_the_example_stops_on_a_halt(fake):
    fake.verdicts["contract.commit"] = {
        "verdict": "HALT",
        "reason": "4th contract.commit within 24h",
        "source": "rule:contract-burst",
    }
    completed = run_example(fake)
    assert completed.returncode == 2
    assert "rule:contract-burst: 4th contract.commit within 24h" in completed.stdout
    assert fake.calls("POST", r"/api/v1/sessions/[^/]+/actions")[-1].body["name"] == (
        "contract.commit"
    )
