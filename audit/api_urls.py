from django.urls import path

from . import api

urlpatterns = [
    path("events", api.EventsView.as_view(), name="api-events"),
    path("checkpoints/latest", api.LatestCheckpointView.as_view(), name="api-checkpoint-latest"),
]
