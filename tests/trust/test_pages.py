"""The Monitor tab (chart, components, history, Recalculate) and the dashboard's trust part."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from tests.trust import events as ev
from tests.trust.events import DAY, T0, at
from trust.models import Alert, TrustHistory

NOW = T0 + 3 * DAY


@pytest.fixture
def agent(admin_user, django_capture_on_commit_callbacks):
    agent = ev.register_assessed(admin_user, "watched")
    with at(T0 + timedelta(hours=2)):
        session = ev.open_session(agent)
        ev.violation(agent, session, "critical", name="payment.release")
        ev.violation(agent, session, "critical")
        ev.violation(agent, session, "critical")  # tier 3 → 4: an alert
        ev.close_session(session, "halted")
    return agent


@pytest.fixture
def login_as(client, make_operator):
    def login(*roles):
        user = make_operator(*roles)
        with at(NOW):  # the session must still be valid at the pinned time
            client.force_login(user)
        return user

    return login


def monitor(client, agent, query=""):
    with at(NOW):
        return client.get(f"/agents/{agent.id}/tab/monitor/{query}")


def test_the_monitor_tab_plots_every_change_with_its_reason(client, login_as, agent):
    login_as("viewer")
    response = monitor(client, agent)
    assert response.status_code == 200
    html = response.content.decode()
    svg = html[
        html.index('<svg class="trust-chart"') : html.index("</svg>", html.index("trust-chart"))
    ]
    markers = re.findall(r'<circle class="marker[^"]*"[^>]*><title>([^<]*)</title>', svg)
    assert len(markers) == TrustHistory.objects.filter(agent=agent).count() == 5
    assert any("payment.release" in title and "critical violation" in title for title in markers)
    assert 'class="band band-1"' in svg and 'class="band band-4"' in svg
    assert 'class="score-line"' in svg and "tier-fill-4" in svg
    assert 'data-testid="components"' in html and "× 0.35" in html
    assert 'data-testid="trust-history"' in html and "critical violation" in html
    assert "Trust tier worsened" in html  # the open alert


@pytest.mark.parametrize("range_key", ["7d", "30d", "90d", "1y", "bogus"])
def test_every_range_renders(client, login_as, agent, range_key):
    login_as("viewer")
    response = monitor(client, agent, f"?range={range_key}")
    assert response.status_code == 200
    html = response.content.decode()
    shown = range_key if range_key != "bogus" else "30d"
    assert f'data-testid="range-{shown}"' in html
    assert re.search(rf'href="[^"]*\?range={shown}" hx-get="[^"]*part=tab&amp;range={shown}"', html)


def test_the_tab_partial_has_no_inline_script_or_style(client, login_as, agent):
    login_as("admin")
    with at(NOW):
        html = client.get(
            f"/agents/{agent.id}/tab/monitor/?part=tab&range=7d", HTTP_HX_REQUEST="true"
        ).content.decode()
    assert "trust-chart" in html
    assert "<script" not in html and " style=" not in html


def test_an_empty_history_says_so(client, login_as, make_agent):
    login_as("viewer")
    agent = make_agent("quiet", assessed=False)
    html = client.get(f"/agents/{agent.id}/tab/monitor/").content.decode()
    assert "Nothing to plot yet" in html and "No trust changes yet" in html


def test_history_pages_back(client, login_as, admin_user):
    agent = ev.register_assessed(admin_user, "long-history")
    for hour in range(1, 30):
        with at(T0 + timedelta(hours=hour)):
            ev.decided(agent, result="rejected")
    login_as("viewer")
    html = monitor(client, agent).content.decode()
    older = re.search(r'href="([^"]*before=(\d+))" data-testid="older"', html)
    assert older
    second = monitor(client, agent, "?range=30d&before=" + older.group(2)).content.decode()
    assert second.count("approval_outcome") < html.count("approval_outcome")
    assert "reassessment" in second  # the oldest row


def test_only_admins_see_and_use_recalculate(client, login_as, agent):
    login_as("viewer")
    assert 'data-testid="recalculate"' not in monitor(client, agent).content.decode()
    assert client.post(f"/agents/{agent.id}/trust/recalculate/").status_code == 403
    login_as("admin")
    html = monitor(client, agent).content.decode()
    assert 'data-testid="recalculate"' in html and "data-confirm=" in html
    with at(NOW):
        response = client.post(f"/agents/{agent.id}/trust/recalculate/", {"reason": "check"})
    assert response.status_code == 302 and response["Location"].endswith("/tab/monitor/")
    row = TrustHistory.objects.filter(agent=agent).latest("id")
    assert row.change_type == "manual_recalculation" and row.evaluated_by.startswith("user:admin")


def test_the_dashboard_shows_movers_and_open_alerts(client, login_as, agent):
    login_as("viewer")
    with at(NOW):
        html = client.get("/").content.decode()
    assert 'data-testid="trust-movers"' in html and 'data-testid="trust-alerts"' in html
    assert "watched" in html and "▼" in html
    assert "Trust tier worsened" in html
    assert "Acknowledge" not in html  # viewers cannot
    with at(NOW):
        part = client.get("/trust/overview/").content.decode()
    assert part.startswith('\n<div id="trust-overview"') or 'id="trust-overview"' in part


def test_oncall_acknowledges_an_alert(client, login_as, agent):
    alert = Alert.objects.get(agent=agent)
    login_as("viewer")
    assert client.post(f"/alerts/{alert.id}/acknowledge/").status_code == 403
    login_as("oncall")
    with at(NOW):
        assert "Acknowledge" in client.get("/").content.decode()
        response = client.post(f"/alerts/{alert.id}/acknowledge/", {"next": "/agents/"})
    assert response.status_code == 302 and response["Location"] == "/agents/"
    alert.refresh_from_db()
    assert not alert.is_open
    with at(NOW):
        assert "No open alerts" in client.get("/").content.decode()


def test_an_empty_dashboard_explains_itself(client, login_as):
    login_as("viewer")
    html = client.get("/").content.decode()
    assert "No movement this week" in html and "No open alerts" in html
