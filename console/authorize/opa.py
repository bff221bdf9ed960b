"""Policies evaluated by an external OPA server (``OPA_URL``, SPEC §10), same interface as
in-process Rego (``console.authorize.layers.policies``).

Each policy version is uploaded once per process with OPA's policy API
(``PUT /v1/policies/warden-<policy id>``, the module as text) and evaluated with the data
API (``POST /v1/data/<package path>`` ``{"input": …}``); the package document's
``verdict`` / ``reason`` / ``severity`` are read as in-process. Any failure — OPA down, a
timeout, a module OPA refuses, an undefined result — is an evaluation error, so the
agent's ``fail_mode`` decides (BLOCK, or ALLOW recorded as fail-open).
"""

from __future__ import annotations

import threading

import httpx
from django.conf import settings

from .rego import PolicyResult, result_from_value

TIMEOUT = httpx.Timeout(2.0, connect=1.0)
_uploaded: set[tuple[str, str, int]] = set()
_lock = threading.Lock()
_client: httpx.Client | None = None


def _http() -> httpx.Client:
    global _client
    with _lock:
        if _client is None:
            _client = httpx.Client(timeout=TIMEOUT)
        return _client


def _base() -> str:
    return settings.OPA_URL.rstrip("/")


def upload(policy) -> None:
    key = (_base(), str(policy.id), int(policy.version))
    with _lock:
        if key in _uploaded:
            return
    response = _http().put(
        f"{_base()}/v1/policies/warden-{policy.id}",
        content=policy.module.encode("utf-8"),
        headers={"Content-Type": "text/plain"},
    )
    response.raise_for_status()
    with _lock:
        _uploaded.add(key)


def evaluate(policy, document: dict) -> PolicyResult:
    try:
        upload(policy)
        path = policy.package.replace(".", "/")
        response = _http().post(f"{_base()}/v1/data/{path}", json={"input": document})
        response.raise_for_status()
        body = response.json()
    except (httpx.HTTPError, ValueError) as exc:
        return PolicyResult(None, error=f"OPA at {_base()}: {exc}")
    if "result" not in body:
        return PolicyResult(None, error=f"data.{policy.package} is undefined in OPA")
    return result_from_value(body["result"])


def forget() -> None:
    """Drop the upload cache (tests; an OPA server that restarted loses its policies)."""
    with _lock:
        _uploaded.clear()
