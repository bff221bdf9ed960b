"""Console pages of the approval queue."""

from django.urls import path

from . import views

urlpatterns = [
    path("approvals/", views.queue, name="approval-queue"),
    path("approvals/badge/", views.badge, name="approval-badge"),
    path("approvals/panel/", views.dashboard_panel, name="approval-panel"),
    path("approvals/<str:approval_id>/decide/", views.decide, name="approval-decide"),
    path("approvals/<str:approval_id>/reject/", views.reject_form, name="approval-reject"),
    path(
        "approvals/<str:approval_id>/resolve/<slug:outcome>/",
        views.resolve_form,
        name="approval-resolve",
    ),
]
