"""Domain errors raised by services and turned into HTTP answers by the API and views.

Every error has a status, a stable machine ``code`` (SPEC §9: ``agent_paused``,
``agent_revoked`` …), a human message and, for validation, per-field reasons.
"""

from __future__ import annotations


class WardenError(Exception):
    status = 400
    code = "invalid"

    def __init__(self, message: str, *, code: str | None = None, fields: dict | None = None):
        super().__init__(message)
        self.message = message
        if code:
            self.code = code
        self.fields = fields

    def as_json(self) -> dict:
        body: dict = {"code": self.code, "message": self.message}
        if self.fields:
            body["fields"] = self.fields
        return {"error": body}


class Invalid(WardenError):
    status = 400
    code = "invalid"


class Unauthorized(WardenError):
    status = 401
    code = "not_authenticated"


class Forbidden(WardenError):
    status = 403
    code = "forbidden"


class NotFound(WardenError):
    status = 404
    code = "not_found"


class Conflict(WardenError):
    status = 409
    code = "conflict"


class Unprocessable(WardenError):
    status = 422
    code = "unprocessable"
