"""Session lifecycle and how the server's error bodies surface (SPEC §1, §9)."""

from __future__ import annotations

import pytest

from tests.client.fake_warden import Fault
from warden_client import Warden, WardenError, WardenHTTPError, WardenProtocolError

END = r"/api/v1/sessions/[^/]+/end"
ACTIONS = r"/api/v1/sessions/[^/]+/actions"


def test_the_session_is_ended_on_exit_even_when_the_body_raises(fake, warden):
    with pytest.raises(ValueError, match="agent bug"):
        with warden.session(goal="g") as s:
            s.propose("invoice.read")
            raise ValueError("agent bug")
    assert len(fake.calls("POST", END)) == 1
    assert fake.sessions[s.session_id]["status"] == "ended"
    assert s.state == "ended"


def test_a_session_halted_by_on_call_does_not_mask_the_bodys_exception(fake, warden):
    with pytest.raises(KeyError):
        with warden.session() as s:
            fake.sessions[s.session_id]["status"] = "halted"  # on-call pressed Halt
            raise KeyError("boom")
    assert len(fake.calls("POST", END)) == 1
    assert s.state == "halted"


def test_ending_a_session_the_server_already_closed_is_not_an_error(fake, warden):
    with warden.session() as s:
        fake.sessions[s.session_id]["status"] = "ended"
    assert s.state == "ended"


def test_a_failure_to_end_never_replaces_the_bodys_exception(fake):
    with Warden(fake.url, fake.key, retries=0) as warden:
        fake.end_error = (500, "server_error")
        with pytest.raises(ZeroDivisionError):
            with warden.session():
                1 / 0  # noqa: B018


def test_a_failure_to_end_a_clean_session_is_raised(fake):
    with Warden(fake.url, fake.key, retries=0) as warden:
        fake.end_error = (403, "forbidden")
        with pytest.raises(WardenHTTPError) as caught:
            with warden.session():
                pass
    assert caught.value.code == "forbidden"


def test_after_a_halt_every_later_action_is_halted_too(fake, warden):
    fake.verdicts["contract.commit"] = {"verdict": "HALT", "reason": "burst", "source": "rule:x"}
    with warden.session() as s:
        assert s.propose("contract.commit").verdict == "HALT"
        later = s.propose("invoice.read")
    assert later.verdict == "HALT" and later.source == "session"
    assert fake.calls("POST", END) == []


def test_a_paused_agent_gets_agent_paused_with_the_servers_message(fake, warden):
    fake.agent_status = "paused"
    with pytest.raises(WardenHTTPError) as caught:
        with warden.session():
            pytest.fail("the body must not run")
    exc = caught.value
    assert isinstance(exc, WardenError)
    assert (exc.status, exc.code) == (409, "agent_paused")
    assert exc.message == "This agent is paused; new sessions are refused."
    assert exc.body == {"error": {"code": "agent_paused", "message": exc.message}}
    assert exc.fields == {}
    assert exc.reason is None and exc.source is None


def test_a_revoked_agent_gets_agent_revoked(fake, warden):
    with warden.session() as s:
        fake.agent_status = "revoked"
        with pytest.raises(WardenHTTPError) as caught:
            s.propose("invoice.read")
    assert (caught.value.status, caught.value.code) == (401, "agent_revoked")
    assert s.state == "ended"  # /end was answered agent_revoked: the session is closed


def test_a_wrong_key_is_a_401(fake):
    with Warden(fake.url, "wdn_live_nope1234_" + "x" * 32) as warden:
        with pytest.raises(WardenHTTPError) as caught:
            warden.session().open()
    assert caught.value.status == 401


def test_validation_errors_carry_the_field_reasons(fake, warden):
    with warden.session() as s:
        fake.faults.append(
            Fault(
                "POST",
                ACTIONS,
                "respond",
                400,
                {
                    "error": {
                        "code": "invalid",
                        "message": "The request is not valid.",
                        "fields": {"target": ["Too long."]},
                    }
                },
            )
        )
        with pytest.raises(WardenHTTPError) as caught:
            s.propose("invoice.read", target="x" * 5000)
    assert caught.value.code == "invalid"
    assert caught.value.fields == {"target": ["Too long."]}
    assert "400 invalid" in str(caught.value)


def test_a_non_json_error_body_still_becomes_an_http_error(fake):
    with Warden(fake.url, fake.key, retries=0) as warden:
        with warden.session() as s:
            fake.faults.append(Fault("POST", ACTIONS, "respond", 502, "<h1>Bad Gateway</h1>"))
            with pytest.raises(WardenHTTPError) as caught:
                s.propose("invoice.read")
    assert (caught.value.status, caught.value.code) == (502, "http_502")
    assert "Bad Gateway" in caught.value.message


def test_a_malformed_success_is_a_protocol_error(fake, warden):
    with warden.session() as s:
        fake.faults.append(Fault("POST", ACTIONS, "respond", 200, {"verdict": "ALLOW"}))
        with pytest.raises(WardenProtocolError, match="action_id"):
            s.propose("invoice.read")
        fake.faults.append(
            Fault(
                "POST",
                ACTIONS,
                "respond",
                200,
                {"action_id": "a", "verdict": "REQUIRE_APPROVAL", "reason": "", "source": ""},
            )
        )
        # SPEC §9: approval_id is optional (a server with no approval queue sends none).
        decision = s.propose("invoice.read")
        assert decision.needs_approval and decision.approval_id is None


def test_the_server_404s_an_unknown_approval(fake, warden):
    with warden.session() as s:
        with pytest.raises(WardenHTTPError) as caught:
            s.wait_for_approval("00000000-0000-0000-0000-000000000000", timeout=1)
    assert (caught.value.status, caught.value.code) == (404, "approval_not_found")


def test_a_session_can_only_be_opened_once_and_used_while_open(fake, warden):
    session = warden.session()
    with pytest.raises(WardenError, match="not open"):
        session.propose("invoice.read")
    session.open()
    with pytest.raises(WardenError, match="already open"):
        session.open()
    session.end()
    session.end()  # nothing left to do
    assert len(fake.calls("POST", END)) == 1


def test_the_url_may_name_the_api_root_and_the_key_is_never_shown(fake):
    warden = Warden(fake.url + "/api/v1/", fake.key)
    try:
        assert warden.url == fake.url
        assert fake.key not in repr(warden)
        with warden.session() as s:
            s.propose("invoice.read")
    finally:
        warden.close()
    with pytest.raises(ValueError):
        Warden("127.0.0.1:8000", fake.key)
    with pytest.raises(ValueError):
        Warden(fake.url, "")


def test_report_checks_its_status(fake, warden):
    with warden.session() as s:
        decision = s.propose("invoice.read")
        with pytest.raises(ValueError):
            s.report(decision.action_id, "done")  # type: ignore[arg-type]
        assert s.report(decision.action_id, "error", output="disk full")["status"] == "recorded"
    assert fake.actions[decision.action_id]["result"] == {"status": "error", "output": "disk full"}
