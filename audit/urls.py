"""Console pages of the event log (audit log, exports, replay, incident timeline)."""

from django.urls import path

from . import views

urlpatterns = [
    path("audit/", views.audit_log, name="audit-log"),
    path("audit/events/<str:event_id>/", views.event_detail, name="audit-event"),
    path("audit/export/", views.export_start, name="audit-export-start"),
    path("audit/exports/<str:export_id>/", views.export_page, name="audit-export"),
    path(
        "audit/exports/<str:export_id>/download/",
        views.export_download,
        name="audit-export-download",
    ),
    path(
        "audit/exports/<str:export_id>/manifest.json",
        views.export_manifest,
        name="audit-export-manifest",
    ),
    path("audit/sessions/<str:session_id>/", views.session_replay, name="audit-replay"),
    path("audit/sessions/<str:session_id>/proof.json", views.session_proof, name="audit-proof"),
    path("audit/incident/", views.incident, name="audit-incident"),
]
