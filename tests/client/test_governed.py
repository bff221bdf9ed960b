"""The ``@s.governed`` decorator against the fake server: every verdict path (SPEC §3.1, §9)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from warden_client import (
    Blocked,
    Halted,
    Verdict,
    WardenError,
    WardenProtocolError,
)

ACTIONS = r"/api/v1/sessions/[^/]+/actions"
RESULTS = r"/api/v1/sessions/[^/]+/actions/[^/]+/result"


def test_allow_runs_the_function_and_reports_its_return_value(fake, warden):
    ran = []
    with warden.session(goal="review invoices", workflow_id="wf-1") as s:

        @s.governed(
            "contract.commit",
            target=lambda vendor, total, currency="USD": f"vendor:{vendor}",
            amount=lambda vendor, total, currency="USD": total,
            currency="USD",
            sensitive=True,
        )
        def commit(vendor, total, currency="USD"):
            ran.append((vendor, total, currency))
            return {"contract": f"C-{vendor}", "total": total}

        result = commit("acme", Decimal("95000.00"))

    assert ran == [("acme", Decimal("95000.00"), "USD")]  # the caller's own Python values
    assert result == {"contract": "C-acme", "total": Decimal("95000.00")}
    (proposal,) = fake.calls("POST", ACTIONS)
    assert proposal.body == {
        "name": "contract.commit",
        "target": "vendor:acme",
        # the call's arguments by parameter name, defaults applied, Decimal as a string
        "args": {"vendor": "acme", "total": "95000.00", "currency": "USD"},
        "amount": "95000.00",
        "currency": "USD",
        "sensitive": True,
    }
    assert proposal.headers["authorization"] == f"Bearer {fake.key}"
    assert proposal.headers["content-type"] == "application/json"
    (result_call,) = fake.calls("POST", RESULTS)
    assert result_call.body == {
        "status": "ok",
        "output": {"contract": "C-acme", "total": "95000.00"},
    }
    action_id = result_call.path.split("/")[-2]
    assert fake.actions[action_id]["result"]["status"] == "ok"
    (session,) = fake.sessions.values()
    assert session == {"status": "ended", "goal": "review invoices", "workflow_id": "wf-1"}


def test_allow_with_constrained_args_runs_with_wardens_arguments(fake, warden):
    fake.verdicts["email.send"] = {
        "verdict": "ALLOW",
        "reason": "PII redacted",
        "source": "guardrail:pii",
        "constrained_args": {"to": "ops@example.test", "body": "card [REDACTED:card]"},
    }
    received = []
    with warden.session() as s:

        @s.governed("email.send", target=lambda to, body: to)
        def send(to, body):
            received.append((to, body))
            return "sent"

        assert send("ops@example.test", body="card 4111 1111 1111 1111") == "sent"

    assert received == [("ops@example.test", "card [REDACTED:card]")]
    (proposal,) = fake.calls("POST", ACTIONS)
    assert proposal.body["args"] == {"to": "ops@example.test", "body": "card 4111 1111 1111 1111"}


def test_constrained_args_map_back_onto_keyword_only_and_var_keyword_parameters(fake, warden):
    fake.verdicts["crm.update"] = {
        "verdict": "ALLOW",
        "constrained_args": {"record": "r1", "fields": ["a"], "note": "[REDACTED]", "extra": 1},
    }
    received = []
    with warden.session() as s:

        @s.governed("crm.update")
        def update(record, *fields, note="", **more):
            received.append((record, fields, note, more))

        update("r1", "a", "b", note="call 555-0100", extra=1)

    assert received == [("r1", ("a",), "[REDACTED]", {"extra": 1})]
    (proposal,) = fake.calls("POST", ACTIONS)
    assert proposal.body["args"] == {
        "record": "r1",
        "fields": ["a", "b"],
        "note": "call 555-0100",
        "extra": 1,
    }


def test_constrained_args_that_do_not_fit_the_function_do_not_run_it(fake, warden):
    fake.verdicts["file.write"] = {"verdict": "ALLOW", "constrained_args": {"unknown": 1}}
    ran = []
    with warden.session() as s:

        @s.governed("file.write")
        def write(path):
            ran.append(path)

        with pytest.raises(WardenProtocolError, match="unknown"):
            write("/tmp/x")

    assert ran == []
    (result_call,) = fake.calls("POST", RESULTS)
    assert result_call.body["status"] == "error"
    assert "not run" in result_call.body["output"]


def test_block_raises_blocked_with_reason_and_source_and_the_session_continues(fake, warden):
    fake.verdicts["payment.release"] = {
        "verdict": "BLOCK",
        "reason": "action payment.release is excluded by the scope",
        "source": "scope",
    }
    ran = []
    with warden.session() as s:

        @s.governed("payment.release", target="vendor:acme", amount=lambda amount: amount)
        def release(amount):
            ran.append(amount)

        @s.governed("invoice.read")
        def read(invoice_id):
            return {"id": invoice_id}

        with pytest.raises(Blocked) as caught:
            release(Decimal("1000"))
        assert read("INV-1") == {"id": "INV-1"}  # BLOCK leaves the session open
        assert s.state == "open"

    assert ran == []
    error = caught.value
    assert isinstance(error, WardenError)
    assert error.reason == "action payment.release is excluded by the scope"
    assert error.source == "scope"
    assert error.decision.verdict is Verdict.BLOCK
    assert error.action_id == error.decision.action_id
    # a blocked action is never reported as run; the allowed one is
    assert len(fake.calls("POST", RESULTS)) == 1
    assert len(fake.calls("POST", r"/api/v1/sessions/[^/]+/end")) == 1


def test_halt_raises_halted_and_the_session_is_over(fake, warden):
    fake.verdicts["contract.commit"] = {
        "verdict": "HALT",
        "reason": "more than 3 contract.commit within 24h",
        "source": "rule:contract-burst",
    }
    ran = []
    with pytest.raises(Halted) as caught:
        with warden.session() as s:

            @s.governed("contract.commit")
            def commit(vendor):
                ran.append(vendor)

            commit("globex")

    assert ran == []
    assert caught.value.reason == "more than 3 contract.commit within 24h"
    assert caught.value.source == "rule:contract-burst"
    assert s.state == "halted"
    # the server already closed the session: no /end is sent, nothing masks the Halted
    assert fake.calls("POST", r"/api/v1/sessions/[^/]+/end") == []
    assert fake.calls("POST", RESULTS) == []


def test_a_failing_function_is_reported_as_error_and_its_exception_re_raised(fake, warden):
    boom = RuntimeError("ERP timed out")
    with warden.session() as s:

        @s.governed("invoice.flag")
        def flag(invoice_id):
            raise boom

        with pytest.raises(RuntimeError) as caught:
            flag("INV-7")

    assert caught.value is boom
    (result_call,) = fake.calls("POST", RESULTS)
    assert result_call.body == {"status": "error", "output": "RuntimeError: ERP timed out"}


def test_a_halt_on_the_reported_output_raises_halted_after_the_function_ran(fake, warden):
    fake.result_answers["crm.export"] = {
        "verdict": "HALT",
        "reason": "canary token in the output",
        "source": "guardrail:canary",
    }
    with warden.session() as s:

        @s.governed("crm.export")
        def export():
            return "rows… CANARY-123 …"

        with pytest.raises(Halted) as caught:
            export()
        assert s.state == "halted"

    assert caught.value.source == "guardrail:canary"
    assert fake.calls("POST", r"/api/v1/sessions/[^/]+/end") == []


def test_an_unknown_verdict_fails_closed(fake, warden):
    fake.verdicts["db.drop"] = {"verdict": "MAYBE"}
    ran = []
    with warden.session() as s:

        @s.governed("db.drop")
        def drop():
            ran.append(1)

        with pytest.raises(WardenProtocolError, match="unknown verdict"):
            drop()

    assert ran == []


def test_a_governed_call_inside_another_names_its_parent(fake, warden):
    with warden.session() as s:

        @s.governed("invoice.read")
        def read(invoice_id):
            return invoice_id

        @s.governed("review.route")
        def route(invoice_id):
            return read(invoice_id)

        route("INV-9")
        read("INV-10")

    outer, inner, alone = (call.body for call in fake.calls("POST", ACTIONS))
    assert outer["name"] == "review.route" and "parent_action_id" not in outer
    outer_id = next(a for a, v in fake.actions.items() if v["body"] == outer)
    assert inner["parent_action_id"] == outer_id
    assert "parent_action_id" not in alone


def test_the_decorator_keeps_the_function_name_and_refuses_coroutines(warden, fake):
    with warden.session() as s:

        @s.governed("invoice.read")
        def read_invoice(invoice_id):
            """Read one invoice."""

        assert read_invoice.__name__ == "read_invoice"
        assert read_invoice.__doc__ == "Read one invoice."

        async def fetch():
            return None

        with pytest.raises(TypeError):
            s.governed("web.fetch")(fetch)


def test_a_call_with_wrong_arguments_fails_like_python_before_asking(fake, warden):
    with warden.session() as s:

        @s.governed("invoice.read")
        def read(invoice_id):
            return invoice_id

        with pytest.raises(TypeError):
            read()  # missing argument

    assert fake.calls("POST", ACTIONS) == []


def test_require_approval_without_a_request_to_wait_on_does_not_run(fake, warden):
    # SPEC §9: approval_id is optional; a server without an approval queue sends none.
    from tests.client.fake_warden import Fault
    from warden_client import ApprovalUnavailable

    answer = {
        "action_id": "6c2f1d2e-2b1b-4f4f-9a55-5a8d2c1e0f11",
        "verdict": "REQUIRE_APPROVAL",
        "reason": "sensitive action at effective tier 3",
        "source": "tier",
        "constrained": False,
        "args": {},
        "approval_id": None,
        "approval_expires_at": None,
        "event_id": "6c2f1d2e-2b1b-4f4f-9a55-5a8d2c1e0f12",
    }
    for _ in range(2):
        fake.faults.append(Fault("POST", r"/api/v1/sessions/[^/]+/actions", "respond", 200, answer))
    ran = []
    with warden.session(goal="g") as s:

        @s.governed("contract.commit")
        def commit(vendor: str) -> str:
            ran.append(vendor)
            return "done"

        with pytest.raises(ApprovalUnavailable) as refused:
            commit("acme")
        decision = s.propose("contract.commit")
    assert ran == [] and refused.value.source == "tier"
    assert decision.needs_approval and decision.approval_id is None
    assert not fake.calls("GET", r"/api/v1/approvals/.*")
