"""One error shape for the whole API (SPEC §9): ``{"error": {code, message, fields?}}``."""

from __future__ import annotations

import logging

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.db import InterfaceError, OperationalError
from django.http import Http404, JsonResponse
from rest_framework import exceptions, status
from rest_framework.response import Response

from console.errors import WardenError

log = logging.getLogger("warden.api")

_CODES = {
    exceptions.ParseError: "malformed_json",
    exceptions.NotAuthenticated: "not_authenticated",
    exceptions.AuthenticationFailed: "authentication_failed",
    exceptions.PermissionDenied: "forbidden",
    exceptions.NotFound: "not_found",
    exceptions.MethodNotAllowed: "method_not_allowed",
    exceptions.NotAcceptable: "not_acceptable",
    exceptions.UnsupportedMediaType: "unsupported_media_type",
    exceptions.Throttled: "throttled",
}


def flatten(detail, prefix: str = "") -> dict[str, list[str]]:
    """DRF's nested error detail as ``{"dotted.field": ["reason", …]}``."""
    fields: dict[str, list[str]] = {}
    if isinstance(detail, dict):
        for key, value in detail.items():
            name = f"{prefix}.{key}" if prefix else str(key)
            if key == "non_field_errors" and prefix:
                name = prefix
            fields.update(flatten(value, name))
    elif isinstance(detail, list):
        if all(not isinstance(item, dict | list) for item in detail):
            fields.setdefault(prefix or "non_field_errors", []).extend(str(item) for item in detail)
        else:
            for index, item in enumerate(detail):
                fields.update(flatten(item, f"{prefix}.{index}" if prefix else str(index)))
    else:
        fields.setdefault(prefix or "non_field_errors", []).append(str(detail))
    return fields


def error_body(code: str, message: str, fields: dict | None = None) -> dict:
    body: dict = {"code": code, "message": message}
    if fields:
        body["fields"] = fields
    return {"error": body}


def is_database_unavailable(exc: BaseException | None) -> bool:
    """The database went away (restart, failover, no pooled connection in time) or could
    not do it now: a condition to retry, not a bug."""
    return isinstance(exc, OperationalError | InterfaceError)


def database_unavailable_response(response_class=JsonResponse):
    """503 with ``Retry-After: 1``, for a request that met :func:`is_database_unavailable`.

    ``response_class`` is DRF's ``Response`` inside a DRF view (the view's renderer writes
    the body) and Django's ``JsonResponse`` outside one (Django's 500 handler).
    """
    return response_class(
        error_body("service_unavailable", "The database is unavailable; retry shortly."),
        status=status.HTTP_503_SERVICE_UNAVAILABLE,
        headers={"Retry-After": "1"},
    )


def exception_handler(exc, context):
    if isinstance(exc, WardenError):
        return Response(exc.as_json(), status=exc.status)
    if isinstance(exc, RequestDataTooBig):
        return Response(
            error_body("payload_too_large", "The request body is larger than 256 KiB."),
            status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
        )
    if is_database_unavailable(exc):
        # 503 rather than 500: an agent retries with the same Idempotency-Key and gets the
        # first answer if that request committed after all.
        log.warning("database unavailable: %s", exc)
        return database_unavailable_response(Response)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    if not isinstance(exc, exceptions.APIException):
        return None  # a real bug: let Django log it and answer 500
    headers = {}
    if getattr(exc, "auth_header", None):
        headers["WWW-Authenticate"] = exc.auth_header
    if getattr(exc, "wait", None):
        headers["Retry-After"] = str(int(exc.wait))
    if isinstance(exc, exceptions.ValidationError):
        body = error_body("invalid", "The request is not valid.", flatten(exc.detail))
        return Response(body, status=exc.status_code, headers=headers)
    code = getattr(exc, "warden_code", None) or _CODES.get(type(exc))
    if code is None:
        for klass, name in _CODES.items():
            if isinstance(exc, klass):
                code = name
                break
    detail = exc.detail
    message = str(detail) if not isinstance(detail, dict | list) else "Request refused."
    return Response(error_body(code or "error", message), status=exc.status_code, headers=headers)


def json_error_view(status_code: int, code: str, message: str):
    def view(request, exception=None):
        return JsonResponse(error_body(code, message), status=status_code)

    return view
