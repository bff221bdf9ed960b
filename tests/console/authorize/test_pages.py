"""The Policies & rules pages (SPEC §3, §8): the list for every role, the Rego editor with
its Check and Test panel, rule and guardrail forms, confirmed mode changes and deletes —
every write through the services, with its event; bad input is a field error, never a 500.
"""

from __future__ import annotations

import html
import json
import re

import pytest

from console.authorize import services as authz
from console.authorize.models import Guardrail, Policy, Rule
from console.roles import ROLES
from tests.helpers import events_of

from .conftest import propose

SPEND_LIMIT = """package warden.spend_limit

import rego.v1

default verdict := "allow"

# rego-cpp orders null above numbers (OPA orders it below): guard actions without amount.
verdict := "require_approval" if {
	is_number(input.action.amount)
	input.action.amount > 100000
}

reason := "over USD 100,000" if verdict == "require_approval"
"""
# Line 5 has the syntax error (SPEC §3.2 step 5: compile errors name the line).
BROKEN = """package warden.broken

default verdict := "allow"
verdict := "block" if {
   input.action.amount >
}
"""
NO_DEFAULT = """package warden.no_default

import rego.v1

verdict := "block" if input.action.name == "payment.release"
"""


@pytest.fixture
def login_as(client, make_operator):
    def login(*roles):
        user = make_operator(*roles)
        client.force_login(user)
        return user

    return login


@pytest.fixture
def configured(admin_user, make_agent):
    """One of each: a policy, a rule, a guardrail for an agent, a canary for all."""
    agent = make_agent("procurement-bot")
    return {
        "agent": agent,
        "policy": authz.create_policy(
            by=admin_user, name="spend-limit", module=SPEND_LIMIT, mode="shadow"
        ),
        "rule": authz.create_rule(
            by=admin_user,
            agent=agent,
            name="contract-burst",
            kind="rate",
            pattern="contract.commit",
            window_seconds=86400,
            threshold=3,
            verdict="halt",
            severity="critical",
        ),
        "guardrail": authz.create_guardrail(
            by=admin_user,
            name="no-slurs",
            kind="banned_words",
            mode="block",
            config={"words": ["darn"]},
        ),
    }


def htmx(client, url, data):
    return client.post(url, data, HTTP_HX_REQUEST="true")


# --- reading ----------------------------------------------------------------------------
@pytest.mark.parametrize("role", ROLES)
def test_every_role_reads_the_list_and_the_policy_page(client, login_as, configured, role):
    login_as(role)
    page = client.get("/policies/")
    assert page.status_code == 200
    text = page.content.decode()
    for name in ("spend-limit", "contract-burst", "no-slurs"):
        assert f'data-testid="policy-row-{name}"' in text or name in text
    assert 'data-testid="mode-spend-limit">shadow<' in text
    assert "more than 3 × contract.commit within 24 h" in text
    assert "procurement-bot" in text and "all agents" in text
    detail = client.get(f"/policies/{configured['policy'].id}/")
    assert detail.status_code == 200
    assert "data.warden.spend_limit" in detail.content.decode()
    # Only managers see the buttons that change things.
    manager = role == "admin"
    assert ('data-testid="new-policy"' in text) is manager
    assert (f"/policies/{configured['policy'].id}/edit/" in text) is manager
    assert ('data-testid="delete-spend-limit"' in text) is manager


def test_the_list_can_show_what_applies_to_one_agent(client, login_as, configured, make_agent):
    other = make_agent("other-bot")
    authz.create_rule(
        by=configured["policy"].created_by,
        agent=other,
        name="others-rule",
        kind="first_seen",
        pattern="*",
        verdict="require_approval",
    )
    login_as("viewer")
    text = client.get(f"/policies/?agent={configured['agent'].id}").content.decode()
    assert "contract-burst" in text and "spend-limit" in text
    assert "others-rule" not in text
    assert "others-rule" in client.get("/policies/").content.decode()
    # An unknown agent id in the filter shows everything rather than failing.
    assert client.get("/policies/?agent=nope").status_code == 200


def test_empty_lists_say_so(client, login_as):
    login_as("viewer")
    text = client.get("/policies/").content.decode()
    assert "No policies" in text and "No rules" in text


def test_viewer_is_refused_on_every_write_and_the_refusal_is_an_event(client, login_as, configured):
    login_as("viewer")
    policy = configured["policy"]
    attempts = [
        ("/policies/new/", {"name": "x", "module": SPEND_LIMIT, "mode": "enforce"}),
        (f"/policies/{policy.id}/edit/", {"name": "x", "module": SPEND_LIMIT}),
        (f"/policies/{policy.id}/mode/", {"mode": "enforce"}),
        (f"/policies/{policy.id}/delete/", {}),
        (f"/policies/rules/{configured['rule'].id}/mode/", {"mode": "disabled"}),
        (f"/policies/guardrails/{configured['guardrail'].id}/delete/", {}),
        ("/policies/rules/new/", {"name": "r"}),
        ("/settings/canaries/new/", {"name": "c", "generate": "2"}),
    ]
    for url, data in attempts:
        assert client.post(url, data).status_code == 403, url
    assert client.get("/policies/new/").status_code == 403
    policy.refresh_from_db()
    assert policy.mode == "shadow" and policy.version == 1 and policy.deleted_at is None
    assert Policy.objects.count() == 1 and Rule.objects.count() == 1
    denied = events_of("access.denied")
    assert len(denied) == len(attempts) + 1
    assert {e.payload["permission"] for e in denied} == {"manage_policies"}


# --- the Rego editor ----------------------------------------------------------------------
def test_creating_a_policy_through_the_editor_records_one_event(client, login_as, make_agent):
    user = login_as("admin")
    agent = make_agent("bot")
    assert client.get("/policies/new/").status_code == 200
    response = client.post(
        "/policies/new/",
        {
            "name": "spend-limit",
            "module": SPEND_LIMIT.replace("\n", "\r\n"),
            "mode": "enforce",
            "agent": str(agent.id),
            "description": "big amounts need a person",
            "intent": "save",
        },
    )
    policy = Policy.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/policies/{policy.id}/"
    assert policy.agent == agent and policy.mode == "enforce" and policy.module == SPEND_LIMIT
    (event,) = events_of("policy.created")
    assert event.actor == f"user:{user.username}" and event.payload["id"] == str(policy.id)


def test_a_policy_that_does_not_compile_cannot_be_enabled_and_the_line_is_named(client, login_as):
    login_as("admin")
    response = client.post(
        "/policies/new/", {"name": "broken", "module": BROKEN, "mode": "shadow", "intent": "save"}
    )
    assert response.status_code == 400
    text = response.content.decode()
    assert re.search(
        r'data-testid="module-error">line 5, column 24: Invalid boolean operator', text
    )
    assert 'data-error-lines="5"' in text and 'class="error-line">5<' in text
    assert not Policy.objects.exists() and not events_of("policy.created")
    # The form keeps what was typed.
    assert "input.action.amount &gt;" in text


def test_a_broken_draft_can_be_saved_disabled_and_its_page_shows_the_problem(client, login_as):
    login_as("admin")
    response = client.post(
        "/policies/new/", {"name": "broken", "module": BROKEN, "mode": "disabled"}
    )
    assert response.status_code == 302
    draft = Policy.objects.get()
    text = client.get(f"/policies/{draft.id}/").content.decode()
    assert "line 5, column 24: Invalid boolean operator" in text
    # Enabling it is refused with the service's message, line included.
    refused = client.post(f"/policies/{draft.id}/mode/", {"mode": "enforce"})
    assert refused.status_code == 400
    assert "line 5, column 24" in refused.content.decode()
    draft.refresh_from_db()
    assert draft.mode == "disabled"


def test_check_shows_compile_errors_with_line_numbers_in_place(client, login_as):
    login_as("admin")
    response = htmx(client, "/policies/new/", {"module": BROKEN, "intent": "check"})
    assert response.status_code == 200
    text = response.content.decode()
    assert "<html" not in text  # the partial only
    assert (
        'data-goto-line="5"' in text and "line 5</a>, column 24: Invalid boolean operator" in text
    )
    assert 'data-error-lines="5"' in text
    ok = htmx(client, "/policies/new/", {"module": SPEND_LIMIT, "intent": "check"}).content
    assert b"The module compiles" in ok and b'data-error-lines=""' in ok


def test_check_works_without_javascript_too(client, login_as):
    login_as("admin")
    response = client.post("/policies/new/", {"module": BROKEN, "name": "x", "intent": "check"})
    assert response.status_code == 200
    text = response.content.decode()
    assert "<html" in text and "line 5</a>, column 24" in text
    assert not Policy.objects.exists()


def test_a_missing_package_or_verdict_is_reported_on_its_line(client, login_as):
    login_as("admin")
    text = htmx(
        client, "/policies/new/", {"module": "package warden.x\n\nfoo := 1\n", "intent": "check"}
    ).content.decode()
    assert "the module must define `verdict`" in text


def test_the_test_panel_shows_the_verdict_and_reason(client, login_as):
    login_as("admin")
    document = authz.sample_input()
    document["action"]["amount"] = 250000
    response = htmx(
        client,
        "/policies/new/",
        {"module": SPEND_LIMIT, "input": json.dumps(document), "intent": "test"},
    )
    text = response.content.decode()
    assert response.status_code == 200 and "<html" not in text
    assert 'data-testid="test-verdict">REQUIRE_APPROVAL<' in text
    assert 'data-testid="test-reason">over USD 100,000<' in text
    document["action"]["amount"] = 10
    allowed = htmx(
        client,
        "/policies/new/",
        {"module": SPEND_LIMIT, "input": json.dumps(document), "intent": "test"},
    )
    assert b'data-testid="test-verdict">ALLOW<' in allowed.content
    assert not events_of("policy.created")  # a test changes nothing


def test_the_test_panel_shows_an_evaluation_error(client, login_as):
    login_as("admin")
    document = authz.sample_input()  # contract.commit: no rule defines verdict
    text = htmx(
        client,
        "/policies/new/",
        {"module": NO_DEFAULT, "input": json.dumps(document), "intent": "test"},
    ).content.decode()
    assert 'data-testid="test-error">`verdict` is undefined for this input<' in text


def test_the_test_panel_reports_compile_errors_with_lines(client, login_as):
    login_as("admin")
    text = htmx(
        client, "/policies/new/", {"module": BROKEN, "input": "{}", "intent": "test"}
    ).content.decode()
    assert "does not compile" in text and 'data-goto-line="5"' in text


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"action": {"amount": 5},\n  "oops"}', "Not valid JSON: Expecting ':' delimiter (line 2"),
        ("[1, 2]", "The input document must be a JSON object."),
        ("", "Paste an input document"),
    ],
)
def test_a_bad_input_document_is_a_field_error(client, login_as, text, message):
    login_as("admin")
    response = htmx(
        client, "/policies/new/", {"module": SPEND_LIMIT, "input": text, "intent": "test"}
    )
    assert response.status_code == 200
    assert message in html.unescape(response.content.decode())
    assert 'data-testid="input-error"' in response.content.decode()


def test_the_input_can_be_loaded_from_a_recorded_action(client, login_as, governed, t0):
    login_as("admin")
    agent, session = governed(name="buyer")
    propose(agent, session, "contract.commit", target="vendor:acme", amount=95000, now=t0)
    action = agent.actions.get()
    picker = htmx(
        client, "/policies/new/", {"sample_agent": str(agent.id), "intent": "actions"}
    ).content.decode()
    assert f'value="{action.id}"' in picker and "contract.commit vendor:acme" in picker
    loaded = htmx(
        client,
        "/policies/new/",
        {"sample_agent": str(agent.id), "sample_action": str(action.id), "intent": "load"},
    ).content.decode()
    assert "<html" not in loaded
    textarea = re.search(r'<textarea id="id_input"[^>]*>(.*?)</textarea>', loaded, re.S).group(1)
    document = json.loads(textarea.replace("&quot;", '"'))
    assert document["agent"]["id"] == str(agent.id) and document["agent"]["name"] == "buyer"
    assert document["action"]["name"] == "contract.commit"
    assert document["action"]["amount"] == 95000
    assert set(document) == {"agent", "session", "action", "history", "now"}  # SPEC §3.3


def test_the_input_can_be_loaded_from_a_template_and_bad_picks_are_named(
    client, login_as, make_agent
):
    login_as("admin")
    loaded = htmx(
        client, "/policies/new/", {"sample_template": "payment", "intent": "load"}
    ).content.decode()
    assert "payment.release" in loaded
    bad = htmx(
        client,
        "/policies/new/",
        {"sample_agent": "not-an-id", "sample_action": "zzz", "intent": "load"},
    ).content.decode()
    assert "No such agent." in bad
    agent = make_agent("empty")
    bad_action = htmx(
        client,
        "/policies/new/",
        {"sample_agent": str(agent.id), "sample_action": "zzz", "intent": "load"},
    ).content.decode()
    assert "No such action of this agent." in bad_action
    unknown = htmx(
        client, "/policies/new/", {"sample_template": "nope", "intent": "load"}
    ).content.decode()
    assert "No such template." in unknown


def test_editing_a_policy_bumps_the_version_with_one_event(client, login_as, configured):
    login_as("admin")
    policy = configured["policy"]
    page = client.get(f"/policies/{policy.id}/edit/").content.decode()
    assert "package warden.spend_limit" in page
    response = client.post(
        f"/policies/{policy.id}/edit/",
        {
            "name": "spend-limit",
            "module": SPEND_LIMIT.replace("100000", "50000"),
            "mode": "shadow",
            "agent": "",
            "description": "",
            "reason": "lower the bar",
        },
    )
    assert response.status_code == 302
    policy.refresh_from_db()
    assert policy.version == 2 and "50000" in policy.module
    (event,) = events_of("policy.changed")
    assert event.payload["changes"] == ["module"] and event.reason == "lower the bar"


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"name": "", "module": SPEND_LIMIT}, "name", "This field is required."),
        ({"name": "bad name!", "module": SPEND_LIMIT}, "name", "Up to 100 letters"),
        ({"name": "ok", "module": "  "}, "module", "The Rego source is required."),
        ({"name": "ok", "module": SPEND_LIMIT, "mode": "loud"}, "mode", "One of enforce"),
        ({"name": "ok", "module": SPEND_LIMIT, "agent": "nope"}, "agent", "No such agent."),
    ],
)
def test_bad_policy_input_is_shown_next_to_its_field(client, login_as, data, field, message):
    login_as("admin")
    response = client.post("/policies/new/", data)
    assert response.status_code == 400
    text = response.content.decode()
    position = text.index(f'id="id_{field}"')
    assert message in text[position:]
    assert not Policy.objects.exists()


def test_a_taken_name_is_a_conflict_on_the_name_field(client, login_as, configured):
    login_as("admin")
    response = client.post("/policies/new/", {"name": "spend-limit", "module": SPEND_LIMIT})
    assert response.status_code == 409
    assert "A policy with this name already exists." in response.content.decode()


def test_an_empty_post_is_a_form_error_not_a_500(client, login_as, configured):
    login_as("admin")
    for url in (
        "/policies/new/",
        f"/policies/{configured['policy'].id}/edit/",
        "/policies/rules/new/",
        f"/policies/rules/{configured['rule'].id}/edit/",
        "/policies/guardrails/new/",
        f"/policies/guardrails/{configured['guardrail'].id}/edit/",
        f"/policies/{configured['policy'].id}/mode/",
        "/settings/canaries/new/",
    ):
        assert client.post(url, {}).status_code == 400, url


# --- mode changes and deletes -------------------------------------------------------------
def test_a_mode_change_is_confirmed_then_recorded(client, login_as, configured):
    login_as("admin")
    policy = configured["policy"]
    confirm = client.get(f"/policies/{policy.id}/mode/?mode=enforce")
    assert confirm.status_code == 200
    assert "Its verdicts start deciding actions" in confirm.content.decode()
    policy.refresh_from_db()
    assert policy.mode == "shadow"  # asking changes nothing
    response = client.post(
        f"/policies/{policy.id}/mode/",
        {"mode": "enforce", "reason": "tested for a week", "next": "/policies/"},
    )
    assert response.status_code == 302 and response["Location"] == "/policies/"
    policy.refresh_from_db()
    assert policy.mode == "enforce"
    (event,) = events_of("policy.changed")
    assert event.payload["mode"] == "enforce" and event.reason == "tested for a week"


def test_with_htmx_a_mode_change_refreshes_the_list_in_place(client, login_as, configured):
    login_as("admin")
    rule = configured["rule"]
    dialog = client.get(f"/policies/rules/{rule.id}/mode/?mode=disabled", HTTP_HX_REQUEST="true")
    assert b"<html" not in dialog.content and b"confirm-danger" in dialog.content
    response = htmx(client, f"/policies/rules/{rule.id}/mode/", {"mode": "disabled"})
    assert response.status_code == 200
    assert "policiesChanged" in json.loads(response["HX-Trigger"])
    rule.refresh_from_db()
    assert rule.mode == "disabled"
    lists = client.get("/policies/?part=lists", HTTP_HX_REQUEST="true").content.decode()
    assert 'data-testid="mode-contract-burst">disabled<' in lists and "<html" not in lists


def test_an_unknown_mode_is_refused(client, login_as, configured):
    login_as("admin")
    response = client.post(f"/policies/{configured['policy'].id}/mode/", {"mode": "loud"})
    assert response.status_code == 400 and b"One of enforce" in response.content


def test_a_guardrail_mode_is_its_enforcement(client, login_as, configured):
    login_as("admin")
    guardrail = configured["guardrail"]
    client.post(f"/policies/guardrails/{guardrail.id}/mode/", {"mode": "shadow"})
    guardrail.refresh_from_db()
    assert guardrail.enforcement == "shadow" and guardrail.mode == "block"
    assert events_of("guardrail.changed")[0].payload["enforcement"] == "shadow"


def test_delete_asks_then_archives(client, login_as, configured):
    login_as("admin")
    policy = configured["policy"]
    confirm = client.get(f"/policies/{policy.id}/delete/")
    assert confirm.status_code == 200 and b"disabled and archived" in confirm.content
    response = client.post(f"/policies/{policy.id}/delete/", {"reason": "replaced"})
    assert response.status_code == 302 and response["Location"] == "/policies/"
    policy.refresh_from_db()
    assert policy.deleted_at is not None and policy.mode == "disabled"
    assert events_of("policy.changed")[0].payload["changes"] == ["deleted"]
    assert 'data-testid="policy-row-spend-limit"' not in client.get("/policies/").content.decode()
    assert client.get(f"/policies/{policy.id}/").status_code == 404
    assert client.post(f"/policies/{policy.id}/delete/").status_code == 404


def test_htmx_delete_redirects_to_the_list(client, login_as, configured):
    login_as("admin")
    rule = configured["rule"]
    response = htmx(client, f"/policies/rules/{rule.id}/delete/", {"next": "/policies/"})
    assert response.status_code == 200 and response["HX-Redirect"] == "/policies/"
    rule.refresh_from_db()
    assert rule.deleted_at is not None


def test_next_never_leaves_the_site(client, login_as, configured):
    login_as("admin")
    response = client.post(
        f"/policies/rules/{configured['rule'].id}/mode/",
        {"mode": "shadow", "next": "https://evil.example/"},
    )
    assert response["Location"] == "/policies/"


def test_unknown_ids_are_404(client, login_as):
    login_as("admin")
    for url in ("/policies/nope/", "/policies/nope/edit/", "/policies/rules/nope/mode/"):
        assert client.get(url).status_code == 404


# --- rules ------------------------------------------------------------------------------
def rule_post(**overrides):
    data = {
        "name": "contract-spend",
        "kind": "cumulative",
        "pattern": "contract.commit",
        "then_pattern": "",
        "window_value": "72",
        "window_unit": "hours",
        "threshold": "250000",
        "verdict": "require_approval",
        "severity": "major",
        "priority": "60",
        "agent": "",
        "mode": "enforce",
        "description": "",
    }
    data.update(overrides)
    return data


def test_creating_a_rule_through_the_form(client, login_as, make_agent):
    login_as("admin")
    agent = make_agent("buyer")
    assert client.get("/policies/rules/new/").status_code == 200
    response = client.post("/policies/rules/new/", rule_post(agent=str(agent.id)))
    rule = Rule.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/policies/#rule-{rule.id}"
    assert rule.window_seconds == 72 * 3600 and str(rule.threshold) == "250000.00"
    assert rule.agent == agent and rule.priority == 60
    assert events_of("rule.created")[0].payload["kind"] == "cumulative"
    edit = client.get(f"/policies/rules/{rule.id}/edit/").content.decode()
    assert 'value="3"' in edit and '<option value="days" selected>' in edit  # 72 h = 3 days


def test_editing_a_rule_keeps_the_window_and_records_the_change(client, login_as, configured):
    login_as("admin")
    rule = configured["rule"]
    response = client.post(
        f"/policies/rules/{rule.id}/edit/",
        rule_post(
            name="contract-burst",
            kind="rate",
            threshold="5",
            window_value="1",
            window_unit="days",
            verdict="halt",
            severity="critical",
            priority="50",
            agent=str(rule.agent_id),
        ),
    )
    assert response.status_code == 302
    rule.refresh_from_db()
    assert rule.threshold == 5 and rule.window_seconds == 86400 and rule.version == 2
    assert events_of("rule.changed")[0].payload["changes"] == ["threshold"]


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"kind": "rate", "threshold": "abc"}, "threshold", "non-negative integer count"),
        ({"kind": "rate", "threshold": "2.5"}, "threshold", "non-negative integer count"),
        ({"threshold": "-1"}, "threshold", "non-negative amount"),
        ({"window_value": ""}, "window_value", "Required for rate, cumulative and sequence"),
        ({"window_value": "-3"}, "window_value", "A whole number."),
        ({"window_value": "400", "window_unit": "days"}, "window_value", "366 days"),
        ({"window_unit": "weeks"}, "window_value", "Choose seconds, minutes, hours or days."),
        ({"then_pattern": "email.*"}, "then_pattern", "Only sequence rules take then_pattern."),
        ({"kind": "sequence", "threshold": ""}, "then_pattern", "A sequence rule needs"),
        ({"pattern": ""}, "pattern", ""),
        ({"priority": "999"}, "priority", "An integer from 1 to 100"),
        ({"kind": "bogus"}, "kind", "One of rate"),
        ({"verdict": "allow"}, "verdict", "One of block"),
        ({"agent": "not-a-uuid"}, "agent", "No such agent."),
    ],
)
def test_bad_rule_input_is_shown_next_to_its_field(client, login_as, overrides, field, message):
    login_as("admin")
    response = client.post("/policies/rules/new/", rule_post(**overrides))
    assert response.status_code == 400
    text = response.content.decode()
    after = text[text.index(f'id="id_{field}"') :]
    assert 'class="field-error"' in after.split("</div>", 2)[0] + after.split("</div>", 2)[1]
    assert message in after
    assert not Rule.objects.exists()


def test_a_sequence_and_a_first_seen_rule(client, login_as):
    login_as("admin")
    client.post(
        "/policies/rules/new/",
        rule_post(
            name="exfil",
            kind="sequence",
            pattern="customer.read",
            then_pattern="email.send",
            threshold="",
            window_value="30",
            window_unit="minutes",
            verdict="block",
        ),
    )
    client.post(
        "/policies/rules/new/",
        rule_post(
            name="new-vendor",
            kind="first_seen",
            pattern="contract.*",
            threshold="",
            window_value="",
            verdict="require_approval",
        ),
    )
    sequence, first_seen = Rule.objects.get(name="exfil"), Rule.objects.get(name="new-vendor")
    assert sequence.then_pattern == "email.send" and sequence.window_seconds == 1800
    assert first_seen.window_seconds is None and first_seen.threshold is None
    text = client.get("/policies/").content.decode()
    assert "customer.read then email.send within 30 min" in text
    assert "contract.* on a target never seen before (ever)" in text


# --- guardrails -------------------------------------------------------------------------
def guardrail_post(**overrides):
    data = {
        "name": "no-swearing",
        "kind": "banned_words",
        "mode": "block",
        "enforcement": "enforce",
        "stage": "input",
        "severity": "minor",
        "agent": "",
        "words": "darn\n  heck \n\n",
        "max_bytes": "65536",
        "detect_shown": "1",
        "description": "",
    }
    data.update(overrides)
    return data


def test_creating_guardrails_of_each_kind(client, login_as):
    login_as("admin")
    assert client.get("/policies/guardrails/new/").status_code == 200
    assert client.post("/policies/guardrails/new/", guardrail_post()).status_code == 302
    words = Guardrail.objects.get(name="no-swearing")
    assert words.config == {"words": ["darn", "heck"], "case_sensitive": False}
    client.post(
        "/policies/guardrails/new/",
        guardrail_post(name="pii-light", kind="pii", mode="redact", detect=["email", "card"]),
    )
    assert Guardrail.objects.get(name="pii-light").config == {"detect": ["email", "card"]}
    client.post(
        "/policies/guardrails/new/",
        guardrail_post(name="small", kind="payload_size", mode="log", max_bytes="1024"),
    )
    assert Guardrail.objects.get(name="small").config == {"max_bytes": 1024}
    assert len(events_of("guardrail.created")) == 3


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"words": "   "}, "words", "A list of 1 to 1000"),
        ({"kind": "payload_size", "mode": "redact"}, "effect", "can block or log, not redact"),
        ({"kind": "payload_size", "max_bytes": "999999"}, "max_bytes", "An integer from 1"),
        ({"kind": "canary"}, "kind", "Create canary tokens on the Settings page."),
        ({"stage": "sideways"}, "stage", "One of input"),
        ({"enforcement": "loud"}, "enforcement", "One of enforce"),
    ],
)
def test_bad_guardrail_input_is_shown_next_to_its_field(
    client, login_as, overrides, field, message
):
    login_as("admin")
    response = client.post("/policies/guardrails/new/", guardrail_post(**overrides))
    assert response.status_code == 400
    text = response.content.decode()
    assert message in text[text.index(f'id="id_{field}"') :]
    assert not Guardrail.objects.filter(name="no-swearing").exists()


def test_no_pii_kind_ticked_is_named(client, login_as):
    login_as("admin")
    response = client.post("/policies/guardrails/new/", guardrail_post(kind="pii", mode="redact"))
    assert response.status_code == 400
    assert "A non-empty list of email, phone" in response.content.decode()


def test_editing_a_guardrail_cannot_change_its_kind(client, login_as, configured):
    login_as("admin")
    guardrail = configured["guardrail"]
    page = client.get(f"/policies/guardrails/{guardrail.id}/edit/").content.decode()
    assert "darn" in page and "cannot change" in page
    response = client.post(
        f"/policies/guardrails/{guardrail.id}/edit/",
        guardrail_post(name="no-slurs", kind="pii", words="darn\nshoot", mode="log"),
    )
    assert response.status_code == 302
    guardrail.refresh_from_db()
    assert guardrail.kind == "banned_words" and guardrail.config["words"] == ["darn", "shoot"]
    assert guardrail.mode == "log" and guardrail.version == 2


@pytest.mark.parametrize(
    ("url", "data"),
    [
        ("/policies/new/", {"name": "p", "module": SPEND_LIMIT, "description": "a\x00b"}),
        ("/policies/new/", {"name": "p", "module": SPEND_LIMIT + "# \x00\n"}),
        ("/policies/rules/new/", rule_post(pattern="contract.\x00")),
        ("/policies/guardrails/new/", guardrail_post(words="darn\x00")),
        ("/settings/canaries/new/", {"name": "c", "tokens": "abcdefgh\x00ij", "generate": "0"}),
    ],
)
def test_nul_characters_are_a_field_error_in_both_databases(client, login_as, url, data):
    # PostgreSQL text columns cannot hold NUL: it must be refused before the service.
    login_as("admin")
    response = client.post(url, data)
    assert response.status_code == 400
    assert "NUL characters are not allowed." in response.content.decode() or (
        "Up to 100 letters" in response.content.decode()
    )
    assert not events_of("policy.created") and not events_of("rule.created")
    assert not events_of("guardrail.created")


def test_a_nul_in_a_confirmation_reason_is_refused(client, login_as, configured):
    login_as("admin")
    response = client.post(
        f"/policies/{configured['policy'].id}/mode/", {"mode": "enforce", "reason": "x\x00"}
    )
    assert response.status_code == 400 and b"NUL characters are not allowed." in response.content
