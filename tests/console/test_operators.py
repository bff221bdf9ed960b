"""Operators managed from Settings (SPEC §8): an admin changes an operator's roles or
deactivates them, with a reason and an event; the change applies from the operator's next
request; Warden is never left without an active admin, and no admin locks themselves out."""

import threading
import time

import pytest
from django.contrib.auth import get_user_model
from django.db import connection, transaction
from rest_framework.test import APIClient

from console import services
from console.errors import Conflict, Invalid
from console.roles import can
from tests.helpers import events_of


def _fresh(user):
    return get_user_model().objects.get(pk=user.pk)


@pytest.fixture
def rita(make_operator):
    return make_operator("reviewer", username="rita")


def test_roles_are_replaced_with_a_reason_and_apply_at_once(admin_user, rita):
    assert not can(_fresh(rita), "contain")

    services.set_operator_roles(
        rita, by=admin_user, roles=["oncall", "reviewer"], reason="joins the on-call rota"
    )

    assert can(_fresh(rita), "contain") and can(_fresh(rita), "decide")
    [event] = events_of("operator.updated")
    assert event.actor == "user:root-admin" and event.reason == "joins the on-call rota"
    assert event.payload == {
        "username": "rita",
        "roles": ["oncall", "reviewer"],
        "previous_roles": ["reviewer"],
    }

    services.set_operator_roles(rita, by=admin_user, roles=["viewer"], reason="left the rota")
    assert not can(_fresh(rita), "decide") and can(_fresh(rita), "read")


@pytest.mark.parametrize(
    ("roles", "field_error"),
    [
        ([], "Choose at least one role."),
        (["reviewer", "root"], "Choose from admin, compliance, reviewer, oncall, viewer."),
        ("reviewer", "A list."),
    ],
)
def test_bad_roles_are_refused_and_nothing_changes(admin_user, rita, roles, field_error):
    with pytest.raises(Invalid) as refused:
        services.set_operator_roles(rita, by=admin_user, roles=roles, reason="try")
    assert refused.value.fields == {"roles": [field_error]}
    assert services.operator_roles(_fresh(rita)) == ["reviewer"]
    assert not events_of("operator.updated")


def test_a_reason_is_required(admin_user, rita):
    with pytest.raises(Invalid) as refused:
        services.set_operator_roles(rita, by=admin_user, roles=["viewer"], reason="")
    assert refused.value.fields == {"reason": ["This field is required."]}
    with pytest.raises(Invalid):
        services.set_operator_active(rita, by=admin_user, active=False, reason=" ")
    assert _fresh(rita).is_active and services.operator_roles(_fresh(rita)) == ["reviewer"]


def test_no_admin_locks_themselves_out_and_one_admin_always_remains(make_operator):
    only = make_operator("admin", username="only-admin")
    with pytest.raises(Conflict) as demoted:
        services.set_operator_roles(only, by=only, roles=["viewer"], reason="oops")
    assert demoted.value.code == "self_demotion"
    with pytest.raises(Conflict) as deactivated:
        services.set_operator_active(only, by=only, active=False, reason="oops")
    assert deactivated.value.code == "self_deactivation"

    # A second admin may demote the first while another admin remains...
    second = make_operator("admin", username="second-admin")
    services.set_operator_roles(only, by=second, roles=["viewer"], reason="moved teams")
    # ...but never the last one. With the self-checks this is where a race ends: two admins
    # demoting each other at once; the second to get the lock finds it would remove the
    # last admin (helper's own demotion was the first).
    helper = make_operator("admin", username="helper-admin")
    services.set_operator_roles(helper, by=second, roles=["viewer"], reason="first of the two")
    with pytest.raises(Conflict) as last:
        services.set_operator_roles(second, by=helper, roles=["viewer"], reason="second")
    assert last.value.code == "last_admin"
    assert services.operator_roles(_fresh(second)) == ["admin"]
    with pytest.raises(Conflict) as last_active:
        services.set_operator_active(second, by=helper, active=False, reason="second")
    assert last_active.value.code == "last_admin" and _fresh(second).is_active


def test_a_deactivated_operator_is_refused_on_their_next_request(client, admin_user, rita):
    _, token = services.issue_operator_token(rita, by=admin_user)
    api = APIClient()
    client.force_login(rita)
    assert client.get("/approvals/").status_code == 200
    assert api.get("/api/v1/agents", HTTP_AUTHORIZATION=f"Token {token}").status_code == 200

    services.set_operator_active(rita, by=admin_user, active=False, reason="left the company")

    assert client.get("/approvals/")["Location"].startswith("/login/")
    assert api.get("/api/v1/agents", HTTP_AUTHORIZATION=f"Token {token}").status_code == 401
    [event] = events_of("operator.deactivated")
    assert event.reason == "left the company"
    assert event.payload == {"username": "rita", "roles": ["reviewer"]}
    with pytest.raises(Conflict) as again:
        services.set_operator_active(rita, by=admin_user, active=False, reason="twice")
    assert again.value.code == "already_deactivated"

    services.set_operator_active(rita, by=admin_user, active=True, reason="came back")
    assert api.get("/api/v1/agents", HTTP_AUTHORIZATION=f"Token {token}").status_code == 200
    assert len(events_of("operator.reactivated")) == 1


def test_only_an_admin_opens_or_changes_an_operator(client, make_operator, rita):
    client.force_login(make_operator("compliance"))
    for url, data in [
        ("/settings/operators/rita/", None),
        ("/settings/operators/rita/roles/", {"roles": ["admin"], "reason": "self-service"}),
        ("/settings/operators/rita/active/", {"active": "0", "reason": "no"}),
    ]:
        response = client.post(url, data) if data else client.get(url)
        assert response.status_code == 403, url
    assert services.operator_roles(_fresh(rita)) == ["reviewer"] and _fresh(rita).is_active
    assert len(events_of("access.denied")) == 3


def test_the_console_form_changes_roles_and_shows_specific_errors(client, admin_user, rita):
    client.force_login(admin_user)
    page = client.get("/settings/operators/rita/").content.decode()
    assert 'value="reviewer" data-testid="role-reviewer" checked' in page
    assert 'href="/audit/?actor=user:rita" data-testid="operator-activity"' in page

    missing = client.post("/settings/operators/rita/roles/", {"roles": ["viewer"]})
    assert missing.status_code == 400 and "This field is required." in missing.content.decode()
    none = client.post("/settings/operators/rita/roles/", {"reason": "x"})
    assert none.status_code == 400 and "Choose at least one role." in none.content.decode()

    saved = client.post(
        "/settings/operators/rita/roles/", {"roles": ["reviewer", "oncall"], "reason": "rota"}
    )
    assert saved.status_code == 302 and saved["Location"] == "/settings/operators/rita/"
    assert services.operator_roles(_fresh(rita)) == ["oncall", "reviewer"]

    self_out = client.post(
        "/settings/operators/root-admin/active/", {"active": "0", "reason": "tired"}
    )
    assert self_out.status_code == 409
    assert "You cannot deactivate yourself." in self_out.content.decode()

    gone = client.post("/settings/operators/rita/active/", {"active": "0", "reason": "left"})
    assert gone.status_code == 302 and not _fresh(rita).is_active
    settings = client.get("/settings/").content.decode()
    row = settings.split('data-testid="operator-row-rita"')[1].split("</tr>")[0]
    assert "deactivated" in row and "never" in row  # rita never logged in
    assert client.get("/settings/operators/nobody/").status_code == 404


@pytest.mark.production
def test_two_admins_demoting_each_other_at_once_leave_one_admin(transactional_db, make_operator):
    """PostgreSQL: the second demotion waits for the first's locks, then sees it."""
    first = make_operator("admin", username="first-admin")
    second = make_operator("admin", username="second-admin")
    first_done, outcome = threading.Event(), {}

    def demote_second():
        try:
            with transaction.atomic():
                services.set_operator_roles(second, by=first, roles=["viewer"], reason="a")
                first_done.set()
                time.sleep(0.3)  # hold the locks while the other demotion starts
        finally:
            connection.close()

    def demote_first():
        first_done.wait(5)
        try:
            services.set_operator_roles(first, by=second, roles=["viewer"], reason="b")
            outcome["second"] = "demoted"
        except Conflict as exc:
            outcome["second"] = exc.code
        finally:
            connection.close()

    threads = [threading.Thread(target=demote_second), threading.Thread(target=demote_first)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)

    assert outcome == {"second": "last_admin"}
    assert services.operator_roles(_fresh(first)) == ["admin"]
    assert services.operator_roles(_fresh(second)) == ["viewer"]


def test_an_operator_changes_their_own_password(client, make_operator):
    user = make_operator("viewer", username="vera", password="old password 123")
    other = type(client)()
    other.force_login(user)
    client.force_login(user)

    wrong = client.post(
        "/account/password/",
        {"old_password": "nope", "new_password1": "x", "new_password2": "y"},
    )
    assert wrong.status_code == 400
    page = wrong.content.decode()
    assert "Your old password was entered incorrectly." in page
    short = client.post(
        "/account/password/",
        {"old_password": "old password 123", "new_password1": "abc", "new_password2": "abc"},
    )
    assert short.status_code == 400 and "too short" in short.content.decode()
    assert not events_of("operator.password_changed")

    done = client.post(
        "/account/password/",
        {
            "old_password": "old password 123",
            "new_password1": "a much longer passphrase",
            "new_password2": "a much longer passphrase",
        },
    )
    assert done.status_code == 302
    assert _fresh(user).check_password("a much longer passphrase")
    assert client.get("/agents/").status_code == 200  # this session stays
    assert other.get("/agents/")["Location"].startswith("/login/")  # the other one ends
    [event] = events_of("operator.password_changed")
    assert event.actor == "user:vera" and event.payload == {"username": "vera"}
    assert "a much longer passphrase" not in str(event.payload)


def test_an_admin_sets_a_new_password_shown_once(client, admin_user, rita):
    rita_client = type(client)()
    rita_client.force_login(rita)
    client.force_login(admin_user)

    missing = client.post("/settings/operators/rita/password/", {"reason": ""})
    assert missing.status_code == 400 and "This field is required." in missing.content.decode()
    done = client.post("/settings/operators/rita/password/", {"reason": "forgot it"})
    assert done.status_code == 200 and "no-store" in done["Cache-Control"]
    password = done.content.decode().split('data-testid="new-password">')[1].split("<")[0]
    assert _fresh(rita).check_password(password)
    assert rita_client.get("/agents/")["Location"].startswith("/login/")
    [event] = events_of("operator.password_reset")
    assert event.reason == "forgot it" and event.payload == {"username": "rita"}

    own = client.post("/settings/operators/root-admin/password/", {"reason": "lazy"})
    assert own.status_code == 409
    assert "Change your own password from your account page." in own.content.decode()


def test_create_operator_refuses_a_weak_password(db):
    from django.core.management import CommandError, call_command

    with pytest.raises(CommandError, match="at least 12 characters"):
        call_command("create_operator", "weak", "--role", "viewer", "--password", "short1")
    with pytest.raises(CommandError, match="entirely numeric"):
        call_command("create_operator", "weak", "--role", "viewer", "--password", "1234567890123")
    assert not get_user_model().objects.filter(username="weak").exists()
    with pytest.raises(CommandError, match="username refused"):  # it goes into console URLs
        call_command("create_operator", "a/b", "--role", "viewer")
    call_command(
        "create_operator", "strong", "--role", "viewer", "--password", "a long pass phrase"
    )
    assert get_user_model().objects.get(username="strong").check_password("a long pass phrase")


def test_an_admin_creates_an_operator_whose_first_password_is_shown_once(client, admin_user):
    client.force_login(admin_user)
    assert client.get("/settings/new-operator/").status_code == 200

    created = client.post(
        "/settings/new-operator/",
        {"username": "oscar", "roles": ["oncall", "viewer"], "reason": "joins on-call"},
    )

    assert created.status_code == 200 and "no-store" in created["Cache-Control"]
    password = created.content.decode().split('data-testid="new-password">')[1].split("<")[0]
    oscar = get_user_model().objects.get(username="oscar")
    assert oscar.check_password(password) and oscar.is_active
    assert services.operator_roles(oscar) == ["oncall", "viewer"]
    [event] = events_of("operator.created")
    assert event.actor == "user:root-admin" and event.reason == "joins on-call"
    assert event.payload == {"username": "oscar", "roles": ["oncall", "viewer"]}
    assert password not in str(event.payload)


@pytest.mark.parametrize(
    ("data", "status", "field", "message"),
    [
        ({"username": "", "roles": ["viewer"], "reason": "r"}, 400, "username", "Enter a valid"),
        ({"username": "a b", "roles": ["viewer"], "reason": "r"}, 400, "username", "Enter a"),
        ({"username": "x" * 151, "roles": ["viewer"], "reason": "r"}, 400, "username", "150"),
        ({"username": "ok", "roles": [], "reason": "r"}, 400, "roles", "at least one role"),
        ({"username": "ok", "roles": ["god"], "reason": "r"}, 400, "roles", "Choose from"),
        ({"username": "ok", "roles": ["viewer"], "reason": ""}, 400, "reason", "required"),
        ({"username": "root-admin", "roles": ["viewer"], "reason": "r"}, 409, "username", "Taken"),
    ],
)
def test_bad_new_operators_are_refused_field_by_field(
    client, admin_user, data, status, field, message
):
    client.force_login(admin_user)
    before = get_user_model().objects.count()
    response = client.post("/settings/new-operator/", data)
    assert response.status_code == status
    assert message in response.content.decode()
    with pytest.raises((Invalid, Conflict)) as refused:
        services.create_operator(by=admin_user, **data)
    assert field in (refused.value.fields or {})
    assert get_user_model().objects.count() == before
    assert not events_of("operator.created")


def test_only_an_admin_creates_operators(client, make_operator):
    client.force_login(make_operator("compliance"))
    data = {"username": "sneaky", "roles": ["admin"], "reason": "r"}
    assert client.post("/settings/new-operator/", data).status_code == 403
    assert not get_user_model().objects.filter(username="sneaky").exists()


def test_five_wrong_current_passwords_end_the_session(client, make_operator):
    user = make_operator("viewer", username="stolen", password="the real passphrase")
    client.force_login(user)
    wrong = {
        "old_password": "guess",
        "new_password1": "new passphrase 1",
        "new_password2": "new passphrase 1",
    }
    for attempt in range(1, 5):
        assert client.post("/account/password/", wrong).status_code == 400
        assert client.get("/agents/").status_code == 200, attempt
    last = client.post("/account/password/", wrong)
    assert last.status_code == 302 and last["Location"] == "/login/"
    assert client.get("/agents/")["Location"].startswith("/login/")
    assert [e.payload["failures"] for e in events_of("operator.password_change_failed")] == [
        1,
        2,
        3,
        4,
        5,
    ]
    assert _fresh(user).check_password("the real passphrase")
