"""The HTTP conversation with Warden (SPEC §9 agent endpoints): :class:`Warden`, :class:`Session`.

Retry rules — a retried request must never do twice what it should do once:

- ``POST …/actions`` carries an ``Idempotency-Key`` (a fresh uuid4 per proposal) that is
  **reused** on every retry, so a retry after a dropped connection, a timeout or a 5xx gets
  the first response instead of a second action. 409 ``idempotency_in_progress`` (the first
  attempt is still being evaluated) is answered by waiting briefly and asking again with the
  same key, for up to ``timeout`` seconds.
- ``POST …/result`` carries an ``Idempotency-Key`` too (reused on retries) for servers that
  honour it, and is retried like a proposal.
- ``GET /approvals/{id}`` and ``POST /sessions/{id}/end`` are safe to repeat and are
  retried on network errors and 5xx.
- ``POST /sessions`` is not idempotent: it is retried only when the request certainly never
  reached the server (connection refused, connect timeout) or was refused with 429.
- Each call makes at most ``1 + retries`` attempts with exponential backoff (``backoff``,
  doubled each time, capped at 5 s; a ``Retry-After`` header wins, capped at 30 s).
"""

from __future__ import annotations

import contextvars
import functools
import inspect
import logging
import math
import time
import uuid
from collections.abc import Callable
from decimal import Decimal
from types import TracebackType
from typing import Any, Literal, ParamSpec, TypeVar

import httpx

from ._encoding import call_arguments, decimal_string, dumps, rebuild_call, to_json
from .errors import (
    ApprovalCancelled,
    ApprovalError,
    ApprovalExpired,
    ApprovalRejected,
    ApprovalTimeout,
    ApprovalUnavailable,
    Blocked,
    Halted,
    WardenConnectionError,
    WardenError,
    WardenHTTPError,
    WardenProtocolError,
)
from .models import ApprovalState, ApprovalStatus, Decision, Verdict

__all__ = ["Session", "Warden"]

log = logging.getLogger("warden_client")

P = ParamSpec("P")
R = TypeVar("R")

Amount = Decimal | int | float | str
# A decorator option: a fixed value, or a function of the governed call's arguments.
Option = Any

USER_AGENT = "warden-client/0.1"
MAX_WAIT = 60  # SPEC §4: ?wait=N with N ≤ 60
_MAX_BACKOFF = 5.0
_MAX_RETRY_AFTER = 30.0
_IN_PROGRESS_FIRST_DELAY = 0.05
_IN_PROGRESS_MAX_DELAY = 1.0
_MIN_POLL_GAP = 0.5  # never poll faster than this, whatever the server does

# The governed action currently running in this context (thread or task), so a governed
# function called inside another one proposes with parent_action_id = the outer action
# (SPEC §3.2 step 2, max nested depth).
_running: contextvars.ContextVar[tuple[Session, str] | None] = contextvars.ContextVar(
    "warden_running_action", default=None
)

# Network failures after which the request certainly never reached the server.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
_RETRY_ANY = frozenset({429})
_RETRY_IF_REPEATABLE = frozenset({500, 502, 503, 504})


class Warden:
    """A connection to one Warden server, authenticated as one agent.

    ``url`` is the server's base address (``http://127.0.0.1:8000``; a trailing ``/api/v1``
    is accepted too) and ``key`` the agent's API key (``wdn_live_…``). ``timeout`` bounds
    each request in seconds (a long-poll gets its wait on top); ``retries`` is how many
    times a failed request is retried (see the module docstring for which ones).
    """

    def __init__(
        self,
        url: str,
        key: str,
        *,
        timeout: float = 10.0,
        retries: int = 3,
        backoff: float = 0.25,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        base = url.rstrip("/")
        if base.endswith("/api/v1"):
            base = base[: -len("/api/v1")]
        if not base.startswith(("http://", "https://")):
            raise ValueError(f"url must start with http:// or https://, got {url!r}")
        if not key:
            raise ValueError("an agent key is required")
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        if retries < 0:
            raise ValueError("retries cannot be negative")
        self.url = base
        self.timeout = float(timeout)
        self.retries = int(retries)
        self.backoff = float(backoff)
        self._http = httpx.Client(
            base_url=base,
            headers={
                "Authorization": f"Bearer {key}",
                "Accept": "application/json",
                "User-Agent": USER_AGENT,
            },
            timeout=self.timeout,
            transport=transport,
            follow_redirects=False,
        )

    def __repr__(self) -> str:
        return f"Warden({self.url!r})"  # never the key

    def session(self, *, goal: str = "", workflow_id: str | None = None) -> Session:
        """A session to use as ``with warden.session(goal=…) as s:`` (opened on entry)."""
        return Session(self, goal=goal, workflow_id=workflow_id)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Warden:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- transport -----------------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        params: dict[str, Any] | None = None,
        idempotency_key: str | None = None,
        repeatable: bool = False,
        extra_read_time: float = 0.0,
    ) -> Any:
        """Send one API request with the retry rules above; the decoded JSON answer.

        ``repeatable`` says the request may be sent again after it possibly reached the
        server (it is safe by nature or carries an ``Idempotency-Key``).
        """
        headers: dict[str, str] = {}
        content: bytes | None = None
        if body is not None:
            content = dumps(body).encode()
            headers["Content-Type"] = "application/json"
        if idempotency_key is not None:
            headers["Idempotency-Key"] = idempotency_key
            repeatable = True
        timeout = httpx.Timeout(self.timeout, read=self.timeout + extra_read_time)
        attempt = 0  # retries used
        in_progress_until: float | None = None
        in_progress_delay = _IN_PROGRESS_FIRST_DELAY
        while True:
            try:
                response = self._http.request(
                    method, path, content=content, params=params, headers=headers, timeout=timeout
                )
            except httpx.UnsupportedProtocol as exc:
                raise WardenConnectionError(f"{method} {path}: {exc}") from exc
            except httpx.TransportError as exc:
                if attempt < self.retries and (repeatable or isinstance(exc, _NOT_SENT)):
                    attempt += 1
                    delay = self._backoff(attempt)
                    log.info(
                        "%s %s failed (%s: %s); retry %d/%d in %.2fs",
                        method,
                        path,
                        type(exc).__name__,
                        exc,
                        attempt,
                        self.retries,
                        delay,
                    )
                    time.sleep(delay)
                    continue
                raise WardenConnectionError(
                    f"{method} {path} failed after {attempt + 1} attempt(s): "
                    f"{type(exc).__name__}: {exc}"
                ) from exc

            if response.status_code < 400:
                return _decode(response, method, path)

            error = _http_error(response, method, path)
            if (
                error.status == 409
                and error.code == "idempotency_in_progress"
                and idempotency_key is not None
            ):
                now = time.monotonic()
                if in_progress_until is None:
                    in_progress_until = now + self.timeout
                if now < in_progress_until:
                    log.info("%s %s: first attempt still running; asking again", method, path)
                    time.sleep(min(in_progress_delay, in_progress_until - now))
                    in_progress_delay = min(in_progress_delay * 2, _IN_PROGRESS_MAX_DELAY)
                    continue
                raise error
            transient = error.status in _RETRY_ANY or (
                repeatable and error.status in _RETRY_IF_REPEATABLE
            )
            if transient and attempt < self.retries:
                attempt += 1
                delay = _retry_after(response) or self._backoff(attempt)
                log.info(
                    "%s %s answered %d; retry %d/%d in %.2fs",
                    method,
                    path,
                    error.status,
                    attempt,
                    self.retries,
                    delay,
                )
                time.sleep(delay)
                continue
            raise error

    def _backoff(self, attempt: int) -> float:
        return float(min(self.backoff * 2 ** (attempt - 1), _MAX_BACKOFF))


class Session:
    """One agent session (SPEC §9): propose actions, wait for approvals, report results.

    Use it as a context manager — ``with warden.session(goal="…") as s:`` — so it is ended
    on exit, also when the body raises. Ending a session the server has already closed
    (halted, ended, revoked) is not an error, and a failure to end never hides the
    exception that left the block.
    """

    def __init__(self, warden: Warden, *, goal: str = "", workflow_id: str | None = None) -> None:
        self.warden = warden
        self.goal = goal
        self.workflow_id = workflow_id
        self.session_id: str | None = None
        self.run_id: str | None = None
        # new → open → ended | halted (a HALT verdict ends the session server-side, SPEC §1)
        self.state: Literal["new", "open", "ended", "halted"] = "new"
        self._decisions: dict[str, Decision] = {}  # approval_id → REQUIRE_APPROVAL verdict

    def __repr__(self) -> str:
        return f"<Session {self.session_id or '(not open)'} {self.state}>"

    # -- lifecycle -----------------------------------------------------------------------

    def open(self) -> Session:
        """``POST /api/v1/sessions``; raises WardenHTTPError (``agent_paused``, …) if refused."""
        if self.state != "new":
            raise WardenError(f"this session is already {self.state}")
        body: dict[str, Any] = {}
        if self.workflow_id is not None:
            body["workflow_id"] = self.workflow_id
        if self.goal:
            body["goal"] = self.goal
        data = _object(self.warden.request("POST", "/api/v1/sessions", body=body), "session")
        session_id = data.get("session_id")
        if not session_id:
            raise WardenProtocolError("session response has no session_id")
        self.session_id = str(session_id)
        self.run_id = None if data.get("run_id") is None else str(data["run_id"])
        self.state = "open"
        return self

    def end(self) -> None:
        """``POST /api/v1/sessions/{id}/end``; nothing to do if the session is already closed."""
        if self.state != "open":
            return
        try:
            self.warden.request("POST", f"{self._path}/end", repeatable=True)
        except WardenHTTPError as exc:
            # The server closed it first: a HALT, an on-call Halt, a revocation, or our own
            # earlier /end whose answer was lost.
            if (exc.status == 409 and exc.code.startswith("session_")) or (
                exc.code == "agent_revoked"
            ):
                log.info("session %s was already closed (%s)", self.session_id, exc.code)
                self.state = "halted" if exc.code == "session_halted" else "ended"
                return
            raise
        self.state = "ended"

    def __enter__(self) -> Session:
        return self.open()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is None:
            self.end()
            return
        try:
            self.end()
        except Exception as end_error:  # never mask the exception that left the block
            log.warning("could not end session %s: %s", self.session_id, end_error)

    # -- actions -------------------------------------------------------------------------

    def propose(
        self,
        name: str,
        *,
        target: str | None = None,
        args: Any = None,
        amount: Amount | None = None,
        currency: str | None = None,
        sensitive: bool | None = None,
        parent_action_id: str | None = None,
    ) -> Decision:
        """Ask for a verdict on one action (``POST /api/v1/sessions/{id}/actions``).

        Returns the :class:`Decision` whatever the verdict; raising on BLOCK/HALT is the
        decorator's job. Omitted (``None``) fields are not sent.
        """
        if not name:
            raise ValueError("an action name is required")
        body: dict[str, Any] = {"name": name}
        if target is not None:
            body["target"] = target
        if args is not None:
            body["args"] = to_json(args)
        if amount is not None:
            body["amount"] = decimal_string(amount)
        if currency is not None:
            body["currency"] = currency
        if sensitive is not None:
            body["sensitive"] = bool(sensitive)
        if parent_action_id is not None:
            body["parent_action_id"] = parent_action_id
        data = self.warden.request(
            "POST",
            f"{self._path}/actions",
            body=body,
            idempotency_key=str(uuid.uuid4()),
        )
        decision = Decision.from_json(data, name=name)
        if decision.verdict is Verdict.HALT:
            self.state = "halted"
        elif decision.verdict is Verdict.REQUIRE_APPROVAL and decision.approval_id:
            self._decisions[decision.approval_id] = decision
        return decision

    def approval(self, approval_id: str, *, wait: int = 0) -> ApprovalStatus:
        """One look at an approval request, long-polling up to ``wait`` ≤ 60 seconds."""
        wait = max(0, min(MAX_WAIT, int(wait)))
        data = self.warden.request(
            "GET",
            f"/api/v1/approvals/{approval_id}",
            params={"wait": wait},
            repeatable=True,
            extra_read_time=wait,
        )
        return ApprovalStatus.from_json(data, approval_id=approval_id)

    def wait_for_approval(self, approval_id: str, timeout: float | None = None) -> ApprovalStatus:
        """Long-poll until the request leaves ``pending`` (SPEC §4 agent side).

        Returns the status when approved; raises :class:`ApprovalRejected`,
        :class:`ApprovalExpired` or :class:`ApprovalCancelled` otherwise, and
        :class:`ApprovalTimeout` if ``timeout`` seconds pass first (``None``: wait until
        the server decides or expires the request, which it always does).
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        decision = self._decisions.get(approval_id)
        while True:
            remaining = math.inf if deadline is None else deadline - time.monotonic()
            wait = int(min(MAX_WAIT, max(0.0, remaining)))
            started = time.monotonic()
            status = self.approval(approval_id, wait=wait)
            if status.status is ApprovalState.APPROVED:
                return status
            if status.status is not ApprovalState.PENDING:
                raise _APPROVAL_ERRORS[status.status](status, decision)
            remaining = math.inf if deadline is None else deadline - time.monotonic()
            if remaining <= 0:
                raise ApprovalTimeout(status, decision, f"still pending after {timeout}s")
            quick = time.monotonic() - started
            if quick < _MIN_POLL_GAP:  # the server answered early; do not spin
                time.sleep(min(_MIN_POLL_GAP - quick, remaining))

    def report(
        self,
        action_id: str,
        status: Literal["ok", "error"] = "ok",
        output: Any = None,
    ) -> dict[str, Any]:
        """Report how an executed action went (``POST …/actions/{action_id}/result``).

        Output guardrails run on the server (SPEC §9): if its answer carries a HALT or
        BLOCK verdict (a canary token in the output, say) this raises :class:`Halted` /
        :class:`Blocked`. Returns the server's answer as a dict.
        """
        if status not in ("ok", "error"):
            raise ValueError("status must be 'ok' or 'error'")
        body: dict[str, Any] = {"status": status}
        if output is not None:
            body["output"] = to_json(output)
        data = self.warden.request(
            "POST",
            f"{self._path}/actions/{action_id}/result",
            body=body,
            idempotency_key=str(uuid.uuid4()),
        )
        answer = data if isinstance(data, dict) else {}
        verdict = answer.get("verdict")
        if isinstance(verdict, str) and verdict.upper() in (Verdict.HALT, Verdict.BLOCK):
            decision = Decision(
                action_id=str(answer.get("action_id") or action_id),
                verdict=Verdict(verdict.upper()),
                reason=str(answer.get("reason") or ""),
                source=str(answer.get("source") or ""),
                constrained=False,
                args=None,
                event_id=None if answer.get("event_id") is None else str(answer["event_id"]),
                name="result",
                raw=answer,
            )
            if decision.verdict is Verdict.HALT:
                self.state = "halted"
                raise Halted(decision)
            raise Blocked(decision)
        return answer

    # -- the decorator -------------------------------------------------------------------

    def governed(
        self,
        name: str,
        *,
        target: Option = None,
        amount: Option = None,
        currency: Option = None,
        sensitive: Option = None,
        parent_action_id: Option = None,
        approval_timeout: float | None = None,
    ) -> Callable[[Callable[P, R]], Callable[P, R]]:
        """Run a function only when Warden allows it, and report how it went.

        Each option is a value or a function of the call's arguments
        (``amount=lambda vendor, total: total``). The proposal's ``args`` are the call's
        arguments by parameter name, defaults applied. Then:

        - ALLOW → run; when ``constrained`` the function gets Warden's arguments instead
          (plain JSON values: a Decimal comes back as a string);
        - REQUIRE_APPROVAL → wait (long-poll, ``approval_timeout``), then run if approved;
          raise ApprovalRejected / ApprovalExpired / ApprovalCancelled / ApprovalTimeout,
          or ApprovalUnavailable when the server opened no request to wait on;
        - BLOCK → raise Blocked; HALT → raise Halted (the session is over).

        After running: report ``ok`` with the return value as output (its ``repr`` if not
        JSON), or ``error`` with the exception text and re-raise the exception. A
        governed function called inside another proposes with ``parent_action_id`` = the
        outer action, unless given.
        """

        def decorate(fn: Callable[P, R]) -> Callable[P, R]:
            if inspect.iscoroutinefunction(fn):
                raise TypeError(
                    "the Warden client is synchronous; governed() takes plain functions"
                )
            signature = inspect.signature(fn)

            @functools.wraps(fn)
            def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
                named = call_arguments(signature, args, kwargs)
                parent = _option(parent_action_id, args, kwargs)
                if parent is None:
                    running = _running.get()
                    if running is not None and running[0] is self:
                        parent = running[1]
                decision = self.propose(
                    name,
                    target=_option(target, args, kwargs),
                    args=named,
                    amount=_option(amount, args, kwargs),
                    currency=_option(currency, args, kwargs),
                    sensitive=_option(sensitive, args, kwargs),
                    parent_action_id=parent,
                )
                if decision.verdict is Verdict.HALT:
                    raise Halted(decision)
                if decision.verdict is Verdict.BLOCK:
                    raise Blocked(decision)
                if decision.verdict is Verdict.REQUIRE_APPROVAL:
                    if decision.approval_id is None:
                        raise ApprovalUnavailable(
                            decision,
                            f"REQUIRE_APPROVAL {name}: {decision.reason} "
                            "(the server opened no approval request to wait on)",
                        )
                    self.wait_for_approval(decision.approval_id, timeout=approval_timeout)

                call_args: Any = args
                call_kwargs: Any = kwargs
                if decision.constrained:
                    try:
                        call_args, call_kwargs = rebuild_call(signature, decision.args)
                    except WardenProtocolError as exc:
                        self._report_quietly(decision.action_id, f"not run: {exc}")
                        raise
                token = _running.set((self, decision.action_id))
                try:
                    result = fn(*call_args, **call_kwargs)
                except Exception as exc:
                    self._report_quietly(decision.action_id, f"{type(exc).__name__}: {exc}")
                    raise
                finally:
                    _running.reset(token)
                self.report(decision.action_id, "ok", output=_output(result))
                return result

            return wrapper

        return decorate

    # -- helpers -------------------------------------------------------------------------

    @property
    def _path(self) -> str:
        if self.session_id is None:
            raise WardenError("the session is not open; use `with warden.session(...) as s:`")
        return f"/api/v1/sessions/{self.session_id}"

    def _report_quietly(self, action_id: str, text: str) -> None:
        """Report an error result without hiding the exception being handled."""
        try:
            self.report(action_id, "error", output=text)
        except Exception as exc:
            log.warning("could not report the failure of action %s: %s", action_id, exc)


_APPROVAL_ERRORS: dict[ApprovalState, type[ApprovalError]] = {
    ApprovalState.REJECTED: ApprovalRejected,
    ApprovalState.EXPIRED: ApprovalExpired,
    ApprovalState.CANCELLED: ApprovalCancelled,
}


def _option(value: Option, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    return value(*args, **kwargs) if callable(value) else value


def _output(result: Any) -> Any:
    try:
        return to_json(result)
    except (TypeError, ValueError):
        return repr(result)


def _object(data: Any, what: str) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise WardenProtocolError(f"{what} response is not a JSON object")
    return data


def _decode(response: httpx.Response, method: str, path: str) -> Any:
    if not response.content:
        return None
    try:
        return response.json()
    except ValueError:
        raise WardenProtocolError(
            f"{method} {path} answered {response.status_code} with a body that is not JSON"
        ) from None


def _http_error(response: httpx.Response, method: str, path: str) -> WardenHTTPError:
    status = response.status_code
    body: Any = None
    try:
        body = response.json()
    except ValueError:
        pass
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict) and isinstance(error.get("code"), str):
        fields = error.get("fields")
        return WardenHTTPError(
            status,
            error["code"],
            str(error.get("message") or ""),
            fields=fields if isinstance(fields, dict) else None,
            body=body,
            method=method,
            path=path,
        )
    text = response.text[:500].strip()
    return WardenHTTPError(
        status,
        f"http_{status}",
        text or response.reason_phrase,
        body=body if body is not None else text,
        method=method,
        path=path,
    )


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None  # HTTP-date form: fall back to our own backoff
    return max(0.0, min(seconds, _MAX_RETRY_AFTER))
