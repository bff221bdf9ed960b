"""Console pages of the approval queue."""

from django.urls import path

from . import views

urlpatterns = [
    path("approvals/", views.queue, name="approval-queue"),
]
