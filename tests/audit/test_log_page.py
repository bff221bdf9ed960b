"""The audit log page and the events API (SPEC §7): every filter, free text, keyset pages,
HTMX partials, one event in full."""

from __future__ import annotations

import uuid

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from audit.models import GovernanceEvent
from audit.services import record
from tests.audit.synthetic import Step, governed_session, procurement_steps
from tests.helpers import PRODUCTION, client_for, integrate


@pytest.fixture
def story(make_agent, admin_user):
    procurement = make_agent("procurement", tier=3)
    other = make_agent("helpdesk", tier=1)
    session = governed_session(procurement, procurement_steps(), end="halted")
    governed_session(other, [Step("ticket.read", "queue:support", args={"t": "T-9"})])
    with transaction.atomic():
        record(
            "policy.changed",
            actor="user:alice",
            reason="Raised the spend limit for Q4",
            payload={"id": "p1", "name": "spend-limit", "mode": "enforce", "version": 2},
        )
    integrate()
    return {"procurement": procurement, "other": other, "session": session}


@pytest.fixture
def viewer(client, make_operator):
    client.force_login(make_operator("viewer"))
    return client


def page_events(response) -> list[GovernanceEvent]:
    assert response.status_code == 200, response.content[:500]
    return response.context["page"].events


def test_the_log_lists_newest_first_with_seq(viewer, story):
    events = page_events(viewer.get("/audit/"))
    assert [e.arrival for e in events] == sorted((e.arrival for e in events), reverse=True)
    assert events[0].event_type == "policy.changed"
    assert all(e.log.seq for e in events)


@pytest.mark.parametrize(
    ("params", "check"),
    [
        ({"event_type": "action.evaluated"}, lambda e, s: e.event_type == "action.evaluated"),
        (
            {"event_type": ["approval.requested", "approval.decided"]},
            lambda e, s: e.event_type in ("approval.requested", "approval.decided"),
        ),
        ({"verdict": "block"}, lambda e, s: e.verdict == "BLOCK"),
        ({"result": "denied"}, lambda e, s: e.result == "denied"),
        ({"actor": "user:alice"}, lambda e, s: e.actor == "user:alice"),
        ({"agent": "procurement"}, lambda e, s: e.agent_id == s["procurement"].id),
        ({"session": "session"}, lambda e, s: e.session_id == s["session"].id),
    ],
    ids=["type", "types", "verdict", "result", "actor", "agent", "session"],
)
def test_each_filter_narrows_the_log(viewer, story, params, check):
    query = {k: (str(story[v].id) if k in ("agent", "session") else v) for k, v in params.items()}
    events = page_events(viewer.get("/audit/", query))
    everything = page_events(viewer.get("/audit/"))
    assert events, params
    assert len(events) < len(everything)
    assert all(check(e, story) for e in events)
    expected = [e for e in everything if check(e, story)]
    assert [e.pk for e in events] == [e.pk for e in expected]


def test_date_range_filters_on_the_event_time(viewer, story):
    events = page_events(viewer.get("/audit/"))
    middle = sorted(e.timestamp for e in events)[len(events) // 2]
    stamp = middle.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    later = page_events(viewer.get("/audit/", {"from": stamp}))
    earlier = page_events(viewer.get("/audit/", {"to": stamp}))
    assert all(e.timestamp >= middle for e in later)
    assert all(e.timestamp < middle for e in earlier)
    assert len(later) + len(earlier) == len(events)
    today = middle.strftime("%Y-%m-%d")
    assert len(page_events(viewer.get("/audit/", {"from": today, "to": today}))) == len(events)


def test_filters_combine(viewer, story):
    events = page_events(
        viewer.get(
            "/audit/",
            {
                "agent": str(story["procurement"].id),
                "event_type": "action.evaluated",
                "verdict": "HALT",
            },
        )
    )
    assert len(events) == 1 and events[0].payload["action"]["target"] == "vendor:initech"


def test_free_text_finds_reasons_and_payloads_case_insensitively(viewer, story):
    in_payload = page_events(viewer.get("/audit/", {"q": "VENDOR:GLOBEX"}))
    assert in_payload and all("vendor:globex" in e.payload_json for e in in_payload)
    in_reason = page_events(viewer.get("/audit/", {"q": "spend limit for q4"}))
    assert [e.event_type for e in in_reason] == ["policy.changed"]
    assert page_events(viewer.get("/audit/", {"q": "100%_"})) == []  # wildcards are literal


def test_bad_filters_are_refused_naming_each_field(viewer, story, api):
    bad = {
        "from": "yesterday",
        "agent": "procurement",
        "verdict": "MAYBE",
        "q": "ab",
        "event_type": "DROP TABLE",
        "actor": "mallory",
    }
    page = viewer.get("/audit/", bad)
    assert page.status_code == 400
    assert set(page.context["errors"]) == set(bad)
    response = api.get("/api/v1/events", bad)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid"
    assert set(response.json()["error"]["fields"]) == set(bad)
    assert api.get("/api/v1/events", {"limit": "0"}).json()["error"]["fields"]["limit"]


def test_keyset_pages_walk_every_event_once_and_never_use_offset(viewer, db):
    with transaction.atomic():
        for i in range(130):
            record("test.page", actor="system:test", reason=f"event {i}")
    integrate()
    seen = []
    url = "/audit/?event_type=test.page"
    with CaptureQueriesContext(connection) as queries:
        while url:
            response = viewer.get(url)
            page = response.context["page"]
            seen.extend(e.reason for e in page.events)
            url = f"/audit/?event_type=test.page&before={page.older}" if page.older else None
    assert seen == [f"event {i}" for i in reversed(range(130))]
    assert not [q["sql"] for q in queries.captured_queries if "OFFSET" in q["sql"].upper()]
    # And back: the second page's "newer" cursor leads to the first page again.
    first = viewer.get("/audit/?event_type=test.page").context["page"]
    second = viewer.get(f"/audit/?event_type=test.page&before={first.older}").context["page"]
    back = viewer.get(f"/audit/?event_type=test.page&after={second.newer}").context["page"]
    assert [e.pk for e in back.events] == [e.pk for e in first.events]
    assert back.newer is None


def test_htmx_filtering_renders_only_the_results(viewer, story):
    headers = {"HTTP_HX_REQUEST": "true", "HTTP_HX_TARGET": "results"}
    partial = viewer.get("/audit/", {"verdict": "HALT"}, **headers)
    body = partial.content.decode()
    assert partial.status_code == 200
    assert body.lstrip().startswith('<div id="results"') and "<html" not in body
    assert "vendor:initech" not in body or "HALT" in body
    # The pushed URL is a real page: reloading it (or restoring history) gets the full page.
    restored = viewer.get(
        "/audit/", {"verdict": "HALT"}, HTTP_HX_HISTORY_RESTORE_REQUEST="true", **headers
    )
    assert "<html" in restored.content.decode()
    full = viewer.get("/audit/", {"verdict": "HALT"}).content.decode()
    assert 'hx-push-url="true"' in full and 'value="HALT" selected' in full


def test_a_row_opens_the_full_event(viewer, story):
    event = GovernanceEvent.objects.filter(event_type="action.evaluated", verdict="BLOCK").get()
    listing = viewer.get("/audit/").content.decode()
    assert f"/audit/events/{event.id}/" in listing
    page = viewer.get(f"/audit/events/{event.id}/")
    body = page.content.decode()
    assert page.status_code == 200
    for text in (
        event.log.leaf_hash,
        event.log.prev_hash,
        event.log.signature,
        event.log.key_id,
        f"/audit/sessions/{event.session_id}/",
        f"/agents/{event.agent_id}/",
        "payment.release",
        "✓ matches the content",
        "✓ verifies",
    ):
        assert text in body, text


def test_an_evaluated_action_shows_its_decision_layer_by_layer(viewer, story):
    event = GovernanceEvent.objects.filter(event_type="action.evaluated", verdict="BLOCK").get()
    page = viewer.get(f"/audit/events/{event.id}/")
    decision = page.content.decode().split('data-testid="event-decision"')[1]
    decision = decision.split('data-testid="event-payload"')[0]
    layers = event.payload["layers"]
    assert layers and any(layer["verdict"] == "BLOCK" for layer in layers)
    for layer in layers:
        assert f'<td class="mono">{layer["source"]}</td>' in decision, layer
    assert f"({event.payload['source']})" in decision
    assert "payment.release" in decision
    other = GovernanceEvent.objects.get(event_type="policy.changed")
    assert (
        'data-testid="event-decision"'
        not in viewer.get(f"/audit/events/{other.id}/").content.decode()
    )


def test_an_event_not_integrated_yet_says_so(viewer, db):
    with transaction.atomic():
        event = record("test.pending", actor="system:test")
    body = viewer.get(f"/audit/events/{event.id}/").content.decode()
    assert "Waiting for the integrator" in body
    assert viewer.get(f"/audit/events/{uuid.uuid4()}/").status_code == 404
    assert viewer.get("/audit/events/not-a-uuid/").status_code == 404


def test_the_events_api_takes_the_same_filter(story, make_operator):
    client = client_for(make_operator("viewer"))
    body = client.get(
        "/api/v1/events", {"agent": str(story["procurement"].id), "verdict": "REQUIRE_APPROVAL"}
    ).json()
    assert len(body["results"]) == 2
    assert {r["payload"]["action"]["target"] for r in body["results"]} == {
        "vendor:acme",
        "vendor:globex",
    }
    assert all(r["seq"] and r["signature"] for r in body["results"])


@pytest.mark.production
@pytest.mark.skipif(not PRODUCTION, reason="needs PostgreSQL")
@pytest.mark.parametrize(
    ("params", "index"),
    [
        ({"agent": "00000000-0000-0000-0000-000000000001"}, "audit_event_agent"),  # or _time
        ({"event_type": "action.evaluated"}, "audit_event_type"),
        ({"actor": "user:alice"}, "audit_event_actor"),
        ({"verdict": "BLOCK"}, "audit_event_verdict"),
        ({"result": "denied"}, "audit_event_result"),
        ({"session": "00000000-0000-0000-0000-000000000002"}, "audit_event_session"),
        ({"from": "2026-01-01", "to": "2026-01-02"}, "audit_event_time"),
        ({"q": "vendor:acme"}, "audit_event_text_trgm"),
    ],
)
def test_each_filter_has_an_index_postgresql_can_use(db, params, index):
    from audit.filters import LogFilter
    from audit.selectors import log_page

    flt = LogFilter.parse(params)
    # The filter alone: on an empty test table the planner would page by primary key; the
    # plans at a million events are in bench/export.py.
    queryset = flt.apply(GovernanceEvent.objects.all()).values("arrival")
    sql, sql_params = queryset.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("EXPLAIN " + sql, sql_params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert index in plan, plan
    log_page(flt)  # and the page query runs


def test_pages_with_a_date_range_go_by_time_and_still_walk_every_event_once(viewer, db):
    with transaction.atomic():
        for i in range(75):
            record("test.timed", actor="system:test", reason=f"event {i}")
    integrate()
    events = list(GovernanceEvent.objects.filter(event_type="test.timed").order_by("arrival"))
    start = events[10].timestamp.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    end = events[70].timestamp.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    base = f"/audit/?event_type=test.timed&from={start}&to={end}"
    first = viewer.get(base).context["page"]
    second = viewer.get(f"{base}&before={first.older}").context["page"]
    assert second.older is None
    seen = [e.reason for e in first.events + second.events]
    assert seen == [f"event {i}" for i in reversed(range(10, 70))]
    back = viewer.get(f"{base}&after={second.newer}").context["page"]
    assert [e.pk for e in back.events] == [e.pk for e in first.events]
