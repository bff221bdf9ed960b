"""The offline verifier, adversarially (SPEC §6.3; STYLE.md: a verifier that accepts a forged
proof is the worst bug this product can have).

Certificates are built once for the module through the real writer, integrator and proof
builder (inside a transaction that is rolled back), then tampered with in memory. Every
tampering must exit 1 naming the event and the check; the untouched certificate exits 0;
input that is not a certificate at all exits 2.
"""

from __future__ import annotations

import base64
import copy
import json
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.contrib.auth import get_user_model
from django.db import transaction
from django.test import override_settings
from hypothesis import given, settings
from hypothesis import strategies as st

from audit import canonical, merkle, proofs, verify
from audit.keys import keyring
from audit.services import record, sign_checkpoint
from console import services as console_services
from tests.audit.synthetic import Step, governed_session, run_step
from tests.audit.test_canonical import _encodable, json_values
from tests.helpers import integrate, mark_assessed

ROOT = Path(__file__).resolve().parents[2]
# The module fixture needs the test database set up, which pytest-django does for db tests.
pytestmark = pytest.mark.django_db


def _filler(count: int, label: str) -> None:
    with transaction.atomic():
        for i in range(count):
            record("test.filler", actor="system:test", payload={"i": i, "label": label})


@pytest.fixture(scope="module")
def certs(django_db_setup, django_db_blocker, tmp_path_factory):
    """``plain``: a 4-event session in a log of 14; ``later_checkpoint``: a valid checkpoint
    of a bigger tree; ``rotated``: a session that spans a key rotation, its key dir."""
    rotated_dir = tmp_path_factory.mktemp("rotated-keys")
    out: dict = {}
    with django_db_blocker.unblock(), transaction.atomic():
        owner = get_user_model().objects.create_user("cert-owner", password="x")
        agent = mark_assessed(console_services.register_agent(name="cert-agent", by=owner), 3)
        _filler(7, "before")
        session = governed_session(
            agent, [Step("invoice.read", "vendor:acme", args={"note": "café ✓"})]
        )
        _filler(3, "after")
        out["plain"] = proofs.certificate(session.id)
        out["keys"] = {"keys": [key.as_json() for key in keyring().public_keys()]}
        _filler(5, "later")
        out["later_checkpoint"] = sign_checkpoint().as_json()
        transaction.set_rollback(True)
    with override_settings(WARDEN_KEY_DIR=rotated_dir), django_db_blocker.unblock():
        with transaction.atomic():
            owner = get_user_model().objects.create_user("rot-owner", password="x")
            agent = mark_assessed(console_services.register_agent(name="rot-agent", by=owner), 2)
            session = console_services.open_session(agent, goal="spans a rotation")
            run_step(session, Step("invoice.read", "vendor:acme"))
            integrate()
            old = keyring().public_keys()[-1]
            keyring().rotate()
            run_step(session, Step("invoice.flag", "vendor:acme"))
            console_services.end_session(session)
            out["rotated"] = proofs.certificate(session.id)
            out["rotated_keys"] = {"keys": [key.as_json() for key in keyring().public_keys()]}
            seed = (rotated_dir / f"{old.key_id}.key").read_text().strip()
            out["retired_private"] = Ed25519PrivateKey.from_private_bytes(base64.b64decode(seed))
            out["retired_key_id"] = old.key_id
            transaction.set_rollback(True)
    return out


@pytest.fixture
def cert(certs):
    return copy.deepcopy(certs["plain"])


@pytest.fixture
def trusted(certs):
    return verify.load_key_list(copy.deepcopy(certs["keys"]))


def failures(cert, trusted=None, **options) -> list[str]:
    return verify.verify(cert, trusted, **options).failures


def resign(entry: dict, private: Ed25519PrivateKey, key_id: str) -> None:
    entry["signature"] = base64.b64encode(private.sign(bytes.fromhex(entry["leaf_hash"]))).decode()
    entry["key_id"] = key_id


# --- the untouched certificate ----------------------------------------------------------
def test_the_untouched_certificate_verifies(cert, trusted):
    assert cert["format"] == "warden-proof-v1"
    assert [e["event"]["payload"]["session_event"] for e in cert["events"]] == [1, 2, 3, 4]
    assert failures(cert) == []
    assert failures(cert, trusted) == []
    report = verify.verify(cert, trusted, require_closed=True)
    assert report.failures == []
    assert "session closed: session.ended at seq" in " ".join(report.notes)


def test_without_keys_the_verifier_says_it_trusted_the_certificate(cert):
    notes = " ".join(verify.verify(cert).notes)
    assert "taken from the certificate itself" in notes
    assert cert["keys"][0]["key_id"] in notes


# --- every single-byte change -----------------------------------------------------------
def mutations(value, path=()):
    """Every way of flipping one bit of one character, integer or boolean of the document,
    in values and in member names."""
    if isinstance(value, dict):
        for key, item in value.items():
            for position in range(len(key)):
                renamed = key[:position] + chr(ord(key[position]) ^ 1) + key[position + 1 :]
                yield (
                    (*path, key),
                    "name",
                    lambda doc, p=path, k=key, r=renamed: _rename(doc, p, k, r),
                )
            yield from mutations(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from mutations(item, (*path, index))
    elif isinstance(value, bool):
        yield path, "value", lambda doc, p=path: _set(doc, p, not _get(doc, p))
    elif isinstance(value, int):
        yield path, "value", lambda doc, p=path: _set(doc, p, _get(doc, p) ^ 1)
    elif isinstance(value, str):
        for position in range(len(value)):

            def flip(doc, p=path, i=position):
                text = _get(doc, p)
                _set(doc, p, text[:i] + chr(ord(text[i]) ^ 1) + text[i + 1 :])

            yield path, "value", flip


def _get(doc, path):
    for part in path:
        doc = doc[part]
    return doc


def _set(doc, path, value):
    _get(doc, path[:-1])[path[-1]] = value


def _rename(doc, parent, key, renamed):
    holder = _get(doc, parent)
    holder[renamed] = holder.pop(key)


def expected(path) -> tuple[str, set[str]]:
    """Where the first failure must be reported, and which checks may report it."""
    head = path[0]
    if len(path) == 1 and head in ("events", "checkpoint"):
        return ("certificate", {"structure"}) if head == "events" else ("checkpoint", {"structure"})
    if head == "events":
        where = f"event {path[1] + 1} ("
        field = path[2] if len(path) > 2 else None
        checks = {
            "event": {"leaf_hash", "structure"},
            "leaf_hash": {"leaf_hash"},
            "signature": {"signature"},
            "key_id": {"signature"},
            "inclusion_proof": {"inclusion"},
        }.get(field, {"leaf_hash", "structure", "signature", "inclusion"})
        return where, checks
    if head == "checkpoint":
        return "checkpoint", {"signature", "structure", "key_window"}
    if head == "keys":
        return f"key {path[1] + 1}" if len(path) > 1 else "certificate", {"keys"}
    if head in ("session_id", "agent_id"):
        return "event 1 (", {"session"}
    if head == "format":
        return "certificate", {"format"}
    return "certificate", {"structure", "keys"}


UNSIGNED_WITHOUT_KEYS = ("valid_from", "valid_until")


@pytest.mark.parametrize("with_keys", [True, False], ids=["--keys", "certificate keys"])
def test_flipping_any_byte_of_any_field_is_caught_and_named(cert, trusted, with_keys):
    checked = 0
    for path, kind, mutate in mutations(cert):
        if not with_keys and path[0] == "keys" and path[-1] in UNSIGNED_WITHOUT_KEYS:
            continue  # self-asserted and signed by nothing: what --keys is for (tested below)
        tampered = copy.deepcopy(cert)
        mutate(tampered)
        found = failures(tampered, trusted if with_keys else None)
        assert found, f"accepted a certificate with {kind} of {path} flipped"
        where, checks = expected(path)
        first = found[0]
        assert first.startswith(where), (path, kind, first)
        assert first[len(first.split(": ")[0]) + 2 :].split(":")[0] in checks, (path, kind, first)
        checked += 1
    assert checked > 3000


def test_widening_a_key_window_inside_the_certificate_is_refused_with_trusted_keys(certs):
    cert = copy.deepcopy(certs["rotated"])
    trusted = verify.load_key_list(copy.deepcopy(certs["rotated_keys"]))
    retired = next(k for k in cert["keys"] if k["key_id"] == certs["retired_key_id"])
    retired["valid_until"] = None
    assert failures(cert, trusted)[0] == (
        f"key {cert['keys'].index(retired) + 1}: keys: key {retired['key_id']} differs from "
        "the trusted list"
    )


# --- structural attacks -----------------------------------------------------------------
def test_swapping_two_events_is_caught(cert):
    cert["events"][1], cert["events"][2] = cert["events"][2], cert["events"][1]
    seqs = [e["event"]["seq"] for e in cert["events"]]
    assert failures(cert) == [
        f"event 2 (seq {seqs[1]}): numbering: session_event is 3, expected 2: an event of the "
        "session is missing or out of place",
        f"event 3 (seq {seqs[2]}): order: seq {seqs[2]} does not come after seq {seqs[1]}",
    ]


def test_dropping_an_event_is_caught(cert):
    del cert["events"][2]
    first = failures(cert)[0]
    assert first.startswith(f"event 3 (seq {cert['events'][2]['event']['seq']}): numbering: ")
    assert "session_event is 4, expected 3" in first


def test_dropping_the_first_event_is_caught(cert):
    del cert["events"][0]
    assert "numbering: session_event is 2, expected 1" in failures(cert)[0]


def test_cutting_the_closing_event_off_is_caught_when_a_closed_session_is_required(cert):
    del cert["events"][-1]
    assert failures(cert) == []  # could be an open session ...
    notes = " ".join(verify.verify(cert).notes)
    assert "no closing event" in notes
    assert failures(cert, require_closed=True) == [
        "certificate: closing: no closing event: the session is cut short"
    ]


def test_an_event_after_the_closing_event_is_caught(cert):
    cert["events"][1], cert["events"][3] = cert["events"][3], cert["events"][1]
    assert any("order" in line or "closing" in line for line in failures(cert))


def test_an_event_of_another_session_is_caught(cert):
    cert["session_id"] = str(uuid.uuid4())
    assert failures(cert)[0].startswith("event 1 (seq ")
    assert "session: belongs to session" in failures(cert)[0]


def test_a_proof_for_another_checkpoint_is_caught(cert, certs):
    cert["checkpoint"] = copy.deepcopy(certs["later_checkpoint"])
    found = failures(cert)
    assert found and all(": inclusion: inclusion_proof does not lead" in line for line in found)
    assert found[0].startswith("event 1 (")


def test_a_truncated_proof_path_is_caught(cert):
    cert["events"][1]["inclusion_proof"].pop()
    assert failures(cert) == [
        f"event 2 (seq {cert['events'][1]['event']['seq']}): inclusion: "
        "inclusion_proof does not lead to the checkpoint root"
    ]


def test_an_extended_proof_path_is_caught(cert):
    cert["events"][1]["inclusion_proof"].append("00" * 32)
    assert "inclusion" in failures(cert)[0]


def test_a_seq_beyond_the_checkpoint_is_caught(cert):
    cert["checkpoint"]["tree_size"] = 3
    assert failures(cert)[0].startswith("checkpoint: signature")


def test_only_one_spelling_of_each_hash_and_signature_is_accepted(cert):
    upper = copy.deepcopy(cert)
    upper["events"][0]["inclusion_proof"][0] = upper["events"][0]["inclusion_proof"][0].upper()
    assert ": inclusion: an inclusion_proof entry is not 64 lowercase hex" in failures(upper)[0]
    spaced = copy.deepcopy(cert)
    spaced["checkpoint"]["root_hash"] = " " + spaced["checkpoint"]["root_hash"][1:]
    assert failures(spaced)[0].startswith("checkpoint: structure: root_hash is not 64")
    # The last base64 character of a 64-byte signature carries 4 unused bits: setting them
    # decodes to the same bytes, and must still be refused.
    loose = copy.deepcopy(cert)
    signature = loose["events"][0]["signature"]
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    last = alphabet[alphabet.index(signature[-3]) | 0b1111]
    loose["events"][0]["signature"] = signature[:-3] + last + "=="
    assert base64.b64decode(loose["events"][0]["signature"]) == base64.b64decode(signature)
    assert "signature: signature is not the standard base64 of 64 bytes" in failures(loose)[0]


# --- keys -------------------------------------------------------------------------------
def test_a_wrong_public_key_is_caught(cert):
    other = Ed25519PrivateKey.generate().public_key().public_bytes_raw()
    cert["keys"][0]["public_key"] = base64.b64encode(other).decode()
    found = failures(cert)
    assert (
        found[0]
        == f"key 1: keys: key_id {cert['keys'][0]['key_id']} is not SHA-256 of its public key"
    )
    assert any("signed with unknown key" in line for line in found)


def test_a_wrong_trusted_key_list_is_caught(cert):
    stranger = Ed25519PrivateKey.generate().public_key().public_bytes_raw()
    keys = verify.load_key_list(
        {
            "keys": [
                {
                    "key_id": canonical_key_id(stranger),
                    "algorithm": "Ed25519",
                    "public_key": base64.b64encode(stranger).decode(),
                    "valid_from": "1970-01-01T00:00:00.000000Z",
                    "valid_until": None,
                }
            ]
        }
    )
    found = failures(cert, keys)
    assert found[0].endswith("is not in the trusted key list")
    assert any(": signature: signed with unknown key" in line for line in found)


def canonical_key_id(raw: bytes) -> str:
    import hashlib

    return hashlib.sha256(raw).hexdigest()[:16]


def forge(cert: dict, private: Ed25519PrivateKey) -> dict:
    """Re-sign a (tampered) certificate end to end with the attacker's own key: every hash,
    signature, proof and the checkpoint are self-consistent."""
    raw = private.public_key().public_bytes_raw()
    key_id = canonical_key_id(raw)
    forged = copy.deepcopy(cert)
    size = forged["checkpoint"]["tree_size"]
    leaves = [merkle.leaf_hash(f"filler {i}".encode()) for i in range(size)]
    for entry in forged["events"]:
        entry["leaf_hash"] = verify.leaf_hash(entry["event"])
        leaves[entry["event"]["seq"] - 1] = bytes.fromhex(entry["leaf_hash"])
        resign(entry, private, key_id)
    subtree = merkle.list_subtree(leaves)
    for entry in forged["events"]:
        path = merkle.inclusion_proof(entry["event"]["seq"] - 1, size, subtree)
        entry["inclusion_proof"] = [node.hex() for node in path]
    checkpoint = forged["checkpoint"]
    checkpoint.update(root_hash=merkle.root(leaves).hex(), key_id=key_id)
    body = {k: checkpoint[k] for k in ("tree_size", "root_hash", "timestamp", "key_id")}
    checkpoint["signature"] = base64.b64encode(private.sign(canonical.dumps(body))).decode()
    forged["keys"] = [
        {
            "key_id": key_id,
            "algorithm": "Ed25519",
            "public_key": base64.b64encode(raw).decode(),
            "valid_from": "1970-01-01T00:00:00.000000Z",
            "valid_until": None,
        }
    ]
    return forged


def test_a_certificate_forged_with_the_attackers_own_key_fails_against_trusted_keys(cert, trusted):
    cert["events"][1]["event"]["reason"] = "nothing happened here"
    forged = forge(cert, Ed25519PrivateKey.generate())
    # Self-consistent: without the operator's keys the verifier cannot know, and says whose
    # keys it used ...
    report = verify.verify(forged)
    assert report.failures == []
    assert forged["keys"][0]["key_id"] in " ".join(report.notes)
    # ... with them, the forgery is refused at every signature.
    found = failures(forged, trusted)
    assert (
        found[0] == f"key 1: keys: key {forged['keys'][0]['key_id']} is not in the trusted key list"
    )
    assert any(line.startswith("checkpoint: signature: signed with unknown key") for line in found)
    assert sum(": signature: signed with unknown key" in line for line in found) == 5


def test_a_key_with_a_trusted_id_but_another_public_key_is_refused(cert, trusted):
    attacker = Ed25519PrivateKey.generate()
    forged = forge(cert, attacker)
    real_id = cert["keys"][0]["key_id"]
    # Claim the operator's key id for the attacker's public key.
    for entry in forged["events"]:
        entry["key_id"] = real_id
    forged["keys"][0]["key_id"] = real_id
    found = failures(forged, trusted)
    assert found[0] == f"key 1: keys: key_id {real_id} is not SHA-256 of its public key"
    assert any(
        ": signature: the event: Ed25519 signature does not verify" in line for line in found
    )


def test_every_event_of_a_session_spanning_a_rotation_verifies_with_its_own_key(certs):
    cert = certs["rotated"]
    assert len({entry["key_id"] for entry in cert["events"]}) == 2
    assert failures(cert) == []
    assert failures(cert, verify.load_key_list(certs["rotated_keys"])) == []


def test_a_signature_from_a_retired_key_outside_its_window_is_caught(certs):
    cert = copy.deepcopy(certs["rotated"])
    trusted = verify.load_key_list(copy.deepcopy(certs["rotated_keys"]))
    last = cert["events"][-1]  # recorded after the rotation
    resign(last, certs["retired_private"], certs["retired_key_id"])
    for keys in (None, trusted):
        found = failures(cert, keys)
        assert len(found) == 1
        assert found[0].startswith(
            f"event {len(cert['events'])} (seq {last['event']['seq']}): key_window: "
        )
        assert f"signed with key {certs['retired_key_id']}, valid from" in found[0]
        assert f"not at {last['event']['timestamp'][:19]}" in found[0]


def test_signatures_checked_in_parallel_name_the_same_events(cert, monkeypatch):
    monkeypatch.setattr(verify, "PARALLEL_FROM", 1)  # big certificates use a process pool
    monkeypatch.setattr(verify.os, "cpu_count", lambda: 3)
    for index in (0, 3):
        entry = cert["events"][index]
        resign(entry, Ed25519PrivateKey.generate(), entry["key_id"])
    entry = cert["events"][2]
    entry["inclusion_proof"] = entry["inclusion_proof"][:-1]
    assert [line.split(":")[0:2] for line in failures(cert)] == [
        [f"event 1 (seq {cert['events'][0]['event']['seq']})", " signature"],
        [f"event 3 (seq {cert['events'][2]['event']['seq']})", " inclusion"],
        [f"event 4 (seq {cert['events'][3]['event']['seq']})", " signature"],
    ]


# --- the command line -------------------------------------------------------------------
def run(*args, cwd=ROOT):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO", "DATABASE", "REDIS"))}
    return subprocess.run(
        [sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=60
    )


@pytest.fixture
def files(tmp_path, certs):
    cert_path = tmp_path / "cert.json"
    cert_path.write_text(json.dumps(certs["plain"]))
    keys_path = tmp_path / "warden-keys.json"
    keys_path.write_text(json.dumps(certs["keys"]))
    return tmp_path, cert_path, keys_path


def test_exit_codes(files, certs):
    tmp_path, cert_path, keys_path = files
    ok = run("-m", "audit.verify", str(cert_path), "--keys", str(keys_path), "--require-closed")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert ok.stdout.startswith(f"VALID: session {certs['plain']['session_id']}")

    tampered = copy.deepcopy(certs["plain"])
    tampered["events"][2]["event"]["payload"]["action_id"] = str(uuid.uuid4())
    bad_path = tmp_path / "bad.json"
    bad_path.write_text(json.dumps(tampered))
    bad = run("-m", "audit.verify", str(bad_path))
    assert bad.returncode == 1
    seq = tampered["events"][2]["event"]["seq"]
    assert f"FAIL event 3 (seq {seq}): leaf_hash: " in bad.stdout

    for content in ["not json", "[1, 2]", '{"format": 1, "format": 2}', "\xff"]:
        (tmp_path / "junk.json").write_text(content, encoding="latin-1")
        junk = run("-m", "audit.verify", str(tmp_path / "junk.json"))
        assert junk.returncode == 2, content
        assert junk.stderr.startswith("UNUSABLE: ")
    assert run("-m", "audit.verify", str(tmp_path / "missing.json")).returncode == 2
    (tmp_path / "keys-bad.json").write_text('{"keys": [{"key_id": "x"}]}')
    assert (
        run(
            "-m", "audit.verify", str(cert_path), "--keys", str(tmp_path / "keys-bad.json")
        ).returncode
        == 2
    )
    assert run("-m", "audit.verify").returncode == 2  # usage


def test_the_verifier_imports_only_the_standard_library_and_cryptography(files):
    _, cert_path, keys_path = files
    result = run("-X", "importtime", "-m", "audit.verify", str(cert_path), "--keys", str(keys_path))
    assert result.returncode == 0, result.stdout + result.stderr
    # What the interpreter imports at start-up anyway (site, .pth hooks) is not the verifier's.
    modules = _imported(result.stderr) - _imported(run("-X", "importtime", "-c", "pass").stderr)
    tops = {name.split(".")[0] for name in modules}
    # "org": the standard library's pickle probes for Jython's org.python.core (and fails).
    allowed = set(sys.stdlib_module_names) | {"cryptography", "_cffi_backend", "audit", "org"}
    assert "cryptography" in tops
    assert tops <= allowed, tops - allowed
    # ``-m`` runs audit/verify.py as __main__: of Warden, only the empty package is imported.
    assert {name for name in modules if name.startswith("audit")} == {"audit"}


def _imported(stderr: str) -> set[str]:
    return {
        line.split("|")[-1].strip()
        for line in stderr.splitlines()
        if line.startswith("import time:") and not line.rstrip().endswith("package")
    }


def test_the_verifier_runs_as_a_lone_copied_file(files, tmp_path_factory):
    _, cert_path, keys_path = files
    elsewhere = tmp_path_factory.mktemp("auditor")
    shutil.copy(ROOT / "audit" / "verify.py", elsewhere / "verify.py")
    result = run(
        str(elsewhere / "verify.py"), str(cert_path), "--keys", str(keys_path), cwd=elsewhere
    )
    assert result.returncode == 0, result.stdout + result.stderr


# --- the canonicaliser is RFC 8785 ------------------------------------------------------
@settings(max_examples=400, deadline=None)
@given(json_values)
def test_the_verifiers_canonical_json_matches_the_writers(value):
    if not _encodable(value):
        with pytest.raises(verify.Invalid):
            verify.canonical(value)
        return
    assert verify.canonical(value) == canonical.dumps(value)


@settings(max_examples=2000, deadline=None)
@given(st.floats(allow_nan=False, allow_infinity=False))
def test_the_verifier_formats_numbers_like_ecmascript(number):
    assert verify._es_number(number) == canonical.format_number(number)
