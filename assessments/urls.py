"""Console pages of this app: the assessment wizard under /agents/<id>/assess/."""

from django.urls import path

from . import views

urlpatterns = [
    path("agents/<str:agent_id>/assess/", views.assessment_start, name="assessment-start"),
    path("agents/<str:agent_id>/assess/panel/", views.assessment_panel, name="assessment-panel"),
    path(
        "agents/<str:agent_id>/assess/<slug:step>/", views.assessment_step, name="assessment-step"
    ),
]
