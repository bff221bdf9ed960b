"""SPEC §9 / issue: a registered agent that was never assessed cannot open sessions (409
``agent_not_assessed``); once assessed through the API, it can."""

from console import services
from tests.assessments.vectors import PROCUREMENT
from tests.helpers import agent_client, events_of


def test_a_never_assessed_agent_is_refused_until_it_is_assessed(api, make_agent, admin_user):
    agent = make_agent("procurement-agent", assessed=False)
    _, key = services.issue_key(agent, by=admin_user)
    runtime = agent_client(key)

    refused = runtime.post("/api/v1/sessions", {"goal": "review invoices"}, format="json")
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "agent_not_assessed"

    assessed = api.post(
        f"/api/v1/agents/{agent.id}/assessments", {"answers": PROCUREMENT["answers"]}, format="json"
    )
    assert assessed.status_code == 201

    opened = runtime.post("/api/v1/sessions", {"goal": "review invoices"}, format="json")
    assert opened.status_code == 201, opened.json()
    assert opened.json()["session_id"]
    # The session starts under the tier the assessment set (SPEC §5.4).
    assert events_of("session.started")[-1].payload["effective_tier"] == 3
