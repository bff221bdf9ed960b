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
        indexes = [
            # Audit log filters (SPEC §7): agent timeline, session replay, type and actor.
            models.Index(fields=["agent_id", "arrival"], name="audit_event_agent"),
            models.Index(fields=["session_id", "arrival"], name="audit_event_session"),
            models.Index(fields=["event_type", "arrival"], name="audit_event_type"),
            models.Index(fields=["timestamp"], name="audit_event_time"),
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
