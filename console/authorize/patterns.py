"""Glob patterns on action names and targets (SPEC §3.2 steps 4 and 6). No Django.

Patterns are shell-style globs with :func:`fnmatch.fnmatchcase` semantics (case-sensitive):
``*`` any run of characters (dots included: ``payment.*`` matches ``payment.release``),
``?`` one character, ``[abc]`` / ``[!abc]`` a set. Behavioural rules need the same match
inside SQL, so :func:`sql_regex` turns a pattern into an anchored regular expression that
PostgreSQL (``~``) and Python's ``re`` (SQLite's REGEXP in Django) read the same way, and
:func:`is_literal` lets the caller use plain equality (an index lookup) when there is no
wildcard at all.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from fnmatch import fnmatchcase

MAX_PATTERN_LENGTH = 200
_WILDCARDS = set("*?[")


def matches(value: str, pattern: str) -> bool:
    return fnmatchcase(value, pattern)


def matches_any(value: str, patterns: Iterable[str] | None) -> bool:
    return any(fnmatchcase(value, p) for p in patterns or ())


def is_literal(pattern: str) -> bool:
    return not (_WILDCARDS & set(pattern))


def pattern_error(pattern: object) -> str | None:
    """Why ``pattern`` is not an acceptable glob, or None."""
    if not isinstance(pattern, str) or not pattern.strip():
        return "A non-empty glob pattern is required."
    if len(pattern) > MAX_PATTERN_LENGTH:
        return f"At most {MAX_PATTERN_LENGTH} characters."
    if "\\" in pattern or "[[" in pattern:
        return "Backslashes and nested [ are not supported in patterns."
    if any(ord(c) < 32 for c in pattern):
        return "Control characters are not allowed."
    try:
        compile_regex(pattern)
    except re.error:
        return "Not a valid pattern (a [set] has a reversed range?)."
    return None


def _escape(char: str) -> str:
    # A backslash before a non-alphanumeric character is a literal in both dialects.
    return char if char.isalnum() or char == "_" else "\\" + char


def sql_regex(pattern: str) -> str:
    """An anchored regular expression equivalent to ``fnmatchcase(·, pattern)``."""
    out = ["^"]
    i, n = 0, len(pattern)
    while i < n:
        char = pattern[i]
        i += 1
        if char == "*":
            out.append(".*")
        elif char == "?":
            out.append(".")
        elif char == "[":
            j = i
            if j < n and pattern[j] == "!":
                j += 1
            if j < n and pattern[j] == "]":
                j += 1
            while j < n and pattern[j] != "]":
                j += 1
            if j >= n:
                out.append("\\[")  # no closing bracket: a literal [ (as fnmatch does)
                continue
            body = pattern[i:j]
            i = j + 1
            negate = body.startswith("!")
            if negate:
                body = body[1:]
            # Inside a set only ], ^ and - are special; keep ranges, quote the rest.
            chars = []
            for k, c in enumerate(body):
                if c == "-" and 0 < k < len(body) - 1:
                    chars.append("-")
                elif c.isalnum():
                    chars.append(c)
                elif c == "]":
                    chars.append("\\]")
                else:
                    chars.append("\\" + c)
            out.append("[" + ("^" if negate else "") + "".join(chars) + "]")
        else:
            out.append(_escape(char))
    out.append("$")
    return "".join(out)


def compile_regex(pattern: str) -> re.Pattern[str]:
    return re.compile(sql_regex(pattern), re.DOTALL)
