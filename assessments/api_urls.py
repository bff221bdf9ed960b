"""API routes of this app (mounted under /api/v1/)."""

from django.urls import path

from . import api

urlpatterns = [
    path("assessments/preview", api.PreviewView.as_view(), name="api-assessment-preview"),
    path(
        "agents/<str:agent_id>/assessments",
        api.AgentAssessmentsView.as_view(),
        name="api-agent-assessments",
    ),
]
