"""JSON, amounts and call arguments: how Python values cross the wire (SPEC §9).

- Amounts travel as decimal strings (``"250000.00"``), never floats, so no cent is lost.
- Call arguments travel as one JSON object keyed by parameter name (defaults applied,
  ``**kwargs`` merged in, ``*args`` as a list), and a constrained answer is mapped back
  onto the same signature.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import math
import uuid
from collections.abc import Mapping
from datetime import date, datetime, time
from decimal import Decimal, InvalidOperation
from enum import Enum
from typing import Any

from .errors import WardenProtocolError


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return decimal_string(value)
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    raise TypeError(
        f"{type(value).__name__} is not JSON serialisable; pass JSON-friendly arguments "
        "(str, numbers, bool, None, lists, dicts, Decimal, datetime, UUID, enums, dataclasses)"
    )


def dumps(value: Any) -> str:
    """Compact JSON; NaN and infinities are refused (they are not JSON)."""
    return json.dumps(value, default=_default, allow_nan=False, separators=(",", ":"))


def to_json(value: Any) -> Any:
    """``value`` as plain JSON data (what the server will see)."""
    return json.loads(dumps(value))


def decimal_string(amount: Decimal | int | float | str) -> str:
    """An amount as a plain decimal string: ``Decimal("1E+3")`` → ``"1000"``."""
    if isinstance(amount, bool):
        raise TypeError("an amount cannot be a bool")
    if isinstance(amount, float):
        if not math.isfinite(amount):
            raise ValueError(f"amount {amount!r} is not a finite number")
        # repr() is the shortest string that round-trips: 0.1 → "0.1", not 0.1000000000000000055…
        amount = Decimal(repr(amount))
    elif isinstance(amount, int | str):
        try:
            amount = Decimal(str(amount).strip())
        except InvalidOperation:
            raise ValueError(f"amount {amount!r} is not a decimal number") from None
    if not isinstance(amount, Decimal):
        raise TypeError(
            f"an amount must be Decimal, int, float or str, not {type(amount).__name__}"
        )
    if not amount.is_finite():
        raise ValueError(f"amount {amount!r} is not a finite number")
    return format(amount, "f")


def call_arguments(
    signature: inspect.Signature, args: tuple[Any, ...], kwargs: Mapping[str, Any]
) -> dict[str, Any]:
    """The call's arguments by parameter name, defaults applied (raises TypeError like a call)."""
    bound = signature.bind(*args, **kwargs)
    bound.apply_defaults()
    named: dict[str, Any] = {}
    for name, value in bound.arguments.items():
        kind = signature.parameters[name].kind
        if kind is inspect.Parameter.VAR_KEYWORD:
            named.update(value)
        elif kind is inspect.Parameter.VAR_POSITIONAL:
            named[name] = list(value)
        else:
            named[name] = value
    return named


def rebuild_call(signature: inspect.Signature, arguments: Any) -> tuple[list[Any], dict[str, Any]]:
    """Map a JSON object of arguments (a constrained answer) back onto ``signature``.

    Parameters missing from ``arguments`` are left to their defaults. Anything that cannot
    be applied exactly — an unknown key, a gap before ``*args`` — is a protocol error: the
    function must run with the arguments Warden returned or not at all.
    """
    if not isinstance(arguments, dict):
        raise WardenProtocolError(f"constrained args are not a JSON object: {arguments!r:.200}")
    remaining = dict(arguments)
    positional: list[Any] = []
    keywords: dict[str, Any] = {}
    in_order = True  # positional slots stay positional until the first missing one
    var_keyword = False
    P = inspect.Parameter
    for parameter in signature.parameters.values():
        name, kind = parameter.name, parameter.kind
        if kind is P.VAR_KEYWORD:
            var_keyword = True
            continue
        if name not in remaining:
            if kind in (P.POSITIONAL_ONLY, P.POSITIONAL_OR_KEYWORD):
                in_order = False
            continue
        value = remaining.pop(name)
        if kind is P.VAR_POSITIONAL:
            if not isinstance(value, list):
                raise WardenProtocolError(f"constrained *{name} is not a list")
            if value and not in_order:
                raise WardenProtocolError(f"constrained args leave a gap before *{name}")
            positional.extend(value)
        elif kind is P.KEYWORD_ONLY or (kind is P.POSITIONAL_OR_KEYWORD and not in_order):
            keywords[name] = value
        elif in_order:
            positional.append(value)
        else:
            raise WardenProtocolError(f"constrained args leave a gap before {name!r}")
    if remaining:
        if not var_keyword:
            raise WardenProtocolError(
                f"constrained args name unknown parameters: {', '.join(sorted(remaining))}"
            )
        keywords.update(remaining)
    return positional, keywords
