"""Policies delegated to an external OPA server (``OPA_URL``), against a tiny fake OPA on
loopback that speaks the two endpoints Warden uses (policy upload, data query)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from console.authorize import opa, rego
from console.authorize import services as authz
from tests.console.authorize.conftest import propose
from tests.helpers import events_of

MODULE = 'package warden.opa_test\n\nimport rego.v1\n\ndefault verdict := "allow"\n\nverdict := "block" if input.action.name == "delete"\n\nreason := "no deletes (OPA)" if verdict == "block"\n'


class FakeOpa:
    """Stores uploaded modules and answers data queries by evaluating them (with regopy)."""

    def __init__(self) -> None:
        self.modules: dict[str, str] = {}
        self.requests: list[tuple[str, str]] = []
        self.down = False
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def _body(self) -> bytes:
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

            def _answer(self, status: int, document) -> None:
                payload = json.dumps(document).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def do_PUT(self):
                fake.requests.append(("PUT", self.path))
                source = self._body().decode()
                if rego.check_module(source):
                    return self._answer(400, {"code": "invalid_parameter"})
                fake.modules[self.path.rsplit("/", 1)[1]] = source
                self._answer(200, {})

            def do_POST(self):
                fake.requests.append(("POST", self.path))
                if fake.down:
                    return self._answer(500, {"code": "internal_error"})
                document = json.loads(self._body())["input"]
                package = self.path.removeprefix("/v1/data/").replace("/", ".")
                for source in fake.modules.values():
                    if rego.parse_package(source) == package:
                        compiled = rego.compile_module(source)
                        interpreter_result = rego.evaluate(compiled, document)
                        value = {
                            "verdict": interpreter_result.verdict.lower(),
                            "reason": interpreter_result.reason,
                        }
                        return self._answer(200, {"result": value})
                self._answer(200, {})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def fake_opa(settings):
    with FakeOpa() as server:
        settings.OPA_URL = server.url
        opa.forget()
        yield server
    opa.forget()


def test_policies_are_uploaded_once_and_evaluated_by_opa(fake_opa, governed, admin_user):
    policy = authz.create_policy(by=admin_user, name="opa-no-delete", module=MODULE)
    agent, session = governed()
    assert propose(agent, session, "read")["verdict"] == "ALLOW"
    blocked = propose(agent, session, "delete")
    assert (blocked["verdict"], blocked["source"], blocked["reason"]) == (
        "BLOCK",
        "policy:opa-no-delete",
        "no deletes (OPA)",
    )
    assert fake_opa.requests.count(("PUT", f"/v1/policies/warden-{policy.id}")) == 1
    assert fake_opa.requests.count(("POST", "/v1/data/warden/opa_test")) == 2


def test_an_opa_failure_follows_the_fail_mode(fake_opa, governed, admin_user, make_agent):
    from console import services

    authz.create_policy(by=admin_user, name="opa-no-delete", module=MODULE)
    fake_opa.down = True
    agent, session = governed()
    closed = propose(agent, session, "read")
    assert closed["verdict"] == "BLOCK" and "OPA at" in closed["reason"]
    opener = make_agent("opener", settings={"fail_mode": "open"})
    assert propose(opener, services.open_session(opener), "read")["verdict"] == "ALLOW"
    layer = [
        e for e in events_of("action.evaluated")[-1].payload["layers"] if e["layer"] == "policies"
    ]
    assert layer[0]["reason"].startswith("fail-open:")
