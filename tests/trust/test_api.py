"""The trust API (SPEC §9): ``GET /api/v1/agents/{id}/trust-history`` and recalculate."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.helpers import client_for, events_of
from tests.trust import events as ev
from tests.trust.events import T0, at
from trust.models import TrustHistory

SPEC_ROW = {
    "previous_score",
    "new_score",
    "previous_tier",
    "new_tier",
    "behavioral_delta",
    "alignment_delta",
    "change_type",
    "change_reason",
    "evaluated_by",
    "cause_event_id",
    "created_at",
}


@pytest.fixture
def agent(admin_user):
    agent = ev.register_assessed(admin_user, "api-agent")
    for hour in range(1, 6):
        with at(T0 + timedelta(hours=hour)):
            ev.violation(agent, None, "minor")
    return agent  # 6 rows: the assessment and 5 violations


def url(agent, query: str = "") -> str:
    return f"/api/v1/agents/{agent.id}/trust-history{query}"


def test_rows_have_the_spec_shape_newest_first(api, agent):
    response = api.get(url(agent))
    assert response.status_code == 200
    body = response.json()
    assert body["next"] is None
    rows = body["results"]
    assert len(rows) == 6
    assert SPEC_ROW <= set(rows[0])
    assert [row["change_type"] for row in rows] == ["violation"] * 5 + ["reassessment"]
    newest = rows[0]
    assert newest["previous_score"] == 66.89 and newest["new_score"] == 65.14  # −1.75 each
    assert newest["behavioral_delta"] == -5.0 and newest["alignment_delta"] == 0.0
    assert newest["evaluated_by"] == "system:recompute_trust"
    assert newest["cause_event_id"] == str(TrustHistory.objects.latest("id").cause_event_id)
    assert newest["created_at"].endswith("Z")
    assert rows[-1]["previous_score"] is None and rows[-1]["previous_tier"] is None


def test_history_is_keyset_paginated(api, agent):
    first = api.get(url(agent, "?limit=4")).json()
    assert len(first["results"]) == 4 and first["next"]
    second = api.get(first["next"]).json()
    assert len(second["results"]) == 2 and second["next"] is None
    ids = [row["id"] for row in first["results"] + second["results"]]
    assert ids == sorted(ids, reverse=True) and len(set(ids)) == 6


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("?limit=0", "limit"),
        ("?limit=201", "limit"),
        ("?limit=x", "limit"),
        ("?before=-1", "before"),
    ],
)
def test_bad_paging_is_a_400_naming_the_field(api, agent, query, field):
    response = api.get(url(agent, query))
    assert response.status_code == 400
    assert field in response.json()["error"]["fields"]


def test_unknown_agents_are_404(api, db):
    assert api.get("/api/v1/agents/not-a-uuid/trust-history").status_code == 404
    response = api.get("/api/v1/agents/6c2f1d2e-2b1b-4f4f-9a55-5a8d2c1e0f11/trust-history")
    assert response.status_code == 404 and response.json()["error"]["code"] == "agent_not_found"


def test_every_role_reads_history_but_only_admins_recalculate(agent, make_operator):
    viewer = client_for(make_operator("viewer"))
    assert viewer.get(url(agent)).status_code == 200
    response = viewer.post(f"/api/v1/agents/{agent.id}/trust/recalculate", {}, format="json")
    assert response.status_code == 403
    assert events_of("access.denied")[-1].payload["permission"] == "recalculate_trust"


def test_an_admin_recalculates(api, agent):
    with at(T0 + timedelta(hours=7)):
        response = api.post(
            f"/api/v1/agents/{agent.id}/trust/recalculate",
            {"reason": "quarterly review"},
            format="json",
        )
    assert response.status_code == 201
    body = response.json()
    assert body["history"]["change_type"] == "manual_recalculation"
    assert body["history"]["evaluated_by"] == "user:root-admin"
    assert "quarterly review" in body["history"]["change_reason"]
    assert body["agent"]["trust_score"] == 65.14


def test_recalculate_refuses_unknown_fields(api, agent):
    response = api.post(
        f"/api/v1/agents/{agent.id}/trust/recalculate", {"score": 100}, format="json"
    )
    assert response.status_code == 400 and "score" in response.json()["error"]["fields"]


def test_the_schema_documents_the_endpoints(api, db):
    schema = api.get("/api/schema/?format=json").content.decode()
    assert "/api/v1/agents/{agent_id}/trust-history" in schema
    assert "/api/v1/agents/{agent_id}/trust/recalculate" in schema
