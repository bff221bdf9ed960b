from django.urls import path

from . import views

urlpatterns = [
    path("agents", views.AgentsView.as_view(), name="api-agents"),
    path("agents/<str:agent_id>", views.AgentView.as_view(), name="api-agent"),
    path("agents/<str:agent_id>/pause", views.PauseView.as_view(), name="api-agent-pause"),
    path("agents/<str:agent_id>/resume", views.ResumeView.as_view(), name="api-agent-resume"),
    path("agents/<str:agent_id>/revoke", views.RevokeView.as_view(), name="api-agent-revoke"),
    path("agents/<str:agent_id>/keys", views.KeysView.as_view(), name="api-agent-keys"),
    path("agents/<str:agent_id>/keys/<str:key_id>", views.KeyView.as_view(), name="api-agent-key"),
    path("sessions", views.SessionsView.as_view(), name="api-sessions"),
    path("sessions/<str:session_id>/end", views.SessionEndView.as_view(), name="api-session-end"),
    path("sessions/<str:session_id>/halt", views.HaltView.as_view(), name="api-session-halt"),
]
