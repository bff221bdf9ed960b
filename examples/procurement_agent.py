"""A procurement agent governed by Warden — a short run of the procurement drift story.

It reads invoices, flags an anomaly and routes it for review (all routine), then tries to
commit a vendor contract (sensitive: a reviewer must approve it in the console's queue)
and to release a payment (outside its scope: Warden blocks it). It prints what happens.

    python examples/procurement_agent.py --url http://127.0.0.1:8000 --key wdn_live_…

The agent must be registered and assessed, with the scenario's scope (allowed
``invoice.read``, ``invoice.flag``, ``review.route``, ``contract.draft``,
``contract.commit``; targets ``vendor:*``; excluded ``payment.*``) — see
``shared/scenarios/procurement_drift.md``.
"""

from __future__ import annotations

import argparse
import sys
from decimal import Decimal
from pathlib import Path

# Run from a checkout without installing anything.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

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
INVOICES = {
    "INV-1001": {"vendor": "acme", "total": Decimal("12400.00"), "po": "PO-77"},
    "INV-1002": {"vendor": "globex", "total": Decimal("98150.00"), "po": None},
    "INV-1003": {"vendor": "initech", "total": Decimal("3300.00"), "po": "PO-81"},
}


def note(comment: str | None) -> str:
    return f" — {comment}" if comment else ""


def say(step: str, text: str) -> None:
    print(f"{step:<16} {text}", flush=True)


def run(url: str, key: str, approval_timeout: float, workflow_id: str | None) -> int:
    with (
        Warden(url, key) as warden,
        warden.session(
            goal="Review this week's invoices, flag anomalies, route them for review",
            workflow_id=workflow_id,
        ) as s,
    ):
        say("session", f"{s.session_id} opened")

        @s.governed(
            "invoice.read", target=lambda invoice_id: f"vendor:{INVOICES[invoice_id]['vendor']}"
        )
        def read_invoice(invoice_id: str) -> dict:
            return {"id": invoice_id, **INVOICES[invoice_id]}

        @s.governed(
            "invoice.flag",
            target=lambda invoice_id, why: f"vendor:{INVOICES[invoice_id]['vendor']}",
        )
        def flag_invoice(invoice_id: str, why: str) -> str:
            return f"{invoice_id} flagged: {why}"

        @s.governed(
            "review.route",
            target=lambda invoice_id, queue: f"vendor:{INVOICES[invoice_id]['vendor']}",
        )
        def route_for_review(invoice_id: str, queue: str) -> str:
            return f"{invoice_id} → {queue}"

        @s.governed(
            "payment.release",
            target=lambda vendor, amount: f"vendor:{vendor}",
            amount=lambda vendor, amount: amount,
            currency="USD",
        )
        def release_payment(vendor: str, amount: Decimal) -> str:
            return f"paid {vendor} USD {amount}"

        # 1. Routine work: Warden allows it and records each result.
        anomalies = []
        for invoice_id in INVOICES:
            invoice = read_invoice(invoice_id)
            say("invoice.read", f"{invoice_id} {invoice['vendor']} USD {invoice['total']}")
            if invoice["po"] is None:
                anomalies.append(invoice_id)
        for invoice_id in anomalies:
            say("invoice.flag", flag_invoice(invoice_id, "no purchase order"))
            say("review.route", route_for_review(invoice_id, "ap-review"))

        # 2. The drift: committing a contract. Done step by step to show the approval wait.
        vendor, amount = "acme", Decimal("95000.00")
        decision = s.propose(
            "contract.commit",
            target=f"vendor:{vendor}",
            args={"vendor": vendor, "amount": amount, "term_months": 12},
            amount=amount,
            currency="USD",
            sensitive=True,
        )
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
            contract = f"CTR-{vendor}-{amount}"  # the ERP call would go here
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
            release_payment(vendor, amount)
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
