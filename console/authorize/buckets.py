"""Time windows cut into aligned buckets of the action rollups (pure arithmetic).

Every recorded action is counted, by a database trigger, into four rollup rows: the
second, minute, hour and day (UTC, aligned on the Unix epoch) it falls in. A window
``(since, now]`` of the agent's history is then read as

* whole buckets, the coarsest that fit: at most two runs per resolution, so a 72-hour
  window touches at most a few hundred rollup rows whatever the agent's volume; and
* the two partial seconds at its edges, read from ``console_action`` itself (an indexed
  range of at most one second each).

``cover`` computes that split; ``console.authorize.history`` turns it into one query.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

RESOLUTIONS = (86400, 3600, 60, 1)  # seconds, coarsest first
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


@dataclass(frozen=True)
class Cover:
    """``runs``: ``(resolution, first_start, end)`` — the rollup rows of that resolution
    whose start is in ``[first_start, end)``. ``edges``: ranges of ``created_at`` to read
    from the actions themselves, ``(low, low_inclusive, high, high_inclusive)``."""

    runs: tuple[tuple[int, int, int], ...]
    edges: tuple[tuple[dt.datetime, bool, dt.datetime, bool], ...]


def second_of(moment: dt.datetime) -> int:
    """The whole second (since the epoch) ``moment`` falls in, in integers (a float of
    today's epoch seconds cannot hold the microseconds exactly)."""
    delta = moment - EPOCH
    return delta.days * 86400 + delta.seconds


def at(seconds: int) -> dt.datetime:
    return EPOCH + dt.timedelta(seconds=seconds)


def aligned_runs(first: int, end: int) -> list[tuple[int, int, int]]:
    """Cover the whole seconds ``[first, end)`` with aligned buckets, coarsest first."""
    runs: list[tuple[int, int, int]] = []
    _split(first, end, 0, runs)
    return runs


def _split(low: int, high: int, level: int, runs: list) -> None:
    # A module function, not a closure: a closure calling itself is a reference cycle, left
    # to the cyclic collector on every proposal.
    if low >= high:
        return
    size = RESOLUTIONS[level]
    if size == 1:
        runs.append((1, low, high))
        return
    inner_low = -(-low // size) * size  # ceil to the bucket size
    inner_high = high // size * size
    if inner_low >= inner_high:
        _split(low, high, level + 1, runs)
        return
    runs.append((size, inner_low, inner_high))
    _split(low, inner_low, level + 1, runs)
    _split(inner_high, high, level + 1, runs)


def cover(since: dt.datetime | None, now: dt.datetime) -> Cover:
    """The actions with ``since < created_at <= now`` (all up to ``now`` without
    ``since``), as rollup runs plus the partial seconds at both edges."""
    last = second_of(now)  # the second ``now`` falls in is read raw
    first = None if since is None else second_of(since) + 1  # first whole second after
    if first is not None and first >= last:  # within a second or two: read it all raw
        return Cover((), ((since, False, now, True),))
    edges = [(at(last), True, now, True)]
    if first is not None:
        edges.insert(0, (since, False, at(first), False))  # the rest of since's second
    if first is None:
        # No lower bound: every whole day before, then the finer remainder.
        day = last // 86400 * 86400
        runs = [(86400, -(2**62), day), *aligned_runs(day, last)]
    else:
        runs = aligned_runs(first, last)
    return Cover(tuple(runs), tuple(edges))
