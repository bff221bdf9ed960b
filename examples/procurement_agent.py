"""A procurement agent governed by Warden — a short run of the procurement drift story.

It reads invoices, flags an anomaly and routes it for review (all routine), then tries to
commit a vendor contract (sensitive: a reviewer must approve it in the console's queue)
and to release a payment (outside its scope: Warden blocks it). It prints what happens.

    python examples/procurement_agent.py --url http://127.0.0.1:8000 --key wdn_live_…

The agent must be registered and assessed, with the scenario's scope (allowed
``invoice.read``, ``invoice.flag``, ``review.route``, ``contract.draft``,
``contract.commit``; targets ``vendor:*``; excluded ``payment.*``) — see
``shared/scenarios/procurement_drift.md``. What it proposes at each step is written once,
for it and the demo fleet, in ``examples/procurement_story.py``.
"""

from __future__ import annotations

import argparse
import sys
from decimal import Decimal
from pathlib import Path

# Run from a checkout without installing anything.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from examples import procurement_story as story  # noqa: E402
from examples.procurement_story import Proposal  # noqa: E402
from warden_client import (  # noqa: E402
    ApprovalError,
    ApprovalUnavailable,
    Blocked,
    Halted,
    Verdict,
    Warden,
    WardenConnectionError,
    WardenHTTPError,
)

# A stand-in for the ERP the agent works on.
INVOICES = (
    {"id": "INV-1001", "vendor": "acme", "total": Decimal("12400.00"), "po": "PO-77"},
    {"id": "INV-1002", "vendor": "globex", "total": Decimal("98150.00"), "po": None},
    {"id": "INV-1003", "vendor": "initech", "total": Decimal("3300.00"), "po": "PO-81"},
)


def note(comment: str | None) -> str:
    return f" — {comment}" if comment else ""


def say(step: str, text: str) -> None:
    print(f"{step:<16} {text}", flush=True)


def governed(s, proposal: Proposal, work):
    """Call ``work(**proposal.args)`` as a ``@s.governed`` function: only when Warden allows
    it (after a reviewer's yes if asked), its result reported; Blocked / Halted otherwise."""
    return s.governed(proposal.name, **proposal.options())(work)(**proposal.args)


def run(url: str, key: str, approval_timeout: float, workflow_id: str | None) -> int:
    with (
        Warden(url, key) as warden,
        warden.session(
            goal="Review this week's invoices, flag anomalies, route them for review",
            workflow_id=workflow_id,
        ) as s,
    ):
        say("session", f"{s.session_id} opened")
        by_id = {invoice["id"]: invoice for invoice in INVOICES}

        # 1. Routine work: Warden allows it and records each result.
        anomalies = []
        for invoice in INVOICES:
            record = governed(s, story.read(invoice), lambda invoice_id: dict(by_id[invoice_id]))
            say("invoice.read", f"{record['id']} {record['vendor']} USD {record['total']}")
            if story.is_anomaly(record):
                anomalies.append(record)
        for invoice in anomalies:
            flagged = governed(
                s, story.flag(invoice), lambda invoice_id, why: f"{invoice_id} flagged: {why}"
            )
            say("invoice.flag", flagged)
            routed = governed(
                s, story.route(invoice), lambda invoice_id, queue: f"{invoice_id} → {queue}"
            )
            say("review.route", routed)

        # 2. The drift: committing a contract. Done step by step to show the approval wait.
        vendor, amount = "acme", Decimal("95000.00")
        commit = story.commit(vendor, amount)
        decision = s.propose(commit.name, **commit.fields())
        say("contract.commit", f"{decision.verdict.value} ({decision.source}: {decision.reason})")
        if decision.needs_approval and decision.approval_id:
            say("", f"waiting for a reviewer: approval {decision.approval_id}")
        try:
            if decision.verdict is Verdict.BLOCK:
                raise Blocked(decision)
            if decision.verdict is Verdict.HALT:
                raise Halted(decision)
            if decision.needs_approval:
                if decision.approval_id is None:
                    raise ApprovalUnavailable(decision)
                approval = s.wait_for_approval(decision.approval_id, timeout=approval_timeout)
                say("", f"approved by {approval.decided_by}{note(approval.comment)}")
            contract = story.contract_id(vendor, amount)  # the ERP call would go here
            s.report(decision.action_id, "ok", output={"contract": contract})
            say("", f"committed {contract}")
        except ApprovalError as refused:
            say("", f"not committed: approval {refused.status.value}{note(refused.comment)}")
        except ApprovalUnavailable:
            say("", "not committed: no approval request to wait on")
        except Blocked as blocked:
            say("", f"not committed: blocked by {blocked.source}")

        # 3. A payment the agent was never meant to make.
        try:
            governed(
                s, story.pay(vendor, amount), lambda vendor, amount: f"paid {vendor} USD {amount}"
            )
            say("payment.release", "released (Warden allowed it!)")
        except Blocked as blocked:
            say("payment.release", f"BLOCK ({blocked.source}: {blocked.reason})")
    say("session", "ended")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--url", required=True, help="Warden's base URL, e.g. http://127.0.0.1:8000"
    )
    parser.add_argument("--key", required=True, help="the agent's API key (wdn_live_…)")
    parser.add_argument(
        "--approval-timeout",
        type=float,
        default=600,
        help="seconds to wait for a reviewer before giving up (default 600)",
    )
    parser.add_argument("--workflow-id", default=None, help="correlates this run with others")
    options = parser.parse_args(argv)
    try:
        return run(options.url, options.key, options.approval_timeout, options.workflow_id)
    except Halted as halted:
        say("HALT", f"{halted.source}: {halted.reason} — the session is over")
        return 2
    except WardenHTTPError as error:
        say("refused", f"{error.status} {error.code}: {error.message}")
        return 1
    except WardenConnectionError as error:
        say("unreachable", str(error))
        return 1


if __name__ == "__main__":
    sys.exit(main())
