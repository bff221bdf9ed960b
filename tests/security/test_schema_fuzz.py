"""schemathesis against ``/api/schema/`` on the live ASGI server (security baseline).

Every operation of the published schema is called with generated requests under four
credentials: with access (an admin operator token; the agent's own key for agent
endpoints), with none, with another agent's valid key, and with a key that does not
exist. Examples are drawn from valid (positive) and invalid (negative) data, and half of
them put the ids of a real world (``world.py``) into the path, so the views run past
their lookups. Every answer must be no server error and must conform to
the schema: documented status code, content type, headers and body.
"""

from __future__ import annotations

import time

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from console import services
from tests.security.world import build_world

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

# Examples per operation (~50 operations): the full budget where the request gets in, a
# smaller one where it is refused before the view (the answer does not depend on the body).
EXAMPLES = {"access": 14, "none": 6, "foreign-agent-key": 6, "unknown-key": 6}
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
CREDENTIALS = ("access", "none", "foreign-agent-key", "unknown-key")
UNKNOWN_KEY = "wdn_live_AAAAAAAAAAAA_" + "B" * 43


def _is_agent_operation(operation) -> bool:
    security = operation.definition.raw.get("security") or []
    return any("agentKey" in requirement for requirement in security)


def _order(operation) -> tuple[int, str]:
    """Agent endpoints first, reads next, writes after, deletes and revocation last: the
    world's agent and key stay usable for as long as possible."""
    method = operation.method.upper()
    if _is_agent_operation(operation):
        rank = 0
    elif method == "GET":
        rank = 1
    elif method == "DELETE" or operation.path.endswith("/revoke"):
        rank = 3
    else:
        rank = 2
    return rank, operation.label


def _headers(credential: str, operation, world, operator_token: str) -> dict[str, str]:
    if credential == "access":
        if _is_agent_operation(operation):
            return {"Authorization": f"Bearer {world.agent_key}"}
        return {"Authorization": f"Token {operator_token}"}
    if credential == "foreign-agent-key":
        return {"Authorization": f"Bearer {world.foreign_key}"}
    if credential == "unknown-key":
        return {"Authorization": f"Bearer {UNKNOWN_KEY}"}
    return {}


def _fuzz(operation, *, base_url, headers, real_ids, examples) -> list[str]:
    names = {p.name for p in operation.path_parameters}
    fixed = {name: real_ids[name] for name in names if name in real_ids}
    strategies = []
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
        strategies.append(operation.as_strategy(generation_mode=mode))
        if fixed:
            strategies.append(operation.as_strategy(generation_mode=mode, path_parameters=fixed))
    failures: list[str] = []

    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate],  # report, don't shrink: keep it bounded
        suppress_health_check=list(HealthCheck),
    )
    @given(case=st.one_of(strategies))
    def run(case):
        response = case.call(base_url=base_url, headers=headers, timeout=30)
        try:
            case.validate_response(response, checks=CHECKS, headers=headers)
        except FailureGroup as exc:
            failures.append(str(exc)[:1500])

    run()
    return failures


@pytest.mark.parametrize("credential", CREDENTIALS)
def test_every_operation_answers_within_its_schema(asgi_server, admin_user, credential):
    world = build_world(admin_user)
    _, operator_token = services.issue_operator_token(admin_user, by=admin_user)
    schema = schemathesis.openapi.from_url(
        asgi_server.url + "/api/schema/",
        headers={"Authorization": f"Token {operator_token}", "Accept": "application/json"},
    )
    operations = sorted((r.ok() for r in schema.get_all_operations()), key=_order)
    assert len(operations) >= 40  # the whole API, not an empty schema
    started = time.monotonic()
    problems: dict[str, list[str]] = {}
    for operation in operations:
        headers = _headers(credential, operation, world, operator_token)
        found = _fuzz(
            operation,
            base_url=asgi_server.url,
            headers=headers,
            real_ids=world.ids,
            examples=EXAMPLES[credential],
        )
        if found:
            problems[operation.label] = found
    elapsed = time.monotonic() - started
    print(f"{credential}: {len(operations)} operations in {elapsed:.1f} s")
    report = "\n\n".join(f"{label}:\n{found[0]}" for label, found in problems.items())
    assert not problems, f"{len(problems)} operations:\n{report}"
