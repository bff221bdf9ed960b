"""The console's main journeys in a real browser (issue 8): log in; register an agent, assess
it and issue a key; approvals arriving live and decided with the keyboard and the buttons;
pause, resume and revoke from the list, the detail page and the queue; filter and export
the audit log; replay a session; open the incident timeline; and a walk through every other
page.

Every journey runs under a page-problem guard: a console error, an uncaught page error or a
Content-Security-Policy violation (the ``securitypolicyviolation`` event, or Chromium's
console message about it) fails it, so the journeys also prove the CSP holds on every page
they visit. Each page is saved at 1280×800 to ``test-artifacts/screenshots/NN-name.png``.

The agents' side speaks real HTTP to the live server with their keys (open a session,
propose, report, long-poll), so a card that appears in the queue came through the same
pipeline as in production. Writes the test makes itself in the middle of a journey go
through a thread of its own: Playwright keeps an event loop in this one.
"""

from __future__ import annotations

import csv
import io
import os
import re
import struct
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace

import httpx
import pytest
from django.contrib.auth import get_user_model
from playwright.sync_api import expect

from approvals import services as approval_services
from approvals.models import ApprovalRequest
from assessments import scoring
from audit.models import Export
from console import services as console_services
from console.models import Agent, ApiKey
from tests.approvals.helpers import in_thread_of_its_own
from tests.assessments.vectors import PROCUREMENT
from tests.liveserver import SCREENSHOTS, login

pytestmark = pytest.mark.browser

PASSWORD = "pw-for-journeys-123"
VIEWPORT = {"width": 1280, "height": 800}
PROCUREMENT_SCOPE = {
    "excluded_actions": ["payment.*"],
    "sensitive_actions": ["contract.commit"],
}

# Runs in every page before its own scripts (Playwright injects it past the CSP): a violation
# is reported to the test through an exposed binding.
CSP_LISTENER = """
document.addEventListener("securitypolicyviolation", (event) => {
  window.__wardenPageProblem(
    "CSP violation: " + event.violatedDirective + " blocked " + (event.blockedURI || "inline")
    + " in " + event.documentURI + " (" + (event.sourceFile || "") + ":" + event.lineNumber + ")"
    + (event.target && event.target.outerHTML ? " on " + event.target.outerHTML.slice(0, 160) : "")
  );
}, true);
// htmx logs an aborted request as a console error. An element with hx-sync="...replace"
// aborts its own stale request on purpose (the wizard's live panel does): count those.
document.addEventListener("htmx:sendAbort", (event) => {
  const elt = event.detail.elt;
  const sync = elt && elt.getAttribute ? elt.getAttribute("hx-sync") || "" : "";
  if (sync.includes("replace")) window.__wardenDeliberateAbort();
}, true);
"""


class PageProblems:
    """Console errors, page errors and CSP violations seen by one browser context."""

    def __init__(self) -> None:
        self.seen: list[str] = []
        self.allowed: list[re.Pattern] = []
        self.aborts: list[str] = []  # htmx's console errors for aborted requests
        self.deliberate_aborts = 0

    def attach(self, context) -> None:
        context.expose_function("__wardenPageProblem", self._report)
        context.expose_function("__wardenDeliberateAbort", self._deliberate_abort)
        context.add_init_script(script=CSP_LISTENER)
        context.on("console", self._console)
        context.on("weberror", lambda error: self.seen.append(f"page error: {error.error}"))

    def _report(self, text: str) -> None:
        self.seen.append(text)

    def _deliberate_abort(self) -> None:
        self.deliberate_aborts += 1

    def allow(self, pattern: str) -> None:
        """Let console errors matching ``pattern`` pass (an HTTP error the journey expects)."""
        self.allowed.append(re.compile(pattern))

    def _console(self, message) -> None:
        text = message.text
        if message.type != "error" and "Content Security Policy" not in text:
            return
        if "Content Security Policy" not in text and any(p.search(text) for p in self.allowed):
            return
        where = message.location.get("url", "")
        if re.match(r"htmx:(afterRequest|sendAbort), ", text):
            self.aborts.append(f"console {message.type}: {text} ({where})")
            return
        self.seen.append(f"console {message.type}: {text} ({where})")

    def check(self, page) -> None:
        page.title()  # a round trip, so every event the page sent so far has been handled
        problems, self.seen = self.seen, []  # each problem fails the journey once
        # Each deliberate abort logs two lines (afterRequest, sendAbort); any other abort —
        # a request lost with a node replaced under it — is a problem.
        if len(self.aborts) > 2 * self.deliberate_aborts:
            problems += self.aborts
        self.aborts, self.deliberate_aborts = [], 0
        assert not problems, "page problems:\n" + "\n".join(problems)


def _png_size(path: str) -> tuple[int, int]:
    with open(path, "rb") as handle:
        header = handle.read(24)
    assert header[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", header[16:24])


def shot(journey, name: str) -> None:
    """Check the page is clean so far, then save it as NN-name.png at 1280×800."""
    journey.problems.check(journey.page)
    # Template syntax that reached the page (a multi-line {# #} comment renders as text).
    text = journey.page.inner_text("body")
    leaked = re.search(r".{0,40}(\{[#%{]|[#%}]\}).{0,40}", text)
    assert leaked is None, f"template syntax on the page: {leaked.group(0)!r}"
    # Nothing wider than the window: a table that overflows hides its row's buttons.
    overflow = journey.page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0, f"{name}: the page is {overflow}px wider than the window"
    os.makedirs(SCREENSHOTS, exist_ok=True)
    path = os.path.join(SCREENSHOTS, f"{name}.png")
    # caret="initial": hiding the caret would make Playwright write a style attribute on the
    # focused field, which htmx's settle step could later copy, and the CSP refuse.
    journey.page.screenshot(path=path, caret="initial")
    assert _png_size(path) == (1280, 800)


@pytest.fixture
def journey(browser):
    problems = PageProblems()
    context = browser.new_context(viewport=VIEWPORT, accept_downloads=True)
    problems.attach(context)
    page = context.new_page()
    page.set_default_timeout(10_000)
    try:
        yield SimpleNamespace(page=page, problems=problems, context=context)
        problems.check(page)
    finally:
        context.close()


class AgentApi:
    """An agent talking to the live server over HTTP with its key."""

    def __init__(self, server, key: str) -> None:
        self.http = httpx.Client(
            base_url=server.url + "/api/v1",
            headers={"Authorization": f"Bearer {key}"},
            timeout=40,
        )

    def open_session(self, goal: str = "") -> str:
        response = self.http.post("/sessions", json={"goal": goal})
        assert response.status_code == 201, response.text
        return response.json()["session_id"]

    def propose(self, session_id: str, name: str, **fields) -> dict:
        response = self.http.post(
            f"/sessions/{session_id}/actions",
            json={"name": name, **fields},
            headers={"Idempotency-Key": str(uuid.uuid4())},
        )
        assert response.status_code == 200, response.text
        return response.json()

    def report(self, session_id: str, action_id: str, output=None) -> dict:
        response = self.http.post(
            f"/sessions/{session_id}/actions/{action_id}/result",
            json={"status": "ok", "output": output},
        )
        assert response.status_code == 200, response.text
        return response.json()

    def end(self, session_id: str) -> None:
        response = self.http.post(f"/sessions/{session_id}/end")
        assert response.status_code == 200, response.text

    def approval(self, approval_id: str, wait: int = 0) -> dict:
        response = self.http.get(f"/approvals/{approval_id}", params={"wait": wait})
        assert response.status_code == 200, response.text
        return response.json()


def _keyed_agent(make_agent, admin_user, name: str, **kwargs):
    agent = make_agent(name, **kwargs)
    _, key = console_services.issue_key(agent, by=admin_user)
    return agent, key


def _close_dialog_done(page) -> None:
    """A containment dialog says done, then closes itself; wait for that before the next."""
    page.wait_for_selector("#modal-body .done")
    page.wait_for_selector("#modal", state="hidden")


# --- the guard itself -------------------------------------------------------------------------
def test_the_page_problem_guard_sees_csp_violations_and_page_errors(asgi_server, journey):
    page = journey.page
    page.goto(asgi_server.url + "/login/")
    journey.problems.check(page)  # the login page itself is clean
    # An image from another origin is refused by img-src 'self'; no request leaves the page.
    page.evaluate(
        """() => {
            const img = document.createElement("img");
            img.src = "http://127.0.0.1:9/probe.png";
            document.body.append(img);
            setTimeout(() => { throw new Error("probe failure"); }, 0);
        }"""
    )
    deadline = time.monotonic() + 5
    while not (
        any("CSP violation: img-src" in p for p in journey.problems.seen)
        and any("probe failure" in p for p in journey.problems.seen)
    ):
        assert time.monotonic() < deadline, journey.problems.seen
        page.wait_for_timeout(50)
    assert any("127.0.0.1:9/probe.png" in p for p in journey.problems.seen)
    journey.problems.seen.clear()


# --- 1. log in --------------------------------------------------------------------------------
def test_log_in_through_the_form(asgi_server, journey, make_operator):
    make_operator("viewer", username="vera", password=PASSWORD)
    page = journey.page
    page.goto(asgi_server.url + "/agents/")
    page.wait_for_url(re.compile(r"/login/\?next=/agents/$"))  # anonymous: sent to log in
    shot(journey, "01-login")

    page.fill("#id_username", "vera")
    page.fill("#id_password", "not the password")
    page.click("button[type=submit]")
    expect(page.locator(".field-error")).to_contain_text("didn't match")
    assert page.input_value("#id_username") == "vera"
    shot(journey, "02-login-refused")

    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(asgi_server.url + "/agents/")  # back where it was going
    expect(page.locator("header.top .who")).to_contain_text("vera")
    page.click("header.top nav >> text=Dashboard")
    page.wait_for_url(asgi_server.url + "/")
    page.wait_for_selector("#live-indicator:has-text('live')")  # the hints socket is up
    shot(journey, "03-dashboard")

    page.click("header.top button:has-text('Log out')")
    page.goto(asgi_server.url + "/")
    page.wait_for_url(re.compile(r"/login/"))


# --- 2. register, assess, issue a key -----------------------------------------------------------
STEP_KEYS = [[p.key for p in category.parameters] for category in scoring.CATEGORIES]
ANSWERS = PROCUREMENT["answers"]


def test_register_an_agent_assess_it_and_issue_a_key(asgi_server, journey, make_operator):
    make_operator("admin", username="ada", password=PASSWORD)
    page = journey.page
    login(page, asgi_server, "ada", PASSWORD)

    page.click("header.top nav >> text=Agents")
    page.click("a:has-text('Register an agent')")
    page.wait_for_url("**/agents/new/")
    page.fill("#id_name", "procurement-agent")
    page.fill("#id_description", "Reviews invoices and commits contracts")
    page.fill("#id_scope", '{"excluded_actions": ["payment.*"], ')  # broken JSON: named
    journey.problems.allow(r"status of 400")  # the refused form answers 400
    page.click("button:has-text('Register')")
    expect(page.locator(".field-error")).to_contain_text("Not valid JSON")
    assert page.input_value("#id_name") == "procurement-agent"  # kept
    shot(journey, "04-agent-register-error")
    page.fill(
        "#id_scope", '{"excluded_actions": ["payment.*"], "sensitive_actions": ["contract.*"]}'
    )
    page.click("button:has-text('Register')")
    expect(page.locator(".messages")).to_contain_text("procurement-agent registered")
    agent = Agent.objects.get(name="procurement-agent")
    assert agent.scope["sensitive_actions"] == ["contract.*"] and not agent.is_assessed
    shot(journey, "05-agent-detail-new")

    # The wizard: three steps of questions, the live score, the review, save.
    page.click("nav.tabs >> text=Assess")
    page.click("[data-testid='assess-button']")
    for step, keys in enumerate(STEP_KEYS):
        page.wait_for_selector(f"[data-testid='question-{keys[0]}']")
        for key in keys:
            page.check(f"[data-testid='{key}-{ANSWERS[key]}']")
        if step == 2:
            page.wait_for_selector("[data-testid='live-risk']:has-text('65.27%')")
            shot(journey, "06-assessment-wizard")
        else:
            category = scoring.CATEGORIES[step].key
            # The live panel shows the sub-score once the category is complete.
            expect(page.locator(f"[data-testid='sub-{category}']")).to_have_text(re.compile(r"^\d"))
        page.click("[data-testid='wizard-next']")
    page.wait_for_selector("[data-testid='review-risk']")
    assert page.inner_text("[data-testid='review-risk']").strip() == "65.27%"
    shot(journey, "07-assessment-review")
    page.click("[data-testid='wizard-save']")
    page.wait_for_selector("[data-testid='version-1']")
    assert "Tier 3 · High" in page.inner_text("[data-testid='current-profile']")
    shot(journey, "08-assessment-saved")
    agent.refresh_from_db()
    assert (agent.risk_tier, str(agent.risk_percent)) == (3, "65.27")

    # A key: shown once on the answer to the POST, then never again.
    page.click("nav.tabs >> text=Adapt")
    page.fill("input[name='label']", "invoice-runner")
    page.click("button:has-text('Issue a new key')")
    full_key = page.inner_text("[data-testid='new-key']").strip()
    assert re.fullmatch(r"wdn_live_[A-Za-z0-9]{8}_\S+", full_key), full_key
    key = ApiKey.objects.get(agent=agent)
    assert key.label == "invoice-runner" and full_key.startswith(f"wdn_live_{key.prefix}_")
    assert full_key not in (key.key_hash, key.prefix)  # only a keyed hash is kept
    shot(journey, "09-key-issued")

    # The key works: the agent opens a session with it, which the Adapt tab then lists.
    api = AgentApi(asgi_server, full_key)
    session_id = api.open_session(goal="review invoices")
    page.click("a:has-text('Done')")
    page.wait_for_url(f"**/agents/{agent.id}/tab/adapt/")
    expect(page.locator("text=invoice-runner")).to_be_visible()
    expect(page.locator(f"text=wdn_live_{key.prefix}_…")).to_be_visible()
    expect(page.locator(f"text={session_id[:10]}")).to_be_visible()
    assert full_key not in page.content()
    page.reload()
    assert full_key not in page.content()
    shot(journey, "10-agent-keys")


# --- 3. approvals, live ----------------------------------------------------------------------
def test_approvals_arrive_live_and_are_decided_with_keys_and_buttons(
    asgi_server, journey, make_operator, make_agent, admin_user
):
    owner = make_operator("oncall", username="olga", password=PASSWORD)
    make_operator("reviewer", username="rita", password=PASSWORD)
    agent, key = _keyed_agent(
        make_agent, admin_user, "procurement-bot", tier=3, owner=owner, scope=PROCUREMENT_SCOPE
    )
    api = AgentApi(asgi_server, key)
    session_id = api.open_session(goal="commit contracts")
    page = journey.page
    login(page, asgi_server, "rita", PASSWORD)
    page.click("header.top nav >> text=Approvals")
    page.wait_for_selector("#live-indicator:has-text('live')")  # the queue socket is up
    page.wait_for_selector("[data-testid='queue-empty']")
    shot(journey, "11-approvals-empty")

    def ask(target: str, amount: str) -> dict:
        answer = api.propose(
            session_id,
            "contract.commit",
            target=target,
            amount=amount,
            currency="USD",
            args={"vendor": target, "contract": f"C-{amount[:3]}"},
        )
        assert answer["verdict"] == "REQUIRE_APPROVAL", answer
        return answer

    # A proposal while the page is open: the card appears without a reload.
    opened = time.monotonic()
    proposal = ask("vendor:acme", "120000.00")
    first = proposal["approval_id"]
    card = page.locator(f"#approval-{first}")
    card.wait_for(timeout=2_000)
    print(f"card visible {1000 * (time.monotonic() - opened):.0f} ms after the proposal")
    expect(card.locator(".action-name")).to_have_text("contract.commit")
    expect(card.locator("pre.args")).to_contain_text("C-120")
    expect(page.locator("#pending-badge")).to_have_text(re.compile(r"\b1\b"))
    shot(journey, "12-approvals-live-card")

    # Decided from the keyboard while the agent long-polls for the answer.
    with ThreadPoolExecutor(1) as pool:
        waiting = pool.submit(api.approval, first, 30)
        time.sleep(0.3)
        assert not waiting.done()  # held by the server
        page.keyboard.press("j")
        page.keyboard.press("a")
        answer = waiting.result(timeout=10)
    assert (answer["status"], answer["decided_by"]) == ("approved", "rita")
    card.wait_for(state="detached")
    # Approved, the action runs and its result is accepted.
    api.report(session_id, proposal["action_id"], {"committed": True})

    # Rejected with the button: the dialog asks for the reason.
    second = ask("vendor:globex", "480000.00")["approval_id"]
    page.click(f"[data-testid='reject-{second}']")
    page.wait_for_selector("#modal[open] #modal-body #id_comment")
    page.fill("#modal-body #id_comment", "vendor not vetted")
    shot(journey, "13-approvals-reject-dialog")
    page.click("[data-testid='confirm-reject']")
    page.wait_for_selector(f"#approval-{second}", state="detached")
    assert api.approval(second)["status"] == "rejected"
    assert ApprovalRequest.objects.get(pk=second).comment == "vendor not vetted"

    page.wait_for_selector("#modal", state="hidden")  # the dialog closes by itself

    # Approved with the button, with a comment; a request arriving while the reviewer types
    # re-fetches the queue, and the comment (and the focus) survive it.
    third = ask("vendor:initech", "130000.00")["approval_id"]
    comment = page.locator(f"#approval-{third} input[name='comment']")
    comment.fill("within the quarter's")
    fourth = ask("vendor:hooli", "140000.00")["approval_id"]
    page.wait_for_selector(f"#approval-{fourth}")
    expect(comment).to_have_value("within the quarter's")
    expect(comment).to_be_focused()
    page.keyboard.type(" budget")  # the typing just goes on
    page.click(f"[data-testid='approve-{third}']")
    page.wait_for_selector(f"#approval-{third}", state="detached")
    decided = ApprovalRequest.objects.get(pk=third)
    assert decided.status == "approved" and decided.comment == "within the quarter's budget"

    # Rejected from the keyboard: r asks for the reason.
    page.locator("main h1").click()  # out of the comment field, so keys are shortcuts again
    page.keyboard.press("j")
    page.keyboard.press("r")
    page.wait_for_selector("#modal[open] #modal-body #id_comment")
    page.fill("#modal-body #id_comment", "one commitment a day")
    page.click("[data-testid='confirm-reject']")
    page.wait_for_selector(f"#approval-{fourth}", state="detached")
    assert ApprovalRequest.objects.get(pk=fourth).status == "rejected"
    page.wait_for_selector("[data-testid='queue-empty']")
    expect(page.locator("#pending-badge")).to_have_text(re.compile(r"\b0\b"))
    shot(journey, "14-approvals-decided")


# --- 4. containment from three places --------------------------------------------------------
def test_pause_resume_and_revoke_from_the_list_the_detail_and_the_queue(
    asgi_server, journey, make_operator, make_agent, admin_user
):
    make_operator("oncall", username="ona", password=PASSWORD)
    agent, key = _keyed_agent(
        make_agent, admin_user, "procurement-bot", tier=3, scope=PROCUREMENT_SCOPE
    )
    make_agent("helpdesk")
    api = AgentApi(asgi_server, key)
    session_id = api.open_session(goal="commit contracts")
    pending = api.propose(
        session_id, "contract.commit", target="vendor:acme", amount="99000.00", currency="USD"
    )["approval_id"]
    page = journey.page
    login(page, asgi_server, "ona", PASSWORD)

    def contain(where: str, action: str, reason: str, confirm_name: str | None = None) -> None:
        page.click(f"{where} [data-testid='{action}-procurement-bot']")
        page.wait_for_selector(f"#modal[open] [data-testid='confirm-{action}']")
        page.fill("#modal-body #id_reason", reason)
        if confirm_name is not None:
            page.fill("#modal-body #id_confirm_name", confirm_name)
        page.click(f"[data-testid='confirm-{action}']")

    def status() -> str:
        return Agent.objects.get(pk=agent.pk).status

    # The list: pause, resume; the row updates in place.
    page.click("header.top nav >> text=Agents")
    shot(journey, "15-agents-list")
    page.click("[data-testid='pause-procurement-bot']")
    page.wait_for_selector("#modal[open] #id_reason")
    shot(journey, "16-pause-dialog")
    page.click("#modal-body [data-close-dialog]")  # Cancel: nothing happens
    page.wait_for_selector("#modal", state="hidden")
    assert status() == "active"
    contain("#agent-rows", "pause", "drifting into contract commits")
    _close_dialog_done(page)
    page.wait_for_selector("[data-testid='status-procurement-bot']:has-text('Paused')")
    assert status() == "paused"
    contain("#agent-rows", "resume", "false alarm")
    _close_dialog_done(page)
    page.wait_for_selector("[data-testid='status-procurement-bot']:has-text('Active')")
    assert status() == "active"

    # The detail page: pause, resume; the header follows.
    page.click("#agent-rows a:has-text('procurement-bot')")
    page.wait_for_url(f"**/agents/{agent.id}/")
    contain("#agent-header", "pause", "second look")
    _close_dialog_done(page)
    page.wait_for_selector("[data-testid='detail-status']:has-text('Paused')")
    shot(journey, "17-agent-detail-paused")
    contain("#agent-header", "resume", "looked fine")
    _close_dialog_done(page)
    page.wait_for_selector("[data-testid='detail-status']:has-text('Active')")
    assert status() == "active"
    history = page.locator("text=Containment history").locator("..")
    expect(history).to_contain_text("second look")

    # The queue: the card of the waiting request carries the agent's buttons too.
    page.click("header.top nav >> text=Approvals")
    card = f"#approval-{pending}"
    page.wait_for_selector(card)
    contain(card, "pause", "pause it from the queue")
    _close_dialog_done(page)
    page.wait_for_selector(f"{card} [data-testid='resume-procurement-bot']")
    assert status() == "paused"
    contain(card, "resume", "resume it from the queue")
    _close_dialog_done(page)
    page.wait_for_selector(f"{card} [data-testid='pause-procurement-bot']")
    assert status() == "active"
    # Revoke is destructive: the agent's name must be typed, a wrong one is refused.
    journey.problems.allow(r"status of 400")
    contain(card, "revoke", "confirmed rogue", confirm_name="procurement")
    expect(page.locator("#modal-body .field-error")).to_contain_text("Type the agent's name")
    assert status() == "active"
    shot(journey, "18-queue-revoke-refused")
    page.fill("#modal-body #id_confirm_name", "procurement-bot")
    page.click("[data-testid='confirm-revoke']")
    _close_dialog_done(page)
    page.wait_for_selector(card, state="detached")  # its request is cancelled
    page.wait_for_selector("[data-testid='queue-empty']")
    shot(journey, "19-queue-after-revoke")
    assert status() == "revoked"
    assert ApprovalRequest.objects.get(pk=pending).status == "cancelled"
    # Every key stops working at once.
    refused = api.http.post("/sessions", json={"goal": "again"})
    assert refused.status_code in (401, 403), refused.text
    page.goto(asgi_server.url + "/agents/")
    page.wait_for_selector("[data-testid='status-procurement-bot']:has-text('Revoked')")
    assert page.locator("[data-testid='resume-procurement-bot']").count() == 0
    assert page.locator("[data-testid='pause-helpdesk']").count() == 1  # the others untouched


def test_revoke_an_operator_token_from_settings(asgi_server, journey, make_operator):
    admin = make_operator("admin", username="ada", password=PASSWORD)
    bot = make_operator("compliance", username="export-bot")
    token, full = console_services.issue_operator_token(bot, by=admin)
    operator_api = httpx.Client(
        base_url=asgi_server.url + "/api/v1", headers={"Authorization": f"Token {full}"}
    )
    assert operator_api.get("/agents").status_code == 200
    page = journey.page
    login(page, asgi_server, "ada", PASSWORD)

    page.click("header.top nav >> text=Settings")
    row = f"[data-testid='token-row-{token.prefix}']"
    expect(page.locator(row)).to_contain_text("active")
    expect(page.locator("#signing-keys")).to_contain_text("signing")
    page.click(f"[data-testid='revoke-token-{token.prefix}']")
    page.click("[data-testid='confirm-revoke-token']")  # no reason: the browser refuses
    assert operator_api.get("/agents").status_code == 200
    page.fill("#id_reason", "the export job moved to another account")
    shot(journey, "35-token-revoke")
    page.click("[data-testid='confirm-revoke-token']")
    page.wait_for_url(asgi_server.url + "/settings/#tokens")
    expect(page.locator(row)).to_contain_text("revoked")
    assert page.locator(f"[data-testid='revoke-token-{token.prefix}']").count() == 0
    assert operator_api.get("/agents").status_code == 401


def test_create_an_operator_who_logs_in_and_changes_the_password(
    asgi_server, journey, browser, make_operator
):
    make_operator("admin", username="ada", password=PASSWORD)
    page = journey.page
    login(page, asgi_server, "ada", PASSWORD)
    page.click("header.top nav >> text=Settings")
    page.click("[data-testid='new-operator']")
    page.fill("#id_username", "oscar")
    page.check("[data-testid='role-oncall']")
    page.fill("#id_reason", "joins the on-call rota")
    page.click("[data-testid='create-operator']")
    first_password = page.inner_text("[data-testid='new-password']").strip()
    shot(journey, "37-operator-created")

    oscar_context = browser.new_context(viewport=VIEWPORT)
    oscar = oscar_context.new_page()
    try:
        login(oscar, asgi_server, "oscar", first_password)
        oscar.click("header.top .who a.who-name")
        oscar.fill("#id_old_password", first_password)
        oscar.fill("#id_new_password1", "oscar's own passphrase")
        oscar.fill("#id_new_password2", "oscar's own passphrase")
        oscar.click("[data-testid='change-password']")
        expect(oscar.locator(".messages")).to_contain_text("Password changed.")
        oscar.click("header.top button:has-text('Log out')")
        login(oscar, asgi_server, "oscar", "oscar's own passphrase")
        expect(oscar.locator("header.top .who")).to_contain_text("oscar")
    finally:
        oscar_context.close()


def test_change_an_operators_roles_then_deactivate_them(
    asgi_server, journey, browser, make_operator, make_agent
):
    make_operator("admin", username="ada", password=PASSWORD)
    make_agent("helpdesk")
    make_operator("reviewer", username="rita", password=PASSWORD)
    # rita is logged in elsewhere: a reviewer, she gets no containment buttons.
    rita_context = browser.new_context(viewport=VIEWPORT)
    rita_page = rita_context.new_page()
    login(rita_page, asgi_server, "rita", PASSWORD)
    rita_page.goto(asgi_server.url + "/agents/")
    assert rita_page.locator("[data-testid='pause-helpdesk']").count() == 0
    page = journey.page
    login(page, asgi_server, "ada", PASSWORD)

    page.click("header.top nav >> text=Settings")
    page.click("[data-testid='operator-row-rita'] a")
    page.wait_for_url(asgi_server.url + "/settings/operators/rita/")
    page.uncheck("[data-testid='role-reviewer']")
    page.check("[data-testid='role-oncall']")
    page.fill("#id_roles_reason", "moves to the on-call rota")
    page.click("[data-testid='save-roles']")
    expect(page.locator(".messages")).to_contain_text("Roles of rita changed.")
    assert page.is_checked("[data-testid='role-oncall']")
    assert not page.is_checked("[data-testid='role-reviewer']")
    shot(journey, "36-operator-roles")
    # On call now, on her next request.
    rita_page.reload()
    assert rita_page.locator("[data-testid='pause-helpdesk']").count() == 1

    page.fill("#id_active_reason", "left the company")
    page.click("[data-testid='deactivate']")
    expect(page.locator("[data-testid='operator-status']")).to_have_text("deactivated")
    page.wait_for_selector("[data-testid='reactivate']")
    rita_page.goto(asgi_server.url + "/agents/")
    rita_page.wait_for_url(re.compile(r"/login/\?next=/agents/$"))  # logged out
    rita_context.close()
    rita = get_user_model().objects.get(username="rita")
    assert not rita.is_active and console_services.operator_roles(rita) == ["oncall"]


# --- 5–7. audit: filter and export, replay, incident -------------------------------------------
@pytest.fixture
def traffic(asgi_server, make_operator, make_agent, admin_user):
    """One governed session of the procurement agent, through the real API, and another
    agent's session to filter out."""
    reviewer = make_operator("reviewer", username="rita", password=PASSWORD)
    make_operator("compliance", username="carla", password=PASSWORD)
    agent, key = _keyed_agent(
        make_agent, admin_user, "procurement-bot", tier=3, scope=PROCUREMENT_SCOPE
    )
    api = AgentApi(asgi_server, key)
    session_id = api.open_session(goal="review invoices")
    read = api.propose(session_id, "invoice.read", target="vendor:acme", args={"invoice": "I-7"})
    api.report(session_id, read["action_id"], {"total": "42000.00"})
    flag = api.propose(session_id, "invoice.flag", target="vendor:globex", args={"invoice": "I-9"})
    api.report(session_id, flag["action_id"], {"flagged": True})
    blocked = api.propose(
        session_id, "payment.release", target="vendor:globex", amount="42000.00", currency="USD"
    )
    commit = api.propose(
        session_id, "contract.commit", target="vendor:globex", amount="95000.00", currency="USD"
    )
    assert [read["verdict"], flag["verdict"], blocked["verdict"], commit["verdict"]] == [
        "ALLOW",
        "ALLOW",
        "BLOCK",
        "REQUIRE_APPROVAL",
    ]
    request = ApprovalRequest.objects.get(pk=commit["approval_id"])
    in_thread_of_its_own(
        approval_services.decide, request, by=reviewer, decision="approve", comment="vetted"
    )
    api.report(session_id, commit["action_id"], {"contract": "C-95"})
    api.end(session_id)

    _, other_key = _keyed_agent(make_agent, admin_user, "helpdesk")
    other = AgentApi(asgi_server, other_key)
    other_session = other.open_session(goal="tickets")
    other.propose(other_session, "ticket.read", target="queue:globex-support")
    other.end(other_session)
    return SimpleNamespace(agent=agent, session_id=session_id)


def test_filter_the_audit_log_and_download_exports(asgi_server, journey, traffic):
    page = journey.page
    login(page, asgi_server, "carla", PASSWORD)
    page.click("header.top nav >> text=Audit")
    rows = page.locator("[data-testid='log-row']")
    rows.first.wait_for()
    everything = rows.count()
    shot(journey, "20-audit-log")

    # Filters change the results in place; the address bar follows.
    page.select_option("#f-verdict", "BLOCK")
    expect(page).to_have_url(re.compile(r"verdict=BLOCK"))
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("procurement-bot")
    expect(page.locator("#results")).to_contain_text("payment.release")
    page.select_option("#f-verdict", "")
    page.select_option("#f-agent", label="procurement-bot")
    page.fill("#f-q", "globex")
    expect(page).to_have_url(re.compile(r"q=globex"))
    expect(rows.filter(has_not_text="procurement-bot")).to_have_count(0)
    filtered = rows.count()
    assert 0 < filtered < everything
    shot(journey, "21-audit-log-filtered")

    # CSV: the download holds exactly the filtered events, with every field.
    with page.expect_download() as download_info:
        page.click("[data-testid='export-csv']")
    download = download_info.value
    assert download.suggested_filename.endswith(".csv")
    with open(download.path(), encoding="utf-8", newline="") as handle:
        exported = list(csv.DictReader(handle))
    assert len(exported) == filtered
    assert {row["agent_id"] for row in exported} == {str(traffic.agent.id)}
    assert all("globex" in "".join(row.values()).lower() for row in exported)
    verdicts = {row["event_type"]: set() for row in exported}
    for row in exported:
        verdicts[row["event_type"]].add(row["verdict"])
    assert {"ALLOW", "BLOCK", "REQUIRE_APPROVAL"} <= verdicts["action.evaluated"]
    seqs = [int(row["seq"]) for row in exported]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    export = Export.objects.get(format="csv")
    assert export.status == "done" and export.manifest["row_count"] == filtered

    # Excel: the same filter, delivered as a workbook.
    with page.expect_download() as download_info:
        page.click("[data-testid='export-xlsx']")
    download = download_info.value
    assert download.suggested_filename.endswith(".xlsx")
    import openpyxl

    with open(download.path(), "rb") as handle:
        workbook = openpyxl.load_workbook(io.BytesIO(handle.read()), read_only=True)
    sheet = workbook.worksheets[0]
    values = [row for row in sheet.iter_rows(values_only=True) if any(row)]
    assert values[0][:3] == ("seq", "id", "timestamp")
    assert len(values) - 1 == filtered
    xlsx = Export.objects.get(format="xlsx")
    assert xlsx.manifest["row_count"] == filtered
    # Its page: the manifest, the filter it was made with, the file to download again.
    page.goto(asgi_server.url + f"/audit/exports/{xlsx.id}/")
    expect(page.locator("[data-testid='export-progress']")).to_have_attribute("data-status", "done")
    expect(page.locator("main")).to_contain_text(f'"row_count": {filtered}')
    shot(journey, "22-audit-export")

    # One event in full.
    page.goto(asgi_server.url + "/audit/?verdict=BLOCK")
    page.click("[data-testid='log-row'] a:has-text('action.evaluated')")
    page.wait_for_url(re.compile(r"/audit/events/"))
    expect(page.locator("main")).to_contain_text("payment.release")
    shot(journey, "23-audit-event")


def test_replay_a_session(asgi_server, journey, traffic):
    page = journey.page
    login(page, asgi_server, "carla", PASSWORD)
    page.goto(asgi_server.url + f"/audit/sessions/{traffic.session_id}/")
    steps = page.locator("#replay-steps .step")
    total = steps.count()
    position = page.locator("[data-testid='replay-position']")
    expect(position).to_have_text(f"1 / {total}")  # it starts at the first step
    assert page.locator("#replay-steps .step:visible").count() == 1
    texts = steps.all_inner_texts()
    order = [
        next(i for i, text in enumerate(texts) if name in text)
        for name in ("invoice.read", "invoice.flag", "payment.release", "contract.commit")
    ]
    assert order == sorted(order), texts  # in the order the agent proposed them
    assert "session.started" in texts[0] and "session.ended" in texts[-1]

    page.click("[data-testid='replay-step']")
    expect(position).to_have_text(f"2 / {total}")
    page.keyboard.press("ArrowRight")
    expect(position).to_have_text(f"3 / {total}")
    page.click("[data-testid='replay-back']")
    expect(position).to_have_text(f"2 / {total}")
    page.select_option("[data-testid='replay-speed']", "2")
    page.click("[data-testid='replay-play']")
    expect(position).to_have_text(re.compile(r"^[4-9]\d* /"), timeout=8_000)
    page.click("[data-testid='replay-play']")  # pause
    paused_at = position.inner_text()
    page.wait_for_timeout(700)
    assert position.inner_text() == paused_at
    shot(journey, "24-session-replay")
    page.keyboard.press("End")
    expect(position).to_have_text(f"{total} / {total}")
    expect(page.locator("#replay-steps .step.current")).to_contain_text("session.ended")
    assert page.locator("#replay-steps .step:visible").count() == total
    shot(journey, "25-session-replay-end")


def test_open_the_incident_timeline(asgi_server, journey, traffic):
    page = journey.page
    login(page, asgi_server, "carla", PASSWORD)
    page.goto(asgi_server.url + f"/audit/sessions/{traffic.session_id}/")
    page.click("[data-testid='incident-link']")
    page.wait_for_selector("[data-testid='incident-totals']")
    expect(page.locator("h1")).to_contain_text("procurement-bot")
    expect(page.locator("[data-testid='total-actions']")).to_have_text("4")
    assert page.inner_text("[data-testid='total-committed']").startswith("95000.00 USD")
    expect(page.locator("[data-testid='incident-totals']")).to_contain_text("42000.00 USD")
    expect(page.locator("[data-testid='total-approvals']")).to_have_text("1")
    assert int(page.inner_text("[data-testid='total-violations']")) >= 1
    timeline = page.locator("[data-testid='entry']")
    assert timeline.count() >= 8
    assert "helpdesk" not in page.inner_text("[data-testid='incident-timeline']")
    assert page.locator("a.proof-link").count() == 1
    # This agent has no trust score yet: its absence reads as a dash, never Python's None.
    for part in ("incident-totals", "incident-timeline"):
        assert not re.search(r"\bNone\b", page.inner_text(f"[data-testid='{part}']")), part
    shot(journey, "26-incident-timeline")
    proof = page.request.get(asgi_server.url + f"/audit/sessions/{traffic.session_id}/proof.json")
    assert proof.ok and proof.json()["format"] == "warden-proof-v1"


# --- 8. every other page ------------------------------------------------------------------------
def test_every_other_page_renders_clean(asgi_server, journey, make_operator, traffic):
    make_operator("admin", username="ada", password=PASSWORD)
    page = journey.page
    login(page, asgi_server, "ada", PASSWORD)
    agent = traffic.agent
    pages = [
        ("27-dashboard-admin", "/", "main h1"),
        ("28-agent-authorize-tab", f"/agents/{agent.id}/tab/authorize/", "#tab"),
        ("29-agent-monitor-tab", f"/agents/{agent.id}/tab/monitor/", "#tab"),
        ("30-agent-verify-tab", f"/agents/{agent.id}/tab/verify/", "#tab"),
        ("31-agent-assess-tab", f"/agents/{agent.id}/tab/assess/", "#tab"),
        ("32-policies", "/policies/", "main h1"),
        ("33-settings", "/settings/", "main h1"),
        ("34-api-docs", "/api/docs/", "#swagger-ui .info"),
    ]
    for name, path, ready in pages:
        response = page.goto(asgi_server.url + path)
        assert response is not None and response.status == 200, (path, response)
        page.wait_for_selector(ready)
        shot(journey, name)
