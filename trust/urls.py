"""Console pages of this app."""

from django.urls import path

from . import views

urlpatterns = [
    path("agents/<str:agent_id>/trust/recalculate/", views.recalculate, name="trust-recalculate"),
    path("alerts/<str:alert_id>/acknowledge/", views.acknowledge, name="alert-acknowledge"),
    path("trust/overview/", views.overview, name="trust-overview"),
]
