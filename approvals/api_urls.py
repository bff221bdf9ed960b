"""API routes of this app (mounted under /api/v1/)."""

from django.urls import path

from . import api, longpoll

urlpatterns = [
    path("approvals", api.ApprovalsView.as_view(), name="api-approvals"),
    path("approvals/<str:approval_id>", longpoll.approval_status, name="api-approval"),
    path(
        "approvals/<str:approval_id>/decide", api.DecideView.as_view(), name="api-approval-decide"
    ),
]
