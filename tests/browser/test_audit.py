"""Compliance in a real browser (SPEC §7): filter the log in place, export the filter as CSV,
replay a session (play, pause, step), open the incident timeline.

The sessions are synthetic (tests/audit/synthetic.py) until the pipeline lands; the same
test then runs on the procurement scenario's traffic.
"""

import csv
import re

import pytest
from playwright.sync_api import expect

from audit.models import Export
from tests.audit.synthetic import Step, governed_session, procurement_steps
from tests.liveserver import login, screenshot

pytestmark = pytest.mark.browser


def test_filter_export_replay_and_incident(asgi_server, page, make_operator, make_agent):
    make_operator("compliance", username="carla", password="pw-for-carla-123")
    agent = make_agent("procurement-bot", tier=3)
    session = governed_session(agent, procurement_steps(), end="halted")
    governed_session(make_agent("helpdesk"), [Step("ticket.read", "queue:support")])
    login(page, asgi_server, "carla", "pw-for-carla-123")

    # Filter: the results change in place and the address bar follows.
    page.goto(asgi_server.url + "/audit/")
    all_rows = page.locator("[data-testid='log-row']").count()
    page.select_option("#f-verdict", "BLOCK")
    expect(page).to_have_url(re.compile(r"verdict=BLOCK"))  # hx-push-url, no reload
    expect(page.locator("[data-testid='log-row']")).to_have_count(1)
    assert "payment.* is excluded" in page.inner_text("#results")
    page.select_option("#f-verdict", "")
    page.select_option("#f-agent", label="procurement-bot")
    page.fill("#f-q", "globex")
    expect(page).to_have_url(re.compile(r"q=globex"))
    expect(page.locator("[data-testid='log-row']", has_not_text="procurement-bot")).to_have_count(0)
    rows = page.locator("[data-testid='log-row']").count()
    assert 0 < rows < all_rows
    screenshot(page, "audit-log-filtered")

    # Export the filter as CSV: a streamed download with every field.
    with page.expect_download() as download_info:
        page.click("[data-testid='export-csv']")
    download = download_info.value
    assert download.suggested_filename.endswith(".csv")
    with open(download.path(), encoding="utf-8", newline="") as handle:
        exported = list(csv.reader(handle))
    assert exported[0][:3] == ["seq", "id", "timestamp"]
    assert len(exported) - 1 == rows
    assert all("globex" in (row[11] + row[12]).lower() for row in exported[1:])
    export = Export.objects.get()
    assert export.status == "done" and export.manifest["row_count"] == rows

    # Replay the session: it starts at the first step; step, play, pause.
    page.goto(asgi_server.url + f"/audit/sessions/{session.id}/")
    total = page.locator("#replay-steps .step").count()
    position = page.locator("[data-testid='replay-position']")
    assert position.inner_text() == f"1 / {total}"
    assert page.locator("#replay-steps .step:visible").count() == 1
    page.click("[data-testid='replay-step']")
    assert position.inner_text() == f"2 / {total}"
    page.click("[data-testid='replay-back']")
    assert position.inner_text() == f"1 / {total}"
    page.select_option("[data-testid='replay-speed']", "2")
    page.click("[data-testid='replay-play']")
    expect(position).to_have_text(re.compile(r"^4 /"), timeout=8000)
    page.click("[data-testid='replay-play']")  # pause
    paused_at = position.inner_text()
    page.wait_for_timeout(1000)
    assert position.inner_text() == paused_at
    assert page.locator("#replay-steps .step:visible").count() == int(paused_at.split(" /")[0])
    screenshot(page, "session-replay")
    page.keyboard.press("End")
    assert position.inner_text() == f"{total} / {total}"
    assert "session.halted" in page.inner_text("#replay-steps .step.current")

    # The incident timeline for the agent, with every session's proof certificate.
    page.click("[data-testid='incident-link']")
    page.wait_for_selector("[data-testid='incident-totals']")
    assert "procurement-bot" in page.inner_text("h1")
    assert page.inner_text("[data-testid='total-committed']").startswith("95000.00 USD")
    assert page.locator("[data-testid='entry']").count() > 10
    assert page.locator("a.proof-link").count() == 1
    screenshot(page, "incident-timeline")
    page.emulate_media(media="print")
    assert not page.locator("form[data-testid='incident-form']").is_visible()
    pdf_text = page.locator(".print-only").first.inner_text()
    assert f"/api/v1/sessions/{session.id}/proof" in pdf_text
    page.emulate_media(media="screen")
    cert = page.request.get(asgi_server.url + f"/audit/sessions/{session.id}/proof.json")
    assert cert.ok and cert.json()["format"] == "warden-proof-v1"
