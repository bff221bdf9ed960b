from django.urls import path

from . import api

urlpatterns = [
    path("events", api.EventsView.as_view(), name="api-events"),
    path("events/export.csv", api.ExportView.as_view(fmt="csv"), name="api-events-export-csv"),
    path("events/export.xlsx", api.ExportView.as_view(fmt="xlsx"), name="api-events-export-xlsx"),
    path("exports/<str:export_id>", api.ExportStatusView.as_view(), name="api-export"),
    path(
        "exports/<str:export_id>/download",
        api.ExportDownloadView.as_view(),
        name="api-export-download",
    ),
    path("sessions/<str:session_id>/proof", api.ProofView.as_view(), name="api-session-proof"),
    path("checkpoints/latest", api.LatestCheckpointView.as_view(), name="api-checkpoint-latest"),
]
