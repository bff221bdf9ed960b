"""The canonical form of one governance event (SPEC §6.1, §6.2), standard library only.

``canonical = RFC 8785 JSON of every §6.1 field except leaf_hash, signature, key_id``.
The top-level keys are fixed ASCII names, so their RFC 8785 order is known in advance; the
payload is stored as its own canonical text and spliced in unchanged. The result is
byte-identical to ``canonical.dumps`` of the parsed event (a property test proves it), and
an order of magnitude cheaper, which is what lets ``verify_log`` re-hash a million events
quickly.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from . import canonical as jcs
from .merkle import leaf_hash

# Every field of SPEC §6.1 except leaf_hash, signature, key_id; sorted as RFC 8785 sorts.
CANONICAL_FIELDS = (
    "actor",
    "agent_id",
    "event_type",
    "id",
    "payload",
    "prev_hash",
    "reason",
    "result",
    "run_id",
    "seq",
    "session_id",
    "timestamp",
    "verdict",
    "workflow_id",
)
ZERO_HASH = "0" * 64

_dump = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def canonical_bytes(fields: dict[str, Any], payload_text: str | None = None) -> bytes:
    """Canonical bytes of an event given as a dict of the §6.1 fields.

    If ``payload_text`` is given it must already be canonical JSON and is used verbatim
    for the payload; otherwise ``fields["payload"]`` is canonicalised.
    """
    parts = []
    for name in CANONICAL_FIELDS:
        if name == "payload":
            text = payload_text if payload_text is not None else jcs.dumps(fields[name]).decode()
        elif name == "seq":
            value = fields[name]
            if type(value) is not int:
                raise jcs.CanonicalizationError("seq must be an integer")
            text = str(value)
        else:
            value = fields[name]
            if value is not None and type(value) is not str:
                raise jcs.CanonicalizationError(f"{name} must be a string or null")
            text = _dump(value)
        parts.append(f'"{name}":{text}')
    return ("{" + ",".join(parts) + "}").encode("utf-8")


def event_leaf_hash(fields: dict[str, Any], payload_text: str | None = None) -> bytes:
    return leaf_hash(canonical_bytes(fields, payload_text))


# The same bytes as ``canonical_bytes`` for one event given as plain values, without a dict:
# the integrator and ``verify_log`` build it once per event, so it is one C string escape
# per field and one format (``test_canonical`` checks it against ``canonical_bytes``).
_TEMPLATE = (
    '{"actor":%s,"agent_id":%s,"event_type":%s,"id":%s,"payload":%s,"prev_hash":%s,'
    '"reason":%s,"result":%s,"run_id":%s,"seq":%s,"session_id":%s,"timestamp":%s,'
    '"verdict":%s,"workflow_id":%s}'
)
_string = json.encoder.encode_basestring  # what the encoder above uses for a str


def _text(name: str, value: Any) -> str:
    if value is None:
        return "null"
    if type(value) is not str:
        raise jcs.CanonicalizationError(f"{name} must be a string or null")
    return _string(value)


def event_canonical(
    *,
    seq: int,
    prev_hash: str,
    id: str,
    timestamp: str,
    event_type: str,
    agent_id: str | None,
    session_id: str | None,
    workflow_id: str | None,
    run_id: str | None,
    actor: str,
    verdict: str | None,
    result: str,
    reason: str,
    payload_text: str,
) -> bytes:
    """Canonical bytes of an event from its fields as strings and its canonical payload."""
    if type(seq) is not int:
        raise jcs.CanonicalizationError("seq must be an integer")
    if type(payload_text) is not str:
        raise jcs.CanonicalizationError("payload must be canonical JSON text")
    return (
        _TEMPLATE
        % (
            _text("actor", actor),
            _text("agent_id", agent_id),
            _text("event_type", event_type),
            _text("id", id),
            payload_text,
            _text("prev_hash", prev_hash),
            _text("reason", reason),
            _text("result", result),
            _text("run_id", run_id),
            seq,
            _text("session_id", session_id),
            _text("timestamp", timestamp),
            _text("verdict", verdict),
            _text("workflow_id", workflow_id),
        )
    ).encode("utf-8")


def content_leaf(seq: int, prev_hash: str, content) -> bytes:
    """The leaf hash of an event from ``seq``, ``prev_hash`` and its content as a sequence of
    strings in ``logcheck.ROW_FIELDS`` order (id … reason, payload text): what the
    integrator writes and ``verify_log`` recomputes."""
    (
        event_id,
        timestamp,
        event_type,
        agent_id,
        session_id,
        workflow_id,
        run_id,
        actor,
        verdict,
        result,
        reason,
        payload_text,
    ) = content
    canonical = event_canonical(
        seq=seq,
        prev_hash=prev_hash,
        id=event_id,
        timestamp=timestamp,
        event_type=event_type,
        agent_id=agent_id,
        session_id=session_id,
        workflow_id=workflow_id,
        run_id=run_id,
        actor=actor,
        verdict=verdict,
        result=result,
        reason=reason,
        payload_text=payload_text,
    )
    return hashlib.sha256(b"\x00" + canonical).digest()
