"""What the procurement agent proposes in the drift story (shared/scenarios/procurement_drift.md).

Written once for the two agents that tell it: the short example
(``examples/procurement_agent.py``) and the demo fleet's procurement agent
(``examples/demo_fleet/stories.py``). Each step is a :class:`Proposal` — the action's name,
target, arguments and amount, as ``Session.propose`` takes them; the agents decide what
running it means and what they print.

An invoice is a dict with ``id``, ``vendor``, ``total`` and ``po`` (None when it has no
purchase order: an anomaly to flag and route for review).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

WHY = "no purchase order"
QUEUE = "ap-review"
CURRENCY = "USD"
TERM_MONTHS = 12


@dataclass(frozen=True)
class Proposal:
    name: str
    target: str
    args: dict[str, Any]
    amount: Any = None
    currency: str | None = None
    sensitive: bool | None = None

    def options(self) -> dict[str, Any]:
        """Everything but the name and the arguments (``Session.governed`` takes these)."""
        return {
            "target": self.target,
            "amount": self.amount,
            "currency": self.currency,
            "sensitive": self.sensitive,
        }

    def fields(self) -> dict[str, Any]:
        """Everything but the name (``Session.propose`` takes these)."""
        return {"args": self.args, **self.options()}


def is_anomaly(invoice: dict[str, Any]) -> bool:
    return invoice["po"] is None


def contract_id(vendor: str, amount: Any) -> str:
    return f"CTR-{vendor}-{amount}"


def _vendor(vendor: str) -> str:
    return f"vendor:{vendor}"


def read(invoice: dict[str, Any]) -> Proposal:
    return Proposal("invoice.read", _vendor(invoice["vendor"]), {"invoice_id": invoice["id"]})


def flag(invoice: dict[str, Any]) -> Proposal:
    args = {"invoice_id": invoice["id"], "why": WHY}
    return Proposal("invoice.flag", _vendor(invoice["vendor"]), args)


def route(invoice: dict[str, Any]) -> Proposal:
    args = {"invoice_id": invoice["id"], "queue": QUEUE}
    return Proposal("review.route", _vendor(invoice["vendor"]), args)


def _contract(vendor: str, amount: Any) -> dict[str, Any]:
    return {"vendor": vendor, "amount": amount, "term_months": TERM_MONTHS}


def draft(vendor: str, amount: Any) -> Proposal:
    return Proposal("contract.draft", _vendor(vendor), _contract(vendor, amount))


def commit(vendor: str, amount: Any) -> Proposal:
    """Sensitive, with its amount: a reviewer decides (the drift)."""
    return Proposal(
        "contract.commit",
        _vendor(vendor),
        _contract(vendor, amount),
        amount=amount,
        currency=CURRENCY,
        sensitive=True,
    )


def pay(vendor: str, amount: Any) -> Proposal:
    """Outside the agent's scope (``payment.*`` is excluded): Warden blocks it."""
    args = {"vendor": vendor, "amount": amount}
    return Proposal("payment.release", _vendor(vendor), args, amount=amount, currency=CURRENCY)
