"""Rego policies in-process with regopy (SPEC §3.2 step 5). No Django.

* :func:`check_module` / :func:`compile_module` compile a module and report every problem
  with its **line and column** (:class:`CompileProblem`); a module must declare a
  ``package`` and define ``verdict``.
* :func:`compiled` caches compiled modules per ``(policy id, version, source hash)``:
  each policy version is compiled once per process. The cache is shared by every thread
  (the ASGI server runs sync views in threads); a compiled bundle is read-only and each
  evaluation uses its own interpreter, so evaluations run in parallel.
* :func:`evaluate` runs a compiled module against an input document (SPEC §3.3) and returns
  a :class:`PolicyResult`: the verdict, ``reason`` and optional ``severity`` the module
  defines, or an ``error`` (a run-time error, a missing or unknown verdict). What an error
  means — BLOCK, or ALLOW under ``fail_mode: open`` — is the pipeline's business.

The module is queried as ``data.<package>``, so ``verdict``, ``reason`` and ``severity``
are read from one evaluation. ``verdict`` must be one of ``allow``, ``block``, ``halt``,
``require_approval`` (any case); an undefined verdict (no rule matched and no ``default``)
is an error, so write ``default verdict := "allow"``.
"""

from __future__ import annotations

import ctypes
import hashlib
import json
import re
import sys
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any


def _share_cxx_allocator() -> bool:
    """Make the C++ runtime's ``operator new`` / ``delete`` the process's one pair, before
    regopy loads its library.

    ``librego_shared.so`` carries its own allocator (snmalloc) and exports ``operator new`` /
    ``delete``. When ``libstdc++`` is already loaded privately by another extension (greenlet,
    imported by Celery on every Warden process), the library's own code and the ``libstdc++``
    functions it calls bind to different allocators, and memory taken from one and handed
    back to the other is never freed: about 3 KB per evaluation, the server's steady memory
    growth in the soak (issue 8). With ``libstdc++`` in the global scope first, every C++
    library binds to its pair and memory stays flat whatever the import order (regopy loaded
    before anything else also stays flat; after greenlet it does not). Linux only (the
    behaviour is the dynamic linker's); False if it could not be done.
    """
    if not sys.platform.startswith("linux") or "regopy" in sys.modules:
        return False
    try:
        ctypes.CDLL("libstdc++.so.6", mode=ctypes.RTLD_GLOBAL)
    except OSError:
        return False
    return True


CXX_ALLOCATOR_SHARED = _share_cxx_allocator()

from regopy import Interpreter, LogLevel, RegoError  # noqa: E402
from regopy import rego_shared as _rego  # noqa: E402
from regopy.rego_shared import (  # noqa: E402
    rego_bundle_query,
    rego_free_input,
    rego_free_output,
    rego_new_input,
    rego_output_ok,
    rego_output_string,
    rego_set_input,
)

from .verdicts import SEVERITIES, Verdict  # noqa: E402

MODULE_NAME = "policy.rego"
MAX_MODULE_BYTES = 64 * 1024
CACHE_SIZE = 512

_PACKAGE = re.compile(
    r"^\s*package\s+([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)\s*(?:#.*)?$", re.M
)
_VERDICT_RULE = re.compile(r"^\s*(?:default\s+)?verdict\s*(?::=|=|if\b|\{|contains\b)", re.M)


@dataclass(frozen=True)
class CompileProblem:
    line: int
    column: int
    message: str

    def as_json(self) -> dict[str, Any]:
        return {"line": self.line, "column": self.column, "message": self.message}

    def __str__(self) -> str:
        return f"line {self.line}, column {self.column}: {self.message}"


class PolicyCompileError(Exception):
    def __init__(self, problems: list[CompileProblem]):
        self.problems = problems
        super().__init__("; ".join(str(p) for p in problems) or "the module does not compile")


@dataclass(frozen=True)
class CompiledPolicy:
    package: str
    sha256: str
    bundle: Any = field(repr=False, compare=False)


@dataclass(frozen=True)
class PolicyResult:
    verdict: Verdict | None
    reason: str = ""
    severity: str | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def source_sha256(source: str) -> str:
    return hashlib.sha256(source.encode("utf-8")).hexdigest()


def parse_package(source: str) -> str | None:
    match = _PACKAGE.search(source)
    return match.group(1) if match else None


def _position(source_bytes: bytes, offset: int) -> tuple[int, int]:
    before = source_bytes[: max(0, offset)]
    line = before.count(b"\n") + 1
    column = len(before) - (before.rfind(b"\n") + 1) + 1
    return line, column


def _length_prefixed(text: str, start: int) -> tuple[str, int]:
    """Read ``N:<N characters>`` at ``start``; returns (value, end)."""
    colon = text.index(":", start)
    size = int(text[start:colon])
    return text[colon + 1 : colon + 1 + size], colon + 1 + size


def parse_errors(error_text: str, source: str) -> list[CompileProblem]:
    """Turn rego-cpp's error sequence into problems with line numbers.

    The text looks like ``(error 11:policy.rego|96|1 (errormsg 24:Invalid boolean operator)
    …)``: the location is a byte offset and length in the named source.
    """
    source_bytes = source.encode("utf-8")
    problems: list[CompileProblem] = []
    position = 0
    while True:
        start = error_text.find("(error", position)
        if start == -1:
            break
        line, column = 1, 1
        cursor = start + len("(error")
        location = re.match(r" (\d+):", error_text[cursor:])
        if location:
            _, end = _length_prefixed(error_text, cursor + 1)
            offsets = re.match(r"\|(\d+)\|(\d+)", error_text[end:])
            if offsets:
                line, column = _position(source_bytes, int(offsets.group(1)))
            cursor = end
        msg_at = error_text.find("(errormsg ", cursor)
        if msg_at == -1:
            break
        try:
            message, position = _length_prefixed(error_text, msg_at + len("(errormsg "))
        except ValueError:
            message, position = "the module does not compile", msg_at + 10
        problems.append(CompileProblem(line, column, message.strip()))
    if not problems and error_text.strip():
        problems.append(CompileProblem(1, 1, error_text.strip().splitlines()[0][:500]))
    return problems


def _static_problems(source: str) -> list[CompileProblem]:
    problems = []
    if len(source.encode("utf-8")) > MAX_MODULE_BYTES:
        problems.append(CompileProblem(1, 1, f"the module is larger than {MAX_MODULE_BYTES} bytes"))
    if parse_package(source) is None:
        problems.append(CompileProblem(1, 1, "the module must start with a package declaration"))
    if not _VERDICT_RULE.search(source):
        line = source.count("\n") + 1
        problems.append(CompileProblem(line, 1, "the module must define `verdict`"))
    return problems


def compile_module(source: str) -> CompiledPolicy:
    """Compile ``source``; raises :class:`PolicyCompileError` listing every problem."""
    if not isinstance(source, str) or not source.strip():
        raise PolicyCompileError([CompileProblem(1, 1, "the module is empty")])
    problems = _static_problems(source)
    if problems and parse_package(source) is None:
        raise PolicyCompileError(problems)
    package = parse_package(source)
    interpreter = Interpreter()
    interpreter.log_level = LogLevel.NONE  # rego-cpp prints compile errors otherwise
    try:
        interpreter.add_module(MODULE_NAME, source)
        bundle = interpreter.build(f"x := data.{package}")
        if not bundle.ok():
            raise PolicyCompileError([CompileProblem(1, 1, "the module does not compile")])
    except RegoError as exc:
        raise PolicyCompileError(parse_errors(str(exc), source) + problems) from None
    if problems:
        raise PolicyCompileError(problems)
    return CompiledPolicy(package=package, sha256=source_sha256(source), bundle=bundle)


def check_module(source: str) -> list[CompileProblem]:
    """Every compile problem of ``source`` (empty when it compiles)."""
    try:
        compile_module(source)
    except PolicyCompileError as exc:
        return exc.problems
    return []


# --- the cache ------------------------------------------------------------------------
_cache: OrderedDict[tuple[str, int, str], CompiledPolicy] = OrderedDict()
_cache_lock = threading.Lock()


def compiled(policy_id: Any, version: int, source: str) -> CompiledPolicy:
    """The compiled module of one policy version, compiled at most once per process."""
    key = (str(policy_id), int(version), source_sha256(source))
    with _cache_lock:
        hit = _cache.get(key)
        if hit is not None:
            _cache.move_to_end(key)
            return hit
    result = compile_module(source)  # outside the lock: compiling takes milliseconds
    with _cache_lock:
        _cache[key] = result
        _cache.move_to_end(key)
        while len(_cache) > CACHE_SIZE:
            _cache.popitem(last=False)
    return result


def cache_size() -> int:
    with _cache_lock:
        return len(_cache)


def clear_cache() -> None:
    with _cache_lock:
        _cache.clear()


# --- evaluation -----------------------------------------------------------------------
def _error_message(text: str) -> str:
    match = re.search(r"\(errormsg (\d+):", text)
    if match:
        start = match.end()
        return text[start : start + int(match.group(1))]
    return text.strip()[:300] or "evaluation error"


class InputError(ValueError):
    """A value the policy engine cannot be given faithfully."""


_lib = _rego.rego


def _push(handle, value) -> None:
    """Append ``value`` (JSON: dict, list, str, int, float, bool, None) to an input under
    construction, as regopy's ``Input`` does but with its C calls made directly (the
    input is built on every proposal; regopy's copy of each string into a fresh buffer was
    most of the cost). A string holding a NUL character is refused: the engine takes
    C strings, so it would see ``"vendor:acme\\x00…"`` as ``"vendor:acme"`` and an
    allow-list policy would pass a value it never saw."""
    if value is True or value is False:
        code = _lib.regoInputBoolean(handle, value)
    elif value is None:
        code = _lib.regoInputNull(handle)
    elif isinstance(value, str):
        if "\x00" in value:
            raise InputError("the input holds a NUL character, which Rego cannot be given")
        code = _lib.regoInputString(handle, value.encode("utf-8"))
    elif isinstance(value, int):
        if not -(2**63) <= value < 2**63:
            raise InputError("the input holds an integer beyond 64 bits")
        code = _lib.regoInputInt(handle, value)
    elif isinstance(value, float):
        code = _lib.regoInputFloat(handle, value)
    elif isinstance(value, dict):
        for key, item in value.items():
            _push(handle, key if isinstance(key, str) else str(key))
            _push(handle, item)
            if _lib.regoInputObjectItem(handle):
                raise RegoError("Unable to create input", 1)
        code = _lib.regoInputObject(handle, len(value))
    elif isinstance(value, list | tuple):
        for item in value:
            _push(handle, item)
        code = _lib.regoInputArray(handle, len(value))
    else:
        raise InputError(f"the input holds a {type(value).__name__}, which is not JSON")
    if code:
        raise RegoError("Unable to create input", code)


def _set_input(interpreter: Interpreter, document: Any) -> None:
    handle = rego_new_input()
    try:
        _push(handle, document)
        rego_set_input(interpreter._impl, handle)
    finally:
        rego_free_input(handle)  # the interpreter keeps its own copy, as with regopy's Input


def evaluate(policy: CompiledPolicy, document: dict[str, Any]) -> PolicyResult:
    """Evaluate a compiled module against ``document`` (the SPEC §3.3 input)."""
    interpreter = Interpreter()
    interpreter.log_level = LogLevel.NONE
    try:
        _set_input(interpreter, document)
        output = rego_bundle_query(interpreter._impl, policy.bundle._impl)
    except RegoError as exc:
        return PolicyResult(None, error=_error_message(str(exc)))
    except Exception as exc:  # noqa: BLE001 - a bad input value must not become a 500
        return PolicyResult(None, error=f"evaluation error: {exc}")
    try:
        ok = rego_output_ok(output)
        text = rego_output_string(output)
    finally:
        rego_free_output(output)
    if not ok or text.startswith("(error") or text.startswith("<error"):
        if text.startswith("<error"):
            return PolicyResult(
                None, error="evaluation error (for example conflicting values for `verdict`)"
            )
        return PolicyResult(None, error=_error_message(text))
    if text == "undefined":
        return PolicyResult(None, error=f"data.{policy.package} is undefined")
    try:
        value = json.loads(text)["bindings"]["x"]
    except (ValueError, KeyError, TypeError):
        return PolicyResult(None, error="the policy output could not be read")
    return result_from_value(value)


def result_from_value(value: Any) -> PolicyResult:
    """Read ``verdict`` / ``reason`` / ``severity`` from a package document (also used for
    answers of an external OPA server)."""
    if not isinstance(value, dict):
        return PolicyResult(None, error="the policy package is not an object")
    if "verdict" not in value:
        return PolicyResult(None, error="`verdict` is undefined for this input")
    try:
        verdict = Verdict.parse(value["verdict"])
    except ValueError as exc:
        return PolicyResult(None, error=str(exc))
    reason = value.get("reason")
    reason = reason if isinstance(reason, str) else "" if reason is None else json.dumps(reason)
    severity = value.get("severity")
    if severity is not None and severity not in SEVERITIES:
        return PolicyResult(
            None, error=f"unknown severity {severity!r}; expected minor, major or critical"
        )
    return PolicyResult(verdict, reason=reason[:1000], severity=severity)
