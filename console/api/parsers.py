"""The API's JSON parser: DRF's, refusing strings that cannot be stored.

JSON can spell a lone surrogate (``"\\ud800"``), which Python's decoder keeps in the
string and nothing downstream can encode (the event's canonical form, the database), and
a NUL character (``"\\u0000"``), which PostgreSQL cannot store in text or ``jsonb``. Either
failed late, as a 500; both are refused here (400 ``malformed_json``, naming where).
"""

from __future__ import annotations

import json
from typing import Any

from rest_framework import parsers
from rest_framework.exceptions import ParseError


def _unstorable(value: Any, path: str) -> tuple[str, str] | None:
    """``(where, why)`` of the first string (value or key) that cannot be stored."""
    if isinstance(value, str):
        if "\x00" in value:
            return path, "holds a NUL character (\\u0000), which cannot be stored"
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return path, "holds a lone surrogate (\\ud800-\\udfff), which is not text"
        return None
    if isinstance(value, dict):
        for key, item in value.items():
            where = f"{path}.{key}" if path else str(key)
            found = _unstorable(key, f"{where} (the key)") or _unstorable(item, where)
            if found:
                return found
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found = _unstorable(item, f"{path}.{index}" if path else str(index))
            if found:
                return found
    return None


class JSONParser(parsers.JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        data = super().parse(stream, media_type, parser_context)
        try:  # the common case costs one dump: no escaped NUL, every string encodable
            suspect = b"\\u0000" in json.dumps(data, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            suspect = True
        found = _unstorable(data, "") if suspect else None
        if found:
            where, why = found
            # The path may hold the very character: spell it out.
            where = where.encode("utf-8", "backslashreplace").decode().replace("\x00", "\\u0000")
            raise ParseError(f"JSON parse error - {where or 'the body'} {why}.")
        return data
