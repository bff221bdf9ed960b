"""Pause, resume, revoke and halt (SPEC §1), through services, the API and the pages."""

import pytest
from django.db import transaction

from console import services
from console.errors import Conflict, Invalid
from console.models import Agent, AgentSession
from tests.helpers import agent_client, client_for, events_of


@pytest.fixture
def oncall(make_operator):
    return make_operator("oncall", username="ona")


def test_every_transition_needs_a_reason(make_agent, oncall):
    agent = make_agent()
    for reason in ["", "   ", None]:
        with pytest.raises(Invalid) as error:
            services.pause_agent(agent, by=oncall, reason=reason)
        assert error.value.fields == {"reason": ["This field is required."]}
    assert Agent.objects.get(pk=agent.pk).status == "active"


def test_pause_resume_revoke_are_events_with_actor_and_reason(make_agent, oncall):
    agent = make_agent()
    services.pause_agent(agent, by=oncall, reason="suspicious")
    services.resume_agent(agent, by=oncall, reason="checked")
    services.pause_agent(agent, by=oncall, reason="again")
    services.revoke_agent(agent, by=oncall, reason="rogue")
    kinds = [
        (e.event_type, e.actor, e.reason, e.payload["from"], e.payload["to"])
        for e in events_of_agent(agent)
    ]
    assert kinds == [
        ("agent.paused", "user:ona", "suspicious", "active", "paused"),
        ("agent.resumed", "user:ona", "checked", "paused", "active"),
        ("agent.paused", "user:ona", "again", "active", "paused"),
        ("agent.revoked", "user:ona", "rogue", "paused", "revoked"),
    ]


def events_of_agent(agent):
    from audit.models import GovernanceEvent

    return GovernanceEvent.objects.filter(
        agent_id=agent.id, event_type__in=["agent.paused", "agent.resumed", "agent.revoked"]
    ).order_by("arrival")


@pytest.mark.parametrize(
    ("setup", "action", "code"),
    [
        ([], "resume", "agent_active"),
        (["pause"], "pause", "agent_paused"),
        (["revoke"], "resume", "agent_revoked"),
        (["revoke"], "pause", "agent_revoked"),
        (["revoke"], "revoke", "agent_revoked"),
    ],
)
def test_impossible_transitions_are_conflicts(make_agent, oncall, setup, action, code):
    agent = make_agent()
    for step in setup:
        getattr(services, f"{step}_agent")(agent, by=oncall, reason="setup")
    with pytest.raises(Conflict) as error:
        getattr(services, f"{action}_agent")(agent, by=oncall, reason="try")
    assert error.value.code == code


def test_revoked_agent_cannot_be_resumed_through_the_api(make_agent, oncall):
    agent = make_agent()
    client = client_for(oncall)
    assert (
        client.post(
            f"/api/v1/agents/{agent.id}/revoke", {"reason": "gone"}, format="json"
        ).status_code
        == 200
    )
    response = client.post(f"/api/v1/agents/{agent.id}/resume", {"reason": "oops"}, format="json")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "agent_revoked"
    assert Agent.objects.get(pk=agent.pk).status == "revoked"


def test_pause_refuses_new_sessions_but_open_ones_keep_working(agent_with_key, oncall):
    agent, key = agent_with_key
    bot = agent_client(key)
    open_before = bot.post("/api/v1/sessions", {"goal": "work"}, format="json").json()["session_id"]
    services.pause_agent(agent, by=oncall, reason="investigating")
    response = bot.post("/api/v1/sessions", {}, format="json")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "agent_paused"
    assert AgentSession.objects.get(pk=open_before).status == "open"
    assert bot.post(f"/api/v1/sessions/{open_before}/end", format="json").status_code == 200
    services.resume_agent(agent, by=oncall, reason="fine")
    assert bot.post("/api/v1/sessions", {}, format="json").status_code == 201


def test_revoke_stops_every_key_at_once_and_closes_open_sessions(make_agent, admin_user, oncall):
    agent = make_agent("doomed")
    keys = [services.issue_key(agent, by=admin_user)[1] for _ in range(2)]
    sessions = [
        agent_client(keys[0]).post("/api/v1/sessions", {}, format="json").json()["session_id"]
        for _ in range(2)
    ]
    services.revoke_agent(agent, by=oncall, reason="compromised")
    for key in keys:
        response = agent_client(key).post("/api/v1/sessions", {}, format="json")
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "agent_revoked"
    assert set(AgentSession.objects.filter(pk__in=sessions).values_list("status", flat=True)) == {
        "revoked"
    }
    closed = events_of("session.revoked")
    assert len(closed) == 2 and all(e.reason == "agent revoked: compromised" for e in closed)
    (revoked,) = events_of("agent.revoked")
    assert len(revoked.payload["keys_revoked"]) == 2


def test_operator_halts_one_session(agent_with_key, oncall):
    agent, key = agent_with_key
    bot = agent_client(key)
    first = bot.post("/api/v1/sessions", {}, format="json").json()["session_id"]
    second = bot.post("/api/v1/sessions", {}, format="json").json()["session_id"]
    response = client_for(oncall).post(
        f"/api/v1/sessions/{first}/halt", {"reason": "2 a.m. rollback"}, format="json"
    )
    assert response.status_code == 200 and response.json()["status"] == "halted"
    assert AgentSession.objects.get(pk=second).status == "open"
    assert Agent.objects.get(pk=agent.pk).status == "active"  # tier 2: pause_on_halt is off
    assert (
        bot.post(f"/api/v1/sessions/{first}/end", format="json").json()["error"]["code"]
        == "session_halted"
    )
    (event,) = events_of("session.halted")
    assert event.actor == "user:ona" and event.reason == "2 a.m. rollback"


def test_halt_pauses_a_tier_4_agent_by_default(make_agent, admin_user, oncall):
    agent = make_agent("critical", tier=4)
    _, key = services.issue_key(agent, by=admin_user)
    session = agent_client(key).post("/api/v1/sessions", {}, format="json").json()["session_id"]
    services.halt_session(AgentSession.objects.get(pk=session), by=oncall, reason="halt")
    assert Agent.objects.get(pk=agent.pk).status == "paused"
    paused = events_of("agent.paused")
    assert paused[-1].reason == "pause on halt: halt"


def test_halt_needs_the_oncall_role(agent_with_key, make_operator):
    agent, key = agent_with_key
    session = agent_client(key).post("/api/v1/sessions", {}, format="json").json()["session_id"]
    response = client_for(make_operator("reviewer")).post(
        f"/api/v1/sessions/{session}/halt", {"reason": "x"}, format="json"
    )
    assert response.status_code == 403
    assert AgentSession.objects.get(pk=session).status == "open"


@pytest.mark.django_db(transaction=True)
def test_two_operators_racing_to_pause_only_one_wins(make_agent, oncall, make_operator):
    import threading

    from django.db import connection

    agent = make_agent("racy")
    other = make_operator("oncall", username="onb")
    outcomes = []

    def pause(user):
        try:
            services.pause_agent(agent, by=user, reason="race")
            outcomes.append("ok")
        except Conflict:
            outcomes.append("conflict")
        finally:
            connection.close()

    threads = [threading.Thread(target=pause, args=(u,)) for u in (oncall, other)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["conflict", "ok"]
    assert len(events_of("agent.paused")) == 1


def test_transition_rolls_back_with_its_event(make_agent, oncall):
    agent = make_agent()
    with pytest.raises(RuntimeError), transaction.atomic():
        services.pause_agent(agent, by=oncall, reason="will roll back")
        raise RuntimeError
    assert Agent.objects.get(pk=agent.pk).status == "active"
    assert not events_of("agent.paused")
