"""Every URL of the console and the API."""

from csp.decorators import csp_replace
from django.contrib.auth import views as auth_views
from django.http import JsonResponse
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from audit.api import public_keys
from console import views
from console.api.errors import (
    database_unavailable_response,
    is_database_unavailable,
    json_error_view,
)

# The agent runtime's endpoints (proposals and results) first: every governed action
# resolves its URL, and each include that does not hold it is a pass over its patterns.
api_v1 = [
    path("", include("console.authorize.api_urls")),
    path("", include("console.api.urls")),
    path("", include("assessments.api_urls")),
    path("", include("approvals.api_urls")),
    path("", include("trust.api_urls")),
    path("", include("audit.api_urls")),
]

urlpatterns = [
    # Before the console's pages: an API request then skips their 60-odd patterns (a
    # proposal's URL resolved in 27-32 us instead of 56-65 us, in-process), and a page
    # request pays one failed prefix test. No page pattern starts with "api/".
    path("api/v1/", include(api_v1)),
    path("", views.dashboard, name="dashboard"),
    path(
        "login/",
        auth_views.LoginView.as_view(
            template_name="registration/login.html", redirect_authenticated_user=True
        ),
        name="login",
    ),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("agents/", views.agent_list, name="agent-list"),
    path("agents/new/", views.agent_register, name="agent-register"),
    path("agents/<str:agent_id>/", views.agent_detail, name="agent-detail"),
    path("agents/<str:agent_id>/row/", views.agent_row, name="agent-row"),
    path("agents/<str:agent_id>/tab/<slug:tab>/", views.agent_detail, name="agent-tab"),
    path("agents/<str:agent_id>/contain/<slug:action>/", views.agent_contain, name="agent-contain"),
    path("agents/<str:agent_id>/keys/new/", views.key_issue, name="key-issue"),
    path("agents/<str:agent_id>/keys/<str:key_id>/revoke/", views.key_revoke, name="key-revoke"),
    path("sessions/<str:session_id>/halt/", views.session_halt, name="session-halt"),
    path("settings/", views.settings_page, name="settings"),
    path("settings/new-operator/", views.operator_new, name="operator-new"),
    path("settings/operators/<str:username>/", views.operator_detail, name="operator-detail"),
    path("settings/operators/<str:username>/roles/", views.operator_roles, name="operator-roles"),
    path(
        "settings/operators/<str:username>/active/",
        views.operator_active,
        name="operator-active",
    ),
    path(
        "settings/operators/<str:username>/password/",
        views.operator_password_reset,
        name="operator-password-reset",
    ),
    path("account/password/", views.password_change, name="password-change"),
    path(
        "settings/operators/<str:username>/tokens/new/",
        views.operator_token_issue,
        name="operator-token-issue",
    ),
    path(
        "settings/tokens/<str:token_prefix>/revoke/",
        views.operator_token_revoke,
        name="operator-token-revoke",
    ),
    path("healthz", views.healthz, name="healthz"),
    path(".well-known/warden-keys.json", public_keys, name="warden-keys"),
    path("", include("console.authorize.urls")),
    path("", include("assessments.urls")),
    path("", include("approvals.urls")),
    path("", include("trust.urls")),
    path("", include("audit.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # Swagger UI styles its widgets with inline style attributes; allow those on this page only.
    path(
        "api/docs/",
        csp_replace({"style-src": ["'self'", "'unsafe-inline'"]})(
            SpectacularSwaggerSplitView.as_view(url_name="api-schema")
        ),
        name="api-docs",
    ),
]

handler404 = "console.urls.not_found"
handler500 = "console.urls.server_error"


def not_found(request, exception=None):
    from django.views.defaults import page_not_found

    if request.path.startswith("/api/"):
        return json_error_view(404, "not_found", "No such endpoint or object.")(request)
    return page_not_found(request, exception)


def server_error(request):
    """Django's 500 handler. Django calls it inside the ``except`` of the failure, so a
    database outage raised outside a DRF view (middleware, session, authentication) is
    answered like one inside it: 503 with Retry-After, not 500."""
    import sys

    from django.views.defaults import server_error as default_server_error

    if is_database_unavailable(sys.exc_info()[1]):
        return database_unavailable_response(JsonResponse)
    if request.path.startswith("/api/"):
        return json_error_view(500, "server_error", "Internal error; it has been logged.")(request)
    return default_server_error(request)
