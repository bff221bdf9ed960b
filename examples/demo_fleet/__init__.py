"""The demo fleet: four simulated agents driving real traffic through Warden's HTTP API.

    python -m examples.demo_fleet --url http://127.0.0.1:8000 --keys var/demo-keys.json

``manage.py serve --demo`` (what ``make run`` starts) runs it next to the console. The
agents use only :mod:`warden_client` — no Django, no database — with the keys that
``manage.py bootstrap_demo`` wrote, each in its own thread, one printed line per step:

* **procurement** — the procurement drift story (``shared/scenarios/procurement_drift.md``),
  time compressed: the 72 story hours take ``--hour`` seconds each (default 1 s). The
  rules keep their real windows (72 h, 24 h) and count real proposals — no clock is
  tampered with: every commit needs a person, the 4th inside 24 h is HALTed, and so is
  every one after it until Warden pauses the agent;
* **support** — replies quoting the customer's e-mail, phone and card: ALLOW, but
  ``constrained`` — the reply that goes out (and what Warden stores) is redacted; refunds
  wait for a reviewer;
* **observability** — a production rollback at 2 a.m.: tier 4, so two approvers must say
  yes (four-eyes);
* **summariser** — an e-mail carrying a prompt injection makes it try to send its API key
  out; the key is a canary token: HALT.

They wait for approvals (an operator's approve or reject in the console is what the agent
acts on), survive pause (409 ``agent_paused``: printed, retried every ``--backoff``
seconds) and stop when revoked (401). See :mod:`examples.demo_fleet.runner`.
"""

from .runner import AgentRunner, Options, Printer
from .stories import AGENTS

__all__ = ["AGENTS", "AgentRunner", "Options", "Printer"]
