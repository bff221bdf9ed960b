"""The shared risk-profile vectors (``shared/vectors/risk_profile.json``).

Read from the shared directory next to the checkout (``../shared``, or ``WARDEN_SHARED_DIR``)
when it is there; otherwise from the copy kept beside this module, so the suite also runs
from a bare checkout. ``test_scoring`` checks that the copy is identical to the original.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

HERE = Path(__file__).resolve().parent
COPY = HERE / "risk_profile.json"


def shared_path() -> Path | None:
    bases = [Path(os.environ["WARDEN_SHARED_DIR"])] if os.environ.get("WARDEN_SHARED_DIR") else []
    bases.append(HERE.parents[1].parent / "shared")
    for base in bases:
        candidate = base / "vectors" / "risk_profile.json"
        if candidate.exists():
            return candidate
    return None


VECTORS: list[dict] = json.loads((shared_path() or COPY).read_text())
BY_NAME: dict[str, dict] = {vector["name"]: vector for vector in VECTORS}
PROCUREMENT = BY_NAME["procurement_agent"]
