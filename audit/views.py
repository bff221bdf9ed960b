"""Console pages of the event log (SPEC §7): the audit log, one event, exports, session
replay, proof downloads and the incident timeline.

Function views with explicit role decorators. The log's filters update the results in
place with HTMX (``hx-push-url`` keeps the address bar in step, so a filtered view can be
bookmarked, shared and reloaded); without JavaScript the same form submits normally.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from console.errors import Invalid, WardenError
from console.models import Agent, AgentSession
from console.roles import can, role_required

from . import filters, proofs, selectors, services, streaming, timelines
from .eventcodec import event_leaf_hash
from .filters import LogFilter
from .keys import keyring
from .models import EventLogEntry, Export, GovernanceEvent
from .services import integration_lag, latest_checkpoint

PAGE = 50


def _uuid(value, what: str) -> uuid.UUID:
    try:
        return uuid.UUID(str(value))
    except ValueError as exc:
        raise Http404(f"No such {what}") from exc


def _cursor(request: HttpRequest, name: str) -> int | None:
    value = request.GET.get(name, "")
    return int(value) if value.isdigit() else None


def _pairs(params: dict) -> list[tuple[str, str]]:
    return [
        (name, item)
        for name, value in params.items()
        for item in (value if isinstance(value, list) else [value])
    ]


def _local(moment) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M") if moment else ""


def _filter_context(flt: LogFilter | None, request) -> dict:
    return {
        "params": flt.params if flt else {k: request.GET.get(k, "") for k in filters.PARAMS},
        "from_value": _local(flt.start) if flt else request.GET.get("from", ""),
        "to_value": _local(flt.end) if flt else request.GET.get("to", ""),
        "selected_types": flt.event_types if flt else tuple(request.GET.getlist("event_type")),
        "event_types": filters.EVENT_TYPES,
        "verdicts": filters.VERDICTS,
        "results": filters.RESULTS,
        "agents": Agent.objects.order_by("name").values_list("id", "name"),
    }


# --- the log --------------------------------------------------------------------------
@role_required("read")
@require_GET
def audit_log(request: HttpRequest) -> HttpResponse:
    """Newest first, filtered, keyset-paginated on arrival (``?before=`` / ``?after=``)."""
    errors: dict = {}
    flt = None
    page = selectors.LogPage([], None, None)
    try:
        flt = LogFilter.parse(request.GET)
    except Invalid as exc:
        errors = exc.fields or {}
    else:
        page = selectors.log_page(
            flt, before=_cursor(request, "before"), after=_cursor(request, "after"), limit=PAGE
        )
    selectors.with_agent_names(page.events)
    context = {
        **_filter_context(flt, request),
        "page": page,
        "param_pairs": _pairs(flt.params if flt else {}),
        "flt": flt,
        "errors": errors,
        "querystring": flt.querystring() if flt else "",
        "checkpoint": latest_checkpoint(),
        "lag": integration_lag(),
        "can_export": can(request.user, "export"),
        "async_rows": settings.WARDEN_EXPORT_ASYNC_ROWS,
        "recent_exports": Export.objects.select_related("created_by")[:8]
        if can(request.user, "export")
        else [],
    }
    status = 400 if errors else 200
    htmx = request.htmx
    if htmx and htmx.target == "results" and not htmx.history_restore_request:
        response = render(request, "audit/log.html#results", context, status=status)
        if flt is not None:
            # Push the filter as the server understood it: no empty fields in the address.
            cursors = {k: request.GET[k] for k in ("before", "after") if request.GET.get(k)}
            query = flt.querystring(**cursors)
            response["HX-Push-Url"] = request.path + (f"?{query}" if query else "")
        return response
    return render(request, "audit/log.html", context, status=status)


@role_required("read")
@require_GET
def event_detail(request: HttpRequest, event_id) -> HttpResponse:
    event = get_object_or_404(
        GovernanceEvent.objects.select_related("log"), id=_uuid(event_id, "event")
    )
    entry = EventLogEntry.objects.filter(event=event).first()
    context = {
        "event": event,
        "entry": entry,
        "payload": json.dumps(event.payload, indent=2, ensure_ascii=False, sort_keys=True),
        "agent": Agent.objects.filter(pk=event.agent_id).first() if event.agent_id else None,
        "lag": integration_lag(),
        "decision": (
            timelines.decision_of(event.payload) if event.event_type == "action.evaluated" else None
        ),
    }
    if entry is not None:
        fields = event.content_fields() | {"seq": entry.seq, "prev_hash": entry.prev_hash}
        context["leaf_ok"] = event_leaf_hash(fields, event.payload_json).hex() == entry.leaf_hash
        context["signature_ok"] = _signature_ok(entry)
        context["covering"] = selectors.covering_checkpoint_of(entry.seq)
    return render(request, "audit/event.html", context)


def _signature_ok(entry: EventLogEntry) -> bool | None:
    import base64

    from cryptography.exceptions import InvalidSignature

    key = next((k for k in keyring().public_keys() if k.key_id == entry.key_id), None)
    if key is None:
        return None
    try:
        key.verifier().verify(base64.b64decode(entry.signature), bytes.fromhex(entry.leaf_hash))
    except (InvalidSignature, ValueError):
        return False
    return True


# --- exports --------------------------------------------------------------------------
@role_required("export")
@require_POST
def export_start(request: HttpRequest) -> HttpResponse:
    """Export the filter in the form: small ones download now, big ones go to a task."""
    try:
        flt = LogFilter.parse(request.POST)
        export = services.start_export(flt, request.POST.get("format", "csv"), by=request.user)
    except WardenError as exc:
        return render(
            request,
            "audit/export.html",
            {"export": None, "error": exc.message, "fields": exc.fields or {}},
            status=exc.status,
        )
    if export.streamed:
        return streaming.deliver_export(request, export)
    return redirect("audit-export", export_id=export.id)


def _export(export_id) -> Export:
    return get_object_or_404(
        Export.objects.select_related("created_by"), pk=_uuid(export_id, "export")
    )


@role_required("export")
@require_GET
def export_page(request: HttpRequest, export_id) -> HttpResponse:
    export = _export(export_id)
    context = {
        "export": export,
        "manifest": json.dumps(export.manifest, indent=2) if export.manifest else "",
        "filter_query": LogFilter.parse(export.filters).querystring(),
        "has_file": not (export.streamed and export.format == "csv"),
    }
    if request.htmx and request.GET.get("part") == "progress":
        return render(request, "audit/export.html#progress", context)
    return render(request, "audit/export.html", context)


@role_required("export")
@require_GET
def export_download(request: HttpRequest, export_id) -> HttpResponse:
    export = _export(export_id)
    path = services.export_path(export)
    if export.status != Export.Status.DONE or not path.exists():
        raise Http404("This export has no file to download.")
    return streaming.attachment(
        request,
        streaming.file_chunks(path),
        filename=export.file_name,
        content_type=streaming.CONTENT_TYPES[export.format],
    )


@role_required("export")
@require_GET
def export_manifest(request: HttpRequest, export_id) -> HttpResponse:
    export = _export(export_id)
    if not export.manifest:
        raise Http404("This export has no manifest yet.")
    response = JsonResponse(export.manifest, json_dumps_params={"indent": 2})
    name = export.file_name.rsplit(".", 1)[0]
    response["Content-Disposition"] = f'attachment; filename="{name}.manifest.json"'
    return response


# --- sessions -------------------------------------------------------------------------
@role_required("read")
@require_GET
def session_replay(request: HttpRequest, session_id) -> HttpResponse:
    sid = _uuid(session_id, "session")
    session = AgentSession.objects.select_related("agent").filter(pk=sid).first()
    steps = timelines.session_replay(sid)
    if session is None and not steps:
        raise Http404("No such session")
    agent = session.agent if session else Agent.objects.filter(pk=steps[0].event.agent_id).first()
    return render(
        request,
        "audit/replay.html",
        {
            "session_id": sid,
            "session": session,
            "agent": agent,
            "steps": steps,
            "speeds": ("0.5", "1", "2"),
        },
    )


@role_required("read")
@require_GET
def session_proof(request: HttpRequest, session_id) -> HttpResponse:
    """The session's proof certificate as a file to keep (same document as the API)."""
    sid = _uuid(session_id, "session")
    try:
        certificate = proofs.certificate(sid)
    except WardenError as exc:
        if exc.status == 404:
            raise Http404(exc.message) from exc
        return render(request, "audit/proof_error.html", {"error": exc}, status=exc.status)
    response = JsonResponse(certificate, json_dumps_params={"indent": 1})
    response["Content-Disposition"] = f'attachment; filename="warden-proof-{sid}.json"'
    return response


# --- incident timeline ----------------------------------------------------------------
@role_required("read")
@require_GET
def incident(request: HttpRequest) -> HttpResponse:
    """Agent + time window → every action, verdict, approval, trust change and
    containment step in order, with totals and each session's proof (printable)."""
    agents = Agent.objects.order_by("name")
    now = timezone.now().replace(microsecond=0)
    context: dict = {
        "agents": agents.values_list("id", "name"),
        "params": {k: request.GET.get(k, "") for k in ("agent", "from", "to")},
        "errors": {},
        "report": None,
    }
    if not request.GET.get("agent"):
        context["params"]["from"] = context["params"]["from"] or (
            now - timedelta(hours=72)
        ).strftime("%Y-%m-%dT%H:%M")
        return render(request, "audit/incident.html", context)
    try:
        flt = LogFilter.parse(
            {
                "agent": request.GET.get("agent"),
                "from": request.GET.get("from"),
                "to": request.GET.get("to"),
            }
        )
    except Invalid as exc:
        context["errors"] = exc.fields or {}
        return render(request, "audit/incident.html", context, status=400)
    agent = Agent.objects.filter(pk=flt.agent).first()
    if agent is None:
        context["errors"] = {"agent": ["No such agent."]}
        return render(request, "audit/incident.html", context, status=400)
    start = flt.start or datetime(1970, 1, 1, tzinfo=UTC)
    end = flt.end or now + timedelta(seconds=1)
    report = timelines.incident_report(agent.id, start, end)
    context.update(
        agent=agent,
        start=start,
        end=end,
        report=report,
        generated=now,
        log_query=flt.querystring(),
        proof_base=request.build_absolute_uri("/")[:-1],
        checkpoint=latest_checkpoint(),
    )
    return render(request, "audit/incident.html", context)
