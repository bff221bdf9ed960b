"""Offline verifier of Warden session proof certificates (SPEC §6.3).

    python -m audit.verify CERT.json [--keys KEYS.json] [--require-closed]

Needs the Python standard library and ``cryptography``, nothing else: no database, no
network, no other module of Warden (this file is self-contained on purpose, so an auditor can
read it in one sitting or copy it anywhere and run ``python verify.py CERT.json``).

It checks, for every event of the certificate: the leaf hash (SHA-256 of 0x00 and the RFC 8785
canonical JSON of ``event``), that the key named by ``key_id`` was valid at the event's
timestamp, the Ed25519 signature over the leaf hash, and the RFC 9162 inclusion proof against
the checkpoint root; then the checkpoint's own signature; then that the events are the whole
session: strictly ascending ``seq``, ``payload.session_event`` numbered 1, 2, 3 … without a
gap, the first one ``session.started`` and nothing after a closing event.

Trust: without ``--keys`` the public keys are taken from the certificate itself, which only
proves the certificate is self-consistent (whoever made it could have made the keys too). Pass
the operator's published key list (``/.well-known/warden-keys.json``, obtained separately) with
``--keys``: then only those keys, with their validity windows, are trusted, and a certificate
key that differs from them is an error.

Exit status: 0 valid; 1 invalid (every failure names the event and the check); 2 unusable
input (unreadable file, not JSON, duplicate keys, a bad --keys file).
"""

from __future__ import annotations

import argparse
import base64
import binascii
import hashlib
import json
import os
import sys
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime
from multiprocessing import get_all_start_methods, get_context

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

FORMAT = "warden-proof-v1"
CLOSING = ("session.ended", "session.halted", "session.revoked")
MAX_SAFE_INTEGER = 2**53 - 1


class Unusable(Exception):
    """The input cannot be read as a certificate or key list (exit 2)."""


class Invalid(Exception):
    """One check failed: ``check`` names it, the message says why."""

    def __init__(self, check: str, message: str) -> None:
        super().__init__(message)
        self.check = check


# --- RFC 8785 canonical JSON (the value types a JSON parser produces) -------------------
# Fast path: without floats, without member names outside the Basic Multilingual Plane and
# with integers in I-JSON's range, the standard library's compact sorted output already is
# RFC 8785 (same string escapes; code-point order equals UTF-16 order in the BMP).
_compact = json.JSONEncoder(
    ensure_ascii=False, sort_keys=True, separators=(",", ":"), allow_nan=False
).encode
_string = json.encoder.encode_basestring  # the C version, escapes as RFC 8785 §3.2.2.2 does


def canonical(value) -> bytes:
    try:
        if _simple(value):
            return _compact(value).encode("utf-8")
        out: list[str] = []
        _encode(value, out)
        return "".join(out).encode("utf-8")
    except UnicodeEncodeError as exc:
        raise Invalid("structure", "a string is not valid Unicode (lone surrogate)") from exc


def _simple(value) -> bool:
    stack = [value]
    while stack:
        item = stack.pop()
        kind = type(item)
        if kind is str or kind is bool or item is None:
            continue
        if kind is int:
            if abs(item) > MAX_SAFE_INTEGER:
                return False
        elif kind is dict:
            for key in item:
                if key and max(key) > "\uffff":
                    return False
            stack.extend(item.values())
        elif kind is list:
            stack.extend(item)
        else:
            return False  # floats: ECMAScript number formatting below
    return True


def _encode(value, out: list[str]) -> None:
    if value is None or value is True or value is False:
        out.append({None: "null", True: "true", False: "false"}[value])
    elif isinstance(value, str):
        out.append(_string(value))
    elif isinstance(value, int):
        if abs(value) > MAX_SAFE_INTEGER:
            raise Invalid("structure", f"integer {value} is outside the I-JSON range")
        out.append(str(value))
    elif isinstance(value, float):
        out.append(_es_number(value))
    elif isinstance(value, list):
        out.append("[")
        for index, item in enumerate(value):
            out.append("," if index else "")
            _encode(item, out)
        out.append("]")
    elif isinstance(value, dict):
        out.append("{")
        # RFC 8785 §3.2.3: members sorted by the UTF-16 code units of their names.
        for index, key in enumerate(sorted(value, key=_utf16)):
            out.append("," if index else "")
            out.append(_string(key) + ":")
            _encode(value[key], out)
        out.append("}")
    else:
        raise Invalid("structure", f"{type(value).__name__} is not a JSON value")


def _utf16(key: str) -> bytes:
    return key.encode("utf-16-be", "surrogatepass")


def _es_number(x: float) -> str:
    """A double as ECMAScript's Number::toString writes it (RFC 8785 §3.2.2.3)."""
    if x != x or x in (float("inf"), float("-inf")):
        raise Invalid("structure", "NaN and Infinity are not JSON numbers")
    if x == 0:
        return "0"
    sign, text = ("-", repr(-x)) if x < 0 else ("", repr(x))
    mantissa, _, exponent = text.partition("e")
    whole, _, fraction = mantissa.partition(".")
    digits = (whole + fraction).lstrip("0")
    s = digits.rstrip("0")  # shortest digits; x = s * 10**(n - k)
    k = len(s)
    n = k + int(exponent or 0) - len(fraction) + (len(digits) - k)
    if k <= n <= 21:
        body = s + "0" * (n - k)
    elif 0 < n <= 21:
        body = s[:n] + "." + s[n:]
    elif -6 < n <= 0:
        body = "0." + "0" * -n + s
    else:
        body = (
            s[0] + ("." + s[1:] if k > 1 else "") + "e" + ("+" if n > 0 else "-") + str(abs(n - 1))
        )
    return sign + body


# --- RFC 9162 ---------------------------------------------------------------------------
def leaf_hash(event: dict) -> str:
    return hashlib.sha256(b"\x00" + canonical(event)).hexdigest()


def _node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def inclusion_root(index: int, size: int, leaf: bytes, proof: list[bytes]) -> bytes | None:
    """RFC 9162 §2.1.3.2: the root ``proof`` leads to from leaf ``index``, or None."""
    if not 0 <= index < size:
        return None
    fn, sn, node = index, size - 1, leaf
    for sibling in proof:
        if sn == 0:
            return None  # the path is longer than the tree is deep
        if fn & 1 or fn == sn:
            node = _node(sibling, node)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            node = _node(node, sibling)
        fn, sn = fn >> 1, sn >> 1
    return node if sn == 0 else None  # sn != 0: the path was cut short


# --- field readers ----------------------------------------------------------------------
def _get(obj: dict, name: str, kind, check: str = "structure"):
    value = obj.get(name) if isinstance(obj, dict) else None
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise Invalid(check, f"{name} is missing or not a {getattr(kind, '__name__', kind)}")
    return value


def _hex(value, name: str, check: str = "structure") -> bytes:
    try:
        raw = bytes.fromhex(value)
    except (TypeError, ValueError):
        raw = b""
    # The round trip refuses upper case and spaces: one spelling per value.
    if len(raw) != 32 or raw.hex() != value:
        raise Invalid(check, f"{name} is not 64 lowercase hex digits")
    return raw


def _b64(value, name: str, size: int, check: str) -> bytes:
    try:
        raw = base64.b64decode(value, validate=True) if isinstance(value, str) else b""
    except (binascii.Error, ValueError):
        raw = b""
    # Only the one canonical spelling: otherwise unused bits could change unnoticed.
    if len(raw) != size or base64.b64encode(raw).decode() != value:
        raise Invalid(check, f"{name} is not the standard base64 of {size} bytes")
    return raw


def _time(value, name: str, check: str = "structure") -> datetime:
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except (AttributeError, ValueError):
        raise Invalid(check, f"{name} {value!r} is not an RFC 3339 timestamp") from None
    if moment.tzinfo is None:
        raise Invalid(check, f"{name} {value!r} has no time zone")
    return moment.astimezone(UTC)


class Key:
    def __init__(self, entry: dict, check: str) -> None:
        self.entry = entry
        self.key_id = _get(entry, "key_id", str, check)
        if entry.get("algorithm") != "Ed25519":
            raise Invalid(check, f"key {self.key_id}: algorithm is not Ed25519")
        raw = _b64(entry.get("public_key"), f"key {self.key_id} public_key", 32, check)
        if hashlib.sha256(raw).hexdigest()[:16] != self.key_id:
            raise Invalid(check, f"key_id {self.key_id} is not SHA-256 of its public key")
        self.raw = raw
        self.public = Ed25519PublicKey.from_public_bytes(raw)
        self.valid_from = _time(entry.get("valid_from"), f"key {self.key_id} valid_from", check)
        until = entry.get("valid_until")
        self.valid_until = None if until is None else _time(until, "valid_until", check)

    def check_window(self, moment: datetime, what: str) -> None:
        if moment < self.valid_from or (self.valid_until and moment >= self.valid_until):
            until = self.entry.get("valid_until") or "now"
            raise Invalid(
                "key_window",
                f"{what} is signed with key {self.key_id}, valid from "
                f"{self.entry['valid_from']} until {until}, not at {moment.isoformat()}",
            )

    def verify(self, signature: bytes, message: bytes, what: str) -> None:
        try:
            self.public.verify(signature, message)
        except InvalidSignature:
            raise Invalid("signature", f"{what}: Ed25519 signature does not verify") from None


def load_key_list(document) -> dict[str, Key]:
    """A trusted key list ``{"keys": [...]}``; a bad one is unusable input (exit 2)."""
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise Unusable('the key list is not {"keys": [...]}')
    keys = {}
    for entry in document["keys"]:
        try:
            key = Key(entry, "keys")
        except Invalid as exc:
            raise Unusable(f"the key list has a bad key: {exc}") from None
        keys[key.key_id] = key
    return keys


# --- the checks -------------------------------------------------------------------------
class Report:
    def __init__(self) -> None:
        self.failures: list[str] = []
        self.notes: list[str] = []

    def fail(self, where: str, check: str, message: str) -> None:
        self.failures.append(f"{where}: {check}: {message}")


def verify(cert: dict, trusted: dict[str, Key] | None = None, require_closed=False) -> Report:
    report = Report()
    if cert.get("format") != FORMAT:
        report.fail("certificate", "format", f"format is not {FORMAT!r}")
        return report
    keys = _certificate_keys(cert, trusted, report)
    root, tree_size = _checkpoint(cert, keys, report)
    events = cert.get("events")
    if not isinstance(events, list) or not events:
        report.fail("certificate", "structure", "events is missing or empty")
        return report
    failed: list[tuple[int, str, str, str]] = []
    pending = []  # events whose signature is still to check (in bulk, maybe in parallel)
    for position, item in enumerate(events, 1):
        event = item.get("event") if isinstance(item, dict) else None
        seq = event.get("seq") if isinstance(event, dict) else None
        where = f"event {position} (seq {seq})"
        try:
            event, signed, later = _event(item, keys, root, tree_size)
        except Invalid as exc:
            failed.append((position, where, exc.check, str(exc)))
        else:
            pending.append((position, where, event, signed, later))
    bad = _bad_signatures([signed for _, _, _, signed, _ in pending])
    checked = []
    for index, (position, where, event, _, later) in enumerate(pending):
        if index in bad:  # checks keep their order: the signature before the inclusion proof
            failed.append(
                (position, where, "signature", "the event: Ed25519 signature does not verify")
            )
        elif later is not None:
            failed.append((position, where, later.check, str(later)))
        else:
            checked.append((position, where, event))
    for _, where, check, message in sorted(failed):
        report.fail(where, check, message)
    _session(cert, checked, len(events), report, require_closed)
    return report


PARALLEL_FROM = 2000  # signatures; below this a pool costs more than it saves


def _check_signatures(chunk: list[tuple[bytes, bytes, bytes]]) -> list[int]:
    """Indexes (within ``chunk``) of the signatures that do not verify."""
    publics: dict[bytes, Ed25519PublicKey] = {}
    bad = []
    for index, (raw, signature, message) in enumerate(chunk):
        public = publics.get(raw) or publics.setdefault(
            raw, Ed25519PublicKey.from_public_bytes(raw)
        )
        try:
            public.verify(signature, message)
        except InvalidSignature:
            bad.append(index)
    return bad


def _bad_signatures(items: list[tuple[bytes, bytes, bytes]]) -> set[int]:
    """Ed25519 verification is most of the work: spread a big certificate over the cores."""
    workers = min(os.cpu_count() or 1, 8)
    if len(items) < PARALLEL_FROM or workers < 2 or "fork" not in get_all_start_methods():
        return set(_check_signatures(items))
    size = -(-len(items) // workers)
    chunks = [items[start : start + size] for start in range(0, len(items), size)]
    with ProcessPoolExecutor(workers, mp_context=get_context("fork")) as pool:
        results = pool.map(_check_signatures, chunks)
        return {n * size + index for n, bad in enumerate(results) for index in bad}


def _certificate_keys(cert, trusted, report) -> dict[str, Key]:
    entries = cert.get("keys")
    if not isinstance(entries, list):
        report.fail("certificate", "keys", "keys is missing or not a list")
        entries = []
    own: dict[str, Key] = {}
    for index, entry in enumerate(entries, 1):
        try:
            key = Key(entry, "keys")
        except Invalid as exc:
            report.fail(f"key {index}", exc.check, str(exc))
            continue
        if trusted is not None and key.key_id not in trusted:
            report.fail(f"key {index}", "keys", f"key {key.key_id} is not in the trusted key list")
        elif trusted is not None and trusted[key.key_id].entry != entry:
            report.fail(f"key {index}", "keys", f"key {key.key_id} differs from the trusted list")
        elif key.key_id in own and own[key.key_id].entry != entry:
            report.fail(f"key {index}", "keys", f"key {key.key_id} is listed twice, differently")
        own[key.key_id] = key
    if trusted is not None:
        report.notes.append(f"keys: {len(trusted)} trusted from --keys")
        return trusted
    report.notes.append(
        "keys: taken from the certificate itself (no --keys): this shows the certificate is "
        "self-consistent; compare the key ids with the operator's published key list: "
        + ", ".join(sorted(own))
    )
    return own


def _checkpoint(cert, keys, report) -> tuple[bytes | None, int]:
    checkpoint = cert.get("checkpoint")
    try:
        tree_size = _get(checkpoint, "tree_size", int)
        root = _hex(checkpoint.get("root_hash"), "root_hash")
        stamp = _time(checkpoint.get("timestamp"), "timestamp")
        key_id = _get(checkpoint, "key_id", str)
        signature = _b64(checkpoint.get("signature"), "signature", 64, "signature")
        if tree_size < 1:
            raise Invalid("structure", "tree_size must be at least 1")
    except Invalid as exc:
        report.fail("checkpoint", exc.check, str(exc))
        return None, 0
    try:
        key = keys.get(key_id)
        if key is None:
            raise Invalid("signature", f"signed with unknown key {key_id!r}")
        key.check_window(stamp, "the checkpoint")
        body = {k: checkpoint[k] for k in ("tree_size", "root_hash", "timestamp", "key_id")}
        key.verify(signature, canonical(body), "the checkpoint")
    except Invalid as exc:
        report.fail("checkpoint", exc.check, str(exc))
    return root, tree_size


def _event(item, keys, root, tree_size) -> tuple[dict, tuple[bytes, bytes, bytes], Invalid | None]:
    """Every check of one event but the signature itself, which is returned to be checked
    in bulk; an inclusion failure is returned too, as it only counts if the signature holds."""
    event = _get(item, "event", dict)
    seq = _get(event, "seq", int)
    computed = leaf_hash(event)
    if item.get("leaf_hash") != computed:
        raise Invalid(
            "leaf_hash", "leaf_hash is not SHA-256(0x00 || RFC 8785 JSON of the event) as given"
        )
    key_id = item.get("key_id")
    key = keys.get(key_id) if isinstance(key_id, str) else None
    if key is None:
        raise Invalid("signature", f"signed with unknown key {key_id!r}")
    key.check_window(_time(event.get("timestamp"), "timestamp"), "the event")
    leaf = bytes.fromhex(computed)
    signed = (key.raw, _b64(item.get("signature"), "signature", 64, "signature"), leaf)
    try:
        proof = item.get("inclusion_proof")
        if not isinstance(proof, list):
            raise Invalid("inclusion", "inclusion_proof is missing or not a list")
        path = [_hex(node, "an inclusion_proof entry", "inclusion") for node in proof]
        if root is not None:
            if seq > tree_size:
                raise Invalid(
                    "inclusion", f"seq {seq} is beyond the checkpoint's {tree_size} events"
                )
            if inclusion_root(seq - 1, tree_size, leaf, path) != root:
                raise Invalid("inclusion", "inclusion_proof does not lead to the checkpoint root")
    except Invalid as exc:
        return event, signed, exc
    return event, signed, None


def _session(cert, checked, count, report, require_closed) -> None:
    session_id, agent_id = cert.get("session_id"), cert.get("agent_id")
    previous_seq = 0
    for position, where, event in checked:
        payload = event.get("payload") if isinstance(event.get("payload"), dict) else {}
        if event.get("session_id") != session_id or not isinstance(session_id, str):
            report.fail(
                where, "session", f"belongs to session {event.get('session_id')}, not {session_id}"
            )
        elif event.get("agent_id") != agent_id:
            report.fail(
                where, "session", f"belongs to agent {event.get('agent_id')}, not {agent_id}"
            )
        elif event["seq"] <= previous_seq:
            report.fail(
                where, "order", f"seq {event['seq']} does not come after seq {previous_seq}"
            )
        elif payload.get("session_event") != position:
            report.fail(
                where,
                "numbering",
                f"session_event is {payload.get('session_event')!r}, expected {position}: "
                "an event of the session is missing or out of place",
            )
        elif position == 1 and event.get("event_type") != "session.started":
            report.fail(where, "numbering", "the first event is not session.started")
        elif event.get("event_type") in CLOSING and position != count:
            report.fail(where, "closing", "events follow the session's closing event")
        previous_seq = max(previous_seq, event["seq"])
    if len(checked) != count or report.failures:
        return
    last = checked[-1][2]
    if last.get("event_type") in CLOSING:
        report.notes.append(f"session closed: {last['event_type']} at seq {last['seq']}")
    elif require_closed:
        report.fail("certificate", "closing", "no closing event: the session is cut short")
    else:
        report.notes.append(
            "session open: no closing event (the session had not ended when the certificate "
            "was made, or the certificate was cut short; --require-closed makes this an error)"
        )


# --- command line -----------------------------------------------------------------------
def _no_duplicates(pairs):
    result = {}
    for key, value in pairs:
        if key in result:
            raise Unusable(f"duplicate key {key!r} in a JSON object")
        result[key] = value
    return result


def read_json(path: str):
    try:
        with open(path, "rb") as handle:
            return json.loads(handle.read().decode("utf-8"), object_pairs_hook=_no_duplicates)
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise Unusable(f"{path}: {exc}") from None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m audit.verify", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("certificate", help="a warden-proof-v1 JSON file")
    parser.add_argument("--keys", help="trusted key list (/.well-known/warden-keys.json)")
    parser.add_argument(
        "--require-closed", action="store_true", help="fail unless the session ended"
    )
    args = parser.parse_args(argv)
    try:
        cert = read_json(args.certificate)
        if not isinstance(cert, dict):
            raise Unusable(f"{args.certificate}: not a JSON object")
        trusted = load_key_list(read_json(args.keys)) if args.keys else None
    except Unusable as exc:
        print(f"UNUSABLE: {exc}", file=sys.stderr)
        return 2
    report = verify(cert, trusted, args.require_closed)
    if report.failures:
        print(f"INVALID: {len(report.failures)} check(s) failed")
        for line in report.failures[:50]:
            print(f"  FAIL {line}")
        return 1
    checkpoint, events = cert["checkpoint"], cert["events"]
    print(
        f"VALID: session {cert['session_id']} of agent {cert['agent_id']}: {len(events)} events "
        f"(seq {events[0]['event']['seq']}..{events[-1]['event']['seq']}) are in checkpoint "
        f"tree_size {checkpoint['tree_size']} root {checkpoint['root_hash']} signed "
        f"{checkpoint['timestamp']} by key {checkpoint['key_id']}"
    )
    for note in report.notes:
        print(f"  {note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
