"""Event log API (SPEC §6.3, §9): events, exports, proof certificates, checkpoints and the
public keys.

Every list and export takes the filter of ``audit/filters.py`` (``from``, ``to``,
``event_type``, ``agent``, ``session``, ``actor``, ``verdict``, ``result``, ``q``).
"""

from __future__ import annotations

import uuid

from django.http import JsonResponse
from django.urls import reverse
from django.views.decorators.http import require_GET
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from console.api.views import ERRORS
from console.errors import Invalid, NotFound

from . import proofs, services, streaming
from .filters import LogFilter
from .keys import keyring
from .models import Export, GovernanceEvent
from .selectors import event_document
from .services import latest_checkpoint

MAX_LIMIT = 500

FILTER_PARAMETERS = [
    OpenApiParameter("from", str, description="at or after (RFC 3339 or YYYY-MM-DD, UTC)"),
    OpenApiParameter("to", str, description="before (a bare date: the whole day)"),
    OpenApiParameter("event_type", str, many=True, description="exact type; repeatable"),
    OpenApiParameter("agent", str, description="agent id"),
    OpenApiParameter("session", str, description="session id"),
    OpenApiParameter("actor", str, description="agent:<id> | user:<name> | system:<component>"),
    OpenApiParameter("verdict", str, enum=["ALLOW", "BLOCK", "HALT", "REQUIRE_APPROVAL"]),
    OpenApiParameter("result", str, description="success, denied, approved, rejected, …"),
    OpenApiParameter("q", str, description="free text in reason and payload (3+ characters)"),
]


def _errors(*codes: int) -> dict:
    """The API's documented error answers (one error shape, console.api.errors)."""
    return {code: ERRORS[code] for code in codes}


def _uuid(value, what: str) -> uuid.UUID:
    try:
        return uuid.UUID(str(value))
    except ValueError as exc:
        raise NotFound(f"No such {what}.", code=f"{what}_not_found") from exc


class EventsView(APIView):
    permission = "read"

    @extend_schema(
        summary="Events, oldest first, keyset-paginated with ?after=<cursor>",
        parameters=[
            *FILTER_PARAMETERS,
            OpenApiParameter("after", int, description="the previous page's next cursor"),
            OpenApiParameter("limit", int, description=f"1 to {MAX_LIMIT} (default 100)"),
        ],
        responses={200: dict, **_errors(400, 401, 403)},
    )
    def get(self, request):
        flt = LogFilter.parse(request.query_params)
        errors = {}
        after = request.query_params.get("after", "0")
        limit = request.query_params.get("limit", "100")
        if not after.isdigit():
            errors["after"] = ["Must be a non-negative integer."]
        if not limit.isdigit() or not 1 <= int(limit) <= MAX_LIMIT:
            errors["limit"] = [f"An integer from 1 to {MAX_LIMIT}."]
        if errors:
            raise Invalid("after or limit is not valid.", fields=errors)
        limit_n = int(limit)
        events = flt.apply(GovernanceEvent.objects.select_related("log")).order_by("arrival")
        page = list(events.filter(arrival__gt=int(after))[: limit_n + 1])
        more = len(page) > limit_n
        page = page[:limit_n]
        return Response(
            {
                "results": [event_document(e) for e in page],
                "next": page[-1].arrival if more and page else None,
            }
        )


class FileNegotiation(BaseContentNegotiation):
    """File endpoints answer with their file whatever ``Accept`` says (errors stay JSON)."""

    def select_parser(self, request, parsers):
        return parsers[0] if parsers else None

    def select_renderer(self, request, renderers, format_suffix=None):
        return JSONRenderer(), JSONRenderer.media_type


class ExportView(APIView):
    """``GET /api/v1/events/export.csv|.xlsx?…filters…`` (SPEC §7, §9)."""

    permission = "export"
    content_negotiation_class = FileNegotiation
    fmt = "csv"

    @extend_schema(
        summary="Export the filtered log (CSV streamed, or .xlsx); over the async threshold, "
        "202 with the export to poll",
        parameters=FILTER_PARAMETERS,
        responses={
            (200, "text/csv"): OpenApiResponse(description="the file (X-Warden-Export-Id)"),
            202: OpenApiResponse(description="queued: poll status_url, then download_url"),
            **_errors(400, 401, 403),
        },
    )
    def get(self, request):
        flt = LogFilter.parse(request.query_params)
        export = services.start_export(flt, self.fmt, by=request.user)
        if export.streamed:
            response = streaming.deliver_export(request, export)
            response["Link"] = f'<{reverse("api-export", args=[export.id])}>; rel="describedby"'
            return response
        return Response(export_document(export), status=202)


def export_document(export: Export) -> dict:
    has_file = export.status == Export.Status.DONE and not (
        export.streamed and export.format == Export.Format.CSV
    )
    return {
        "export_id": str(export.id),
        "format": export.format,
        "status": export.status,
        "streamed": export.streamed,
        "rows_total": export.rows_total,
        "rows_done": export.rows_done,
        "progress_percent": export.progress_percent,
        "file_name": export.file_name,
        "status_url": reverse("api-export", args=[export.id]),
        "download_url": reverse("api-export-download", args=[export.id]) if has_file else None,
        "manifest": export.manifest,
        "error": export.error or None,
    }


class ExportStatusView(APIView):
    permission = "export"

    @extend_schema(
        summary="An export's progress and, once done, its manifest",
        responses={200: dict, **_errors(401, 403, 404)},
    )
    def get(self, request, export_id):
        export = Export.objects.filter(pk=_uuid(export_id, "export")).first()
        if export is None:
            raise NotFound("No such export.", code="export_not_found")
        return Response(export_document(export))


class ExportDownloadView(APIView):
    permission = "export"
    content_negotiation_class = FileNegotiation

    @extend_schema(
        summary="The file of a finished export",
        responses={
            **{(200, media_type): bytes for media_type in streaming.CONTENT_TYPES.values()},
            **_errors(401, 403, 404),
        },
    )
    def get(self, request, export_id):
        export = Export.objects.filter(pk=_uuid(export_id, "export")).first()
        if export is None:
            raise NotFound("No such export.", code="export_not_found")
        path = services.export_path(export)
        if export.status != Export.Status.DONE or not path.exists():
            raise NotFound("This export has no file (yet).", code="export_not_ready")
        return streaming.attachment(
            request,
            streaming.file_chunks(path),
            filename=export.file_name,
            content_type=streaming.CONTENT_TYPES[export.format],
        )


class ProofView(APIView):
    permission = "read"

    @extend_schema(
        summary="The session's proof certificate (SPEC §6.3), checkable offline with "
        "python -m audit.verify",
        responses={200: dict, **_errors(401, 403, 404)},
    )
    def get(self, request, session_id):
        return Response(proofs.certificate(_uuid(session_id, "session")))


class LatestCheckpointView(APIView):
    permission = "read"

    @extend_schema(
        summary="The latest signed tree head (SPEC §6.3 checkpoint shape)",
        responses={200: dict, **_errors(401, 403, 404)},
    )
    def get(self, request):
        checkpoint = latest_checkpoint()
        if checkpoint is None:
            raise NotFound("No checkpoint has been signed yet.", code="no_checkpoint")
        return Response(checkpoint.as_json())


@require_GET
def public_keys(request):
    """``/.well-known/warden-keys.json``: every public key ever used (public, no login)."""
    response = JsonResponse({"keys": [key.as_json() for key in keyring().public_keys()]})
    response["Cache-Control"] = "public, max-age=300"
    return response
