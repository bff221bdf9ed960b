"""The signed, append-only event log (SPEC §6).

Two insert-only tables, as SPEC §6.2 allows:

* ``GovernanceEvent`` holds an event's content. It is written by ``audit.services.record``
  inside the transaction of the change it records, and nowhere else.
* ``EventLogEntry`` holds its log fields (``seq``, ``prev_hash``, ``leaf_hash``,
  ``signature``, ``key_id``). The integrator (``audit.services.integrate_pending``) appends
  them in arrival order right after commit, so the request path never waits on the one
  serial point of the log.

``PendingEvent`` is the integrator's work queue (the only table here that allows DELETE),
and ``Checkpoint`` holds signed RFC 9162 tree heads. UPDATE, DELETE and TRUNCATE on
events, log entries and checkpoints are refused by database triggers installed by
migrations (``audit/triggers.py``).
"""

from __future__ import annotations

import json
import uuid
from functools import cached_property

from django.conf import settings
from django.db import models

from .timefmt import format_timestamp


class GovernanceEvent(models.Model):
    class Result(models.TextChoices):
        SUCCESS = "success"
        DENIED = "denied"
        FAILED = "failed"
        APPROVED = "approved"
        REJECTED = "rejected"
        EXPIRED = "expired"
        CANCELLED = "cancelled"
        PENDING = "pending"

    # Arrival order: the integrator appends pending events in this order.
    arrival = models.BigAutoField(primary_key=True)
    id = models.UUIDField(unique=True, default=uuid.uuid4, editable=False)
    timestamp = models.DateTimeField()
    event_type = models.CharField(max_length=64)
    agent_id = models.UUIDField(null=True, blank=True)
    session_id = models.UUIDField(null=True, blank=True)
    workflow_id = models.CharField(max_length=200, null=True, blank=True)
    run_id = models.UUIDField(null=True, blank=True)
    actor = models.CharField(max_length=200)
    verdict = models.CharField(max_length=32, null=True, blank=True)
    result = models.CharField(max_length=32, default="success")
    reason = models.TextField(blank=True, default="")
    # RFC 8785 canonical JSON text of the payload, kept verbatim so hashing never depends
    # on how a database re-serialises JSON (jsonb reorders keys and rewrites numbers).
    payload_json = models.TextField(default="{}")

    class Meta:
        # The audit log (SPEC §7) pages newest first by ``arrival`` with one filter per
        # index below (``audit.filters``); PostgreSQL combines or picks one when several
        # filters are set. Free text has its own trigram index on PostgreSQL, installed by
        # migration ``audit.0004`` (``audit/search.py``).
        indexes = [
            # "events of agent A, newest first" (log page, API, Verify tab)
            models.Index(fields=["agent_id", "arrival"], name="audit_event_agent"),
            # "events of session S in order" (replay, proof certificates)
            models.Index(fields=["session_id", "arrival"], name="audit_event_session"),
            # "events of type T, newest first"
            models.Index(fields=["event_type", "arrival"], name="audit_event_type"),
            # "events between two times, newest first" (a filtered page with a date range is
            # ordered by time: see selectors.log_page)
            models.Index(fields=["timestamp", "arrival"], name="audit_event_time"),
            # "events by actor X, newest first" (what did user:alice do)
            models.Index(fields=["actor", "arrival"], name="audit_event_actor"),
            # "events with verdict V, newest first" (only action events carry a verdict)
            models.Index(
                fields=["verdict", "arrival"],
                name="audit_event_verdict",
                condition=models.Q(verdict__isnull=False),
            ),
            # "events with result R, newest first" (denied, failed, expired …)
            models.Index(fields=["result", "arrival"], name="audit_event_result"),
            # "agent A between two times" (incident timeline, log page agent + date range)
            models.Index(
                fields=["agent_id", "timestamp", "arrival"], name="audit_event_agent_time"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} {self.id}"

    @cached_property
    def payload(self) -> dict:
        return json.loads(self.payload_json)

    def content_fields(self) -> dict:
        """The §6.1 content fields (everything but the log fields), as strings."""
        return {
            "id": str(self.id),
            "timestamp": format_timestamp(self.timestamp),
            "event_type": str(self.event_type),
            "agent_id": str(self.agent_id) if self.agent_id else None,
            "session_id": str(self.session_id) if self.session_id else None,
            "workflow_id": self.workflow_id,
            "run_id": str(self.run_id) if self.run_id else None,
            "actor": str(self.actor),
            "verdict": str(self.verdict) if self.verdict is not None else None,
            "result": str(self.result),
            "reason": str(self.reason),
        }


class EventLogEntry(models.Model):
    seq = models.BigIntegerField(primary_key=True)
    event = models.OneToOneField(
        GovernanceEvent, on_delete=models.PROTECT, related_name="log", db_column="event_arrival"
    )
    prev_hash = models.CharField(max_length=64)
    leaf_hash = models.CharField(max_length=64, unique=True)
    signature = models.CharField(max_length=88)
    key_id = models.CharField(max_length=16)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(seq__gte=1), name="audit_logentry_seq_positive"
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.seq}"


class PendingEvent(models.Model):
    """Events whose log fields are not written yet (the integrator's queue)."""

    event = models.OneToOneField(GovernanceEvent, on_delete=models.CASCADE, related_name="+")

    def __str__(self) -> str:
        return f"pending {self.event_id}"


class SessionEventCounter(models.Model):
    """Numbers the events of each session (payload ``session_event``), so a certificate
    with an event left out, or cut short before ``session.ended``, does not verify."""

    session_id = models.UUIDField(primary_key=True)
    count = models.PositiveIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.session_id}: {self.count}"


class Checkpoint(models.Model):
    """A signed tree head (SPEC §6.2): the RFC 9162 root over leaves 1..tree_size."""

    tree_size = models.BigIntegerField(primary_key=True)
    root_hash = models.CharField(max_length=64)
    timestamp = models.DateTimeField()
    key_id = models.CharField(max_length=16)
    signature = models.CharField(max_length=88)
    # Compact range of the tree at this size (hex, biggest subtree first): the next
    # checkpoint extends it instead of re-reading the log. Not signed; verify_log
    # recomputes roots from the leaves themselves.
    frontier = models.JSONField(default=list)

    def __str__(self) -> str:
        return f"checkpoint {self.tree_size}"

    def as_json(self) -> dict:
        return {
            "tree_size": self.tree_size,
            "root_hash": self.root_hash,
            "timestamp": format_timestamp(self.timestamp),
            "key_id": self.key_id,
            "signature": self.signature,
        }


class MerkleTile(models.Model):
    """A cached hash of a perfect subtree of the log's Merkle tree (``audit/tiles.py``).

    Tile ``index`` at ``level`` covers leaves ``index * 2**level`` … ``(index + 1) *
    2**level - 1`` (seq = leaf + 1). Derived data that never changes once written: it lets a
    proof certificate be built with O(log n) reads. A wrong tile makes a proof fail to
    verify, never a forged one pass.
    """

    level = models.PositiveSmallIntegerField()
    index = models.BigIntegerField()
    hash = models.CharField(max_length=64)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["level", "index"], name="audit_merkletile_unique"),
        ]

    def __str__(self) -> str:
        return f"tile {self.level}/{self.index}"


class Export(models.Model):
    """One export of the audit log (SPEC §7): the filter, its progress and its manifest.

    Small exports stream straight to the browser; those over ``WARDEN_EXPORT_ASYNC_ROWS``
    rows are written under ``VAR_DIR/exports/`` by the ``audit.export_events`` task. Either
    way a finished export records ``export.created`` with the manifest as payload.
    """

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    class Format(models.TextChoices):
        CSV = "csv", "CSV"
        XLSX = "xlsx", "Excel (.xlsx)"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    format = models.CharField(max_length=8, choices=Format.choices)
    # The filter as query parameters (audit.filters.LogFilter.as_params()).
    filters = models.JSONField(default=dict)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    streamed = models.BooleanField(default=False)
    # Snapshot: the export holds the matching events with seq <= up_to_seq.
    up_to_seq = models.BigIntegerField(default=0)
    rows_total = models.BigIntegerField(default=0)
    rows_done = models.BigIntegerField(default=0)
    file_name = models.CharField(max_length=200, blank=True, default="")
    manifest = models.JSONField(null=True, blank=True)
    error = models.TextField(blank=True, default="")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    # Touched by every progress update: a running export whose heartbeat stopped may be
    # claimed again by a redelivered task (the worker died).
    updated_at = models.DateTimeField(auto_now=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(status__in=["queued", "running", "done", "failed"]),
                name="audit_export_status_valid",
            ),
            models.CheckConstraint(
                condition=models.Q(format__in=["csv", "xlsx"]), name="audit_export_format_valid"
            ),
        ]
        indexes = [
            # "recent exports" on the audit log page
            models.Index(fields=["-created_at"], name="audit_export_recent"),
        ]

    def __str__(self) -> str:
        return f"export {self.id} ({self.format}, {self.status})"

    @property
    def progress_percent(self) -> int:
        if self.status == self.Status.DONE:
            return 100
        if not self.rows_total:
            return 0
        return min(100, int(100 * self.rows_done / self.rows_total))
