"""A small fake Warden speaking the SPEC §9 agent wire format, for the client's tests.

It runs in a thread on 127.0.0.1 and keeps just enough state to hold the client to the
contract: sessions (open / ended / halted), actions with Idempotency-Key replay (same key +
same body → the first response; different body → 422; still running → 409
``idempotency_in_progress``), approvals with a real long-poll (``?wait=N``, N ≤ 60), results
(once per action, only after an approval was granted) and the ``{"error": {…}}`` body.

Tests script it: ``verdicts`` (action name → verdict dict or function of the body),
``decide_after`` (action name → (delay, status, comment)) for approvals decided by a
"reviewer" thread, ``result_answers`` (action name → extra result body), ``faults``
(network drops and canned answers, consumed in order) and ``action_delay``.
Every request is recorded in ``requests``, dropped ones included.
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

KEY = "wdn_live_fake1234_" + "s" * 32

ACTION_FIELDS = {"name", "target", "args", "amount", "currency", "sensitive", "parent_action_id"}


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: Any


@dataclass
class Fault:
    """One scripted misbehaviour for the next request matching ``method`` and ``path``.

    kind: ``drop_before`` (close the connection, do nothing), ``drop_after`` (do the work,
    then close without answering), ``respond`` (answer ``status``/``body`` without doing
    the work; ``body`` may be a str for non-JSON).
    """

    method: str
    path: str  # regular expression matched against the path
    kind: str
    status: int = 0
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, fields: dict | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.fields = status, code, message, fields


class _Drop(Exception):
    """Close the connection without an answer."""


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


class FakeWarden:
    def __init__(self) -> None:
        self.key = KEY
        self.agent_status = "active"
        self.cond = threading.Condition()
        self.requests: list[Recorded] = []
        self.sessions: dict[str, dict[str, Any]] = {}
        self.actions: dict[str, dict[str, Any]] = {}
        self.approvals: dict[str, dict[str, Any]] = {}
        self.idempotency: dict[tuple[str, str], dict[str, Any]] = {}
        self.verdicts: dict[str, dict[str, Any] | Callable[[dict], dict[str, Any]]] = {}
        self.decide_after: dict[str, tuple[float, str, str]] = {}
        self.result_answers: dict[str, dict[str, Any]] = {}
        self.faults: list[Fault] = []
        self.action_delay: list[float] = []  # per processed proposal, consumed in order
        self.end_error: tuple[int, str] | None = None
        self.timers: list[threading.Timer] = []
        handler = type("Handler", (_Handler,), {"fake": self})
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> FakeWarden:
        self.thread.start()
        return self

    def stop(self) -> None:
        for timer in self.timers:
            timer.cancel()
        self.httpd.shutdown()
        self.httpd.server_close()

    # -- what tests look at ----------------------------------------------------------------

    def calls(self, method: str, pattern: str) -> list[Recorded]:
        with self.cond:
            return [
                r for r in self.requests if r.method == method and re.fullmatch(pattern, r.path)
            ]

    def decide(self, approval_id: str, status: str, *, by: str = "reviewer", comment: str = ""):
        """A reviewer's decision (or an expiry/cancellation): wakes every long-poll."""
        with self.cond:
            approval = self.approvals[approval_id]
            approval.update(
                status=status,
                decided_by=by if status in ("approved", "rejected") else None,
                decided_at=_now(),
                comment=comment or None,
            )
            self.cond.notify_all()

    # -- dispatch ---------------------------------------------------------------------------

    def take_fault(self, method: str, path: str) -> Fault | None:
        with self.cond:
            for index, fault in enumerate(self.faults):
                if fault.method == method and re.fullmatch(fault.path, path):
                    return self.faults.pop(index)
        return None

    def handle(self, method: str, path: str, query, headers, body) -> tuple[int, Any]:
        auth = headers.get("authorization", "")
        if auth != f"Bearer {self.key}":
            raise ApiError(401, "authentication_failed", "Invalid agent key.")
        if self.agent_status == "revoked":
            raise ApiError(401, "agent_revoked", "This agent has been revoked.")
        if method == "POST" and path == "/api/v1/sessions":
            return self.open_session(body)
        if match := re.fullmatch(r"/api/v1/sessions/([^/]+)/actions", path):
            self.only(method, "POST")
            return self.propose(match[1], headers, body)
        if match := re.fullmatch(r"/api/v1/sessions/([^/]+)/actions/([^/]+)/result", path):
            self.only(method, "POST")
            return self.result(match[1], match[2], headers.get("idempotency-key"), body)
        if match := re.fullmatch(r"/api/v1/sessions/([^/]+)/end", path):
            self.only(method, "POST")
            return self.end(match[1])
        if match := re.fullmatch(r"/api/v1/approvals/([^/]+)", path):
            self.only(method, "GET")
            return self.approval(match[1], query)
        raise ApiError(404, "not_found", "Not found.")

    @staticmethod
    def only(method: str, allowed: str) -> None:
        if method != allowed:
            raise ApiError(405, "method_not_allowed", f'Method "{method}" not allowed.')

    # -- endpoints ---------------------------------------------------------------------------

    def open_session(self, body: Any) -> tuple[int, Any]:
        body = body or {}
        unknown = set(body) - {"workflow_id", "goal"}
        if unknown:
            raise ApiError(
                400,
                "invalid",
                "The request is not valid.",
                {k: ["Unknown field."] for k in unknown},
            )
        if self.agent_status == "paused":
            raise ApiError(409, "agent_paused", "This agent is paused; new sessions are refused.")
        session_id = str(uuid.uuid4())
        with self.cond:
            self.sessions[session_id] = {
                "status": "open",
                "goal": body.get("goal", ""),
                "workflow_id": body.get("workflow_id"),
            }
        return 201, {"session_id": session_id, "run_id": str(uuid.uuid4())}

    def session(self, session_id: str) -> dict[str, Any]:
        session = self.sessions.get(session_id)
        if session is None:
            raise ApiError(404, "session_not_found", "No such session.")
        return session

    def propose(self, session_id: str, headers, body: Any) -> tuple[int, Any]:
        key = headers.get("idempotency-key")
        if not key:
            raise ApiError(400, "idempotency_key_required", "Send an Idempotency-Key header.")
        self.validate_action(body)
        with self.cond:
            self.session(session_id)
            slot = self.idempotency.get((session_id, key))
            if slot is not None:
                if slot["body"] != body:
                    raise ApiError(
                        422, "idempotency_key_reused", "This key was used for another request."
                    )
                if slot["response"] is None:
                    raise ApiError(
                        409,
                        "idempotency_in_progress",
                        "The first request with this key is still running.",
                    )
                return slot["response"]
            slot = {"body": body, "response": None}
            self.idempotency[(session_id, key)] = slot
            delay = self.action_delay.pop(0) if self.action_delay else 0.0
        if delay:
            time.sleep(delay)  # the key stays "in progress" meanwhile
        with self.cond:
            response = self.evaluate(session_id, body)
            slot["response"] = response
        return response

    def validate_action(self, body: Any) -> None:
        if not isinstance(body, dict):
            raise ApiError(
                400,
                "invalid",
                "The request is not valid.",
                {"non_field_errors": ["Expected an object."]},
            )
        fields: dict[str, list[str]] = {}
        for name in set(body) - ACTION_FIELDS:
            fields[name] = ["Unknown field."]
        if not isinstance(body.get("name"), str) or not body["name"]:
            fields["name"] = ["This field is required."]
        if "amount" in body:
            try:
                assert isinstance(body["amount"], str)
                Decimal(body["amount"])
            except (AssertionError, InvalidOperation):
                fields["amount"] = ["A decimal string is required."]
        if "sensitive" in body and not isinstance(body["sensitive"], bool):
            fields["sensitive"] = ["Must be a boolean."]
        if fields:
            raise ApiError(400, "invalid", "The request is not valid.", fields)

    def evaluate(self, session_id: str, body: dict) -> tuple[int, Any]:
        """Runs under self.cond."""
        session = self.session(session_id)
        if session["status"] == "ended":
            raise ApiError(409, "session_ended", "The session is ended.")
        script = self.verdicts.get(body["name"], {"verdict": "ALLOW"})
        if callable(script):
            script = script(body)
        if session["status"] == "halted":
            script = {"verdict": "HALT", "reason": "the session is halted", "source": "session"}
        verdict = script["verdict"]
        action_id = str(uuid.uuid4())
        constrained = "constrained_args" in script
        answer = {
            "action_id": action_id,
            "verdict": verdict,
            "reason": script.get("reason", "no layer objected"),
            "source": script.get("source", "pipeline"),
            "constrained": constrained,
            "args": script["constrained_args"] if constrained else body.get("args"),
            "approval_id": None,
            "approval_expires_at": None,
            "event_id": str(uuid.uuid4()),
        }
        answer.update(script.get("extra", {}))
        self.actions[action_id] = {
            "session_id": session_id,
            "body": body,
            "verdict": verdict,
            "approval_id": None,
            "result": None,
        }
        if verdict == "REQUIRE_APPROVAL":
            approval_id = str(uuid.uuid4())
            self.approvals[approval_id] = {"status": "pending", "action_id": action_id}
            self.actions[action_id]["approval_id"] = approval_id
            answer["approval_id"] = approval_id
            answer["approval_expires_at"] = (
                (datetime.now(UTC) + timedelta(minutes=30)).isoformat().replace("+00:00", "Z")
            )
            if body["name"] in self.decide_after:
                delay, status, comment = self.decide_after[body["name"]]
                timer = threading.Timer(
                    delay, self.decide, (approval_id, status), {"comment": comment}
                )
                timer.daemon = True
                self.timers.append(timer)
                timer.start()
        if verdict == "HALT":
            session["status"] = "halted"
        return 200, answer

    def approval(self, approval_id: str, query) -> tuple[int, Any]:
        raw = query.get("wait", ["0"])[0]
        if not raw.isdigit() or int(raw) > 60:
            raise ApiError(
                400, "invalid", "The request is not valid.", {"wait": ["An integer from 0 to 60."]}
            )
        deadline = time.monotonic() + int(raw)
        with self.cond:
            approval = self.approvals.get(approval_id)
            if approval is None:
                raise ApiError(404, "approval_not_found", "No such approval request.")
            while approval["status"] == "pending":
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self.cond.wait(remaining)
            answer = {"status": approval["status"]}
            for key in ("decided_by", "decided_at", "comment"):
                if approval.get(key) is not None:
                    answer[key] = approval[key]
        return 200, answer

    def result(
        self, session_id: str, action_id: str, key: str | None, body: Any
    ) -> tuple[int, Any]:
        # SPEC §9 names Idempotency-Key for proposals only; the client sends one with results
        # too, and this fake honours it (same key + same body → the first answer).
        with self.cond:
            slot = self.idempotency.get((action_id, key)) if key else None
            if slot is not None and slot["body"] == body:
                return slot["response"]
        response = self.record_result(session_id, action_id, body)
        if key:
            with self.cond:
                self.idempotency[(action_id, key)] = {"body": body, "response": response}
        return response

    def record_result(self, session_id: str, action_id: str, body: Any) -> tuple[int, Any]:
        if not isinstance(body, dict) or body.get("status") not in ("ok", "error"):
            raise ApiError(
                400, "invalid", "The request is not valid.", {"status": ['"ok" or "error".']}
            )
        if set(body) - {"status", "output"}:
            raise ApiError(
                400,
                "invalid",
                "The request is not valid.",
                {"non_field_errors": ["Unknown field."]},
            )
        with self.cond:
            action = self.actions.get(action_id)
            if action is None or action["session_id"] != session_id:
                raise ApiError(404, "action_not_found", "No such action.")
            if action["result"] is not None:
                raise ApiError(
                    409, "result_already_reported", "This action's result is already in."
                )
            if action["verdict"] in ("BLOCK", "HALT"):
                raise ApiError(409, "action_not_allowed", "This action was not allowed to run.")
            if (
                action["approval_id"]
                and self.approvals[action["approval_id"]]["status"] != "approved"
            ):
                raise ApiError(409, "approval_not_granted", "This action has no granted approval.")
            action["result"] = body
            answer = {"action_id": action_id, "status": "recorded"}
            extra = self.result_answers.get(action["body"]["name"])
            if extra:
                answer.update(extra)
                if extra.get("verdict") == "HALT":
                    self.sessions[session_id]["status"] = "halted"
        return 200, answer

    def end(self, session_id: str) -> tuple[int, Any]:
        with self.cond:
            session = self.session(session_id)
            if self.end_error:
                status, code = self.end_error
                raise ApiError(status, code, "scripted failure")
            if session["status"] != "open":
                raise ApiError(
                    409, f"session_{session['status']}", f"The session is {session['status']}."
                )
            session["status"] = "ended"
        return 200, {"session_id": session_id, "status": "ended"}


class _Handler(BaseHTTPRequestHandler):
    fake: FakeWarden
    protocol_version = "HTTP/1.1"  # keep-alive, like a real server
    disable_nagle_algorithm = True  # headers and body go out in separate writes

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet tests
        pass

    def do_GET(self) -> None:
        self.serve("GET")

    def do_POST(self) -> None:
        self.serve("POST")

    def serve(self, method: str) -> None:
        fake = self.fake
        url = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode(errors="replace")
        headers = {k.lower(): v for k, v in self.headers.items()}
        query = parse_qs(url.query)
        with fake.cond:
            fake.requests.append(Recorded(method, url.path, query, headers, body))
        fault = fake.take_fault(method, url.path)
        try:
            if fault is not None and fault.kind == "drop_before":
                raise _Drop
            if fault is not None and fault.kind == "respond":
                self.answer(fault.status, fault.body, fault.headers)
                return
            try:
                status, document = fake.handle(method, url.path, query, headers, body)
            except ApiError as exc:
                error: dict[str, Any] = {"code": exc.code, "message": exc.message}
                if exc.fields:
                    error["fields"] = exc.fields
                status, document = exc.status, {"error": error}
            if fault is not None and fault.kind == "drop_after":
                raise _Drop
            self.answer(status, document)
        except _Drop:
            self.close_connection = True

    def answer(self, status: int, document: Any, headers: dict[str, str] | None = None) -> None:
        if isinstance(document, str):
            payload, kind = document.encode(), "text/html"
        else:
            payload, kind = json.dumps(document).encode(), "application/json"
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(payload)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)
