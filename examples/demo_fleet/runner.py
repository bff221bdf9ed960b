"""How one simulated agent runs: sessions of steps, one printed line per step.

Each agent is a thread with its own :class:`warden_client.Warden` connection. Its story is
a list of *phases*; a phase is one session (``with warden.session(goal=…) as s:``) and its
steps. The runner keeps going whatever the console does to the agent:

* **HALT** ends the session (SPEC §1): the runner prints it and opens a new session for
  the rest of the phase — a drifting agent tries again, and Warden stops it again;
* **paused** (409 ``agent_paused`` when opening a session): the step waits, printed once,
  and is retried every ``backoff`` seconds until an operator resumes the agent;
* **revoked** (401 ``agent_revoked`` or any 401): the agent stops for good;
* a BLOCK, a rejection or an expiry skips that one step; the story goes on;
* Warden unreachable (not started yet, restarting): retried every ``backoff`` seconds.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from warden_client import (
    ApprovalError,
    ApprovalTimeout,
    Halted,
    Verdict,
    Warden,
    WardenConnectionError,
    WardenHTTPError,
)


class Stopped(Exception):
    """The fleet is shutting down."""


class Revoked(Exception):
    """The agent's key no longer authenticates: the agent stops."""


@dataclass
class Options:
    pace: float = 1.0  # seconds between the steps of support, observability and summariser
    hour: float = 1.0  # seconds per story hour of the procurement drift
    rest: float = 20.0  # seconds between two rounds of a story
    # How long an agent waits for a reviewer: longer than the demo agents' approval TTL
    # (90 s, bootstrap_demo), so an undecided request ends as "expired", as it should.
    approval_timeout: float = 100.0
    backoff: float = 5.0  # seconds between retries while paused or unreachable
    verbose: bool = False


@dataclass
class Step:
    """One action of a story. ``run(agent, session)`` does it; ``at`` is the story hour
    it is due (procurement), or None to follow the pace."""

    run: Callable[[AgentRunner, Any], None]
    at: float | None = None


@dataclass
class Phase:
    goal: str
    steps: list[Step]
    workflow_id: str | None = None


@dataclass
class Outcome:
    """What became of one proposed action."""

    verdict: str
    done: bool  # the action ran and its result was reported
    args: Any = None
    output: Any = None
    approval: str | None = None  # approved | rejected | expired | cancelled | timeout
    extra: dict[str, Any] = field(default_factory=dict)


class Printer:
    """One line per step, whole lines only, whichever thread prints."""

    def __init__(self, write: Callable[[str], Any] | None = None) -> None:
        self._lock = threading.Lock()
        self._write = write or (lambda line: print(line, flush=True))

    def __call__(self, who: str, what: str, text: str) -> None:
        stamp = time.strftime("%H:%M:%S")
        with self._lock:
            self._write(f"{stamp}  {who:<13} {what:<17} {text}")


def money(amount: Any) -> str:
    return f"USD {Decimal(str(amount)):,.2f}"


class AgentRunner(threading.Thread):
    """A simulated agent. Subclasses give ``label`` and ``story(round_number)``."""

    label = "agent"

    def __init__(
        self,
        *,
        url: str,
        key: str,
        options: Options,
        stop: threading.Event,
        printer: Printer,
        secrets: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(name=f"demo-{self.label}", daemon=True)
        self.url = url
        self.key = key
        self.options = options
        self.stop_event = stop
        self.say_line = printer
        self.secrets = secrets or {}
        self.round = 0
        self._t0 = time.monotonic()
        self._paused_said = False
        self.stopped_because: str | None = None

    # -- what subclasses write -----------------------------------------------------------
    def story(self, round_number: int) -> Iterable[Phase]:
        raise NotImplementedError

    # -- printing and time ---------------------------------------------------------------
    def say(self, what: str, text: str) -> None:
        self.say_line(self.label, what, text)

    def sleep(self, seconds: float) -> None:
        if seconds > 0 and self.stop_event.wait(seconds):
            raise Stopped

    def check_stop(self) -> None:
        if self.stop_event.is_set():
            raise Stopped

    def _due(self, step: Step) -> None:
        if step.at is None:
            self.sleep(self.options.pace)
        else:
            self.sleep(self._t0 + step.at * self.options.hour - time.monotonic())

    # -- the loop ------------------------------------------------------------------------
    def run(self) -> None:
        warden = Warden(self.url, self.key, timeout=15, retries=2)
        try:
            while True:
                self._t0 = time.monotonic()
                for phase in self.story(self.round):
                    self._play(warden, phase)
                self.round += 1
                self.sleep(self.options.rest)
        except Stopped:
            self.stopped_because = "stopped"
        except Revoked as revoked:
            self.stopped_because = "revoked"
            self.say("stopped", f"{revoked} — this agent stops for good")
        finally:
            warden.close()

    def _play(self, warden: Warden, phase: Phase) -> None:
        pending = list(phase.steps)
        resumed = False
        while pending:
            self.check_stop()
            try:
                with warden.session(goal=phase.goal, workflow_id=phase.workflow_id) as session:
                    if self._paused_said:
                        self.say("resumed", "an operator resumed this agent")
                        self._paused_said = False
                    self.say(
                        "session",
                        f"{'re-opened' if resumed else 'opened'} {session.session_id[:8]} "
                        f"— {phase.goal}",
                    )
                    while pending:
                        self._due(pending[0])
                        pending[0].run(self, session)
                        pending.pop(0)
            except Halted:  # act() printed the verdict
                self.say(
                    "session",
                    "halted by Warden"
                    + ("; opening a new one to carry on" if len(pending) > 1 else ""),
                )
                pending.pop(0)
                resumed = True
            except WardenHTTPError as error:
                self._refused(error, pending)
            except WardenConnectionError as error:
                self.say("unreachable", f"{error} — retrying in {self.options.backoff:g}s")
                self.sleep(self.options.backoff)

    def _refused(self, error: WardenHTTPError, pending: list[Step]) -> None:
        if error.status == 401:
            raise Revoked(f"{error.code}: {error.message}")
        if error.code == "agent_paused":
            if not self._paused_said:
                self.say(
                    "paused",
                    f"new sessions are refused ({error.code}); retrying every "
                    f"{self.options.backoff:g}s until an operator resumes it",
                )
                self._paused_said = True
            self._t0 += self.options.backoff  # the story's clock waits too
            self.sleep(self.options.backoff)
            return
        if error.code in ("session_revoked", "agent_revoked"):
            raise Revoked(f"{error.code}: {error.message}")
        # Anything else refused this step: say so, skip it, carry on.
        self.say("refused", f"{error.status} {error.code}: {error.message}")
        if pending:
            pending.pop(0)
        self.sleep(self.options.backoff)

    # -- one governed action -------------------------------------------------------------
    def act(
        self,
        session,
        name: str,
        *,
        target: str | None = None,
        args: Any = None,
        amount: Any = None,
        currency: str | None = None,
        sensitive: bool | None = None,
        run: Callable[[Any], Any] | None = None,
        note: str = "",
    ) -> Outcome:
        """Propose, wait for a reviewer when asked, run, report — printing each step.

        A HALT raises :class:`Halted` (the session is over); BLOCK and refused approvals
        return an :class:`Outcome` with ``done`` False.
        """
        decision = session.propose(
            name,
            target=target,
            args=args,
            amount=amount,
            currency=currency,
            sensitive=sensitive,
        )
        where = f"{target} " if target else ""
        what = f"{where}{money(amount) + ' ' if amount is not None else ''}{note}".strip()
        verdict = decision.verdict
        if verdict is Verdict.HALT:
            self.say(name, f"{what} → HALT ({decision.source}: {decision.reason})")
            raise Halted(decision)
        if verdict is Verdict.BLOCK:
            self.say(name, f"{what} → BLOCK ({decision.source}: {decision.reason})")
            return Outcome("BLOCK", False)
        approval = None
        if verdict is Verdict.REQUIRE_APPROVAL:
            self.say(
                name,
                f"{what} → REQUIRE_APPROVAL ({decision.source}: {decision.reason}) — "
                f"waiting for a reviewer, approval {decision.approval_id}",
            )
            approval = self._wait(session, decision)
            if approval != "approved":
                return Outcome("REQUIRE_APPROVAL", False, approval=approval)
        else:
            extra = " (constrained: Warden rewrote the arguments)" if decision.constrained else ""
            self.say(name, f"{what} → ALLOW{extra}")
        used = decision.args if decision.constrained else args
        output = run(used) if run is not None else None
        try:
            session.report(decision.action_id, "ok", output=output)
        except Halted as halted:  # an output guardrail (a canary in what we report)
            self.say(name, f"result → HALT ({halted.source}: {halted.reason})")
            raise
        return Outcome(str(verdict), True, args=used, output=output, approval=approval)

    def _wait(self, session, decision) -> str:
        """Long-poll in 2-second slices (so the fleet stops promptly) until decided or our patience
        runs out; returns the approval's final state, or ``timeout``."""
        deadline = time.monotonic() + self.options.approval_timeout
        while True:
            self.check_stop()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self.say("", f"no decision after {self.options.approval_timeout:g}s — not done")
                return "timeout"
            try:
                status = session.wait_for_approval(
                    decision.approval_id, timeout=max(1.0, min(2.0, remaining))
                )
            except ApprovalTimeout:
                continue
            except ApprovalError as refused:
                by = f" by {refused.decided_by}" if refused.decided_by else ""
                said = f": {refused.comment}" if refused.comment else ""
                self.say("", f"{refused.status.value}{by}{said} — not done")
                return str(refused.status.value)
            by = status.decided_by or "a reviewer"
            said = f" — {status.comment}" if status.comment else ""
            self.say("", f"approved by {by}{said}")
            return "approved"
