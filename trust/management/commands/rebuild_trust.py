"""manage.py rebuild_trust [--agent ID …] [--check] [--workers N]: trust from the event log.

Replays the log from scratch through the same reducer as the incremental tasks (SPEC
§5.5) and compares each result with the stored one. Equal: nothing written. Stored state
behind (an event or day boundary not applied yet): brought up to date the incremental way.
Different: the recomputed state wins and a ``manual_recalculation`` row by
``system:rebuild_trust`` explains the correction. ``--check`` writes nothing and exits 1
if anything would change.
"""

from __future__ import annotations

import uuid

from django.core.management.base import BaseCommand, CommandError

from trust.services import rebuild_trust


class Command(BaseCommand):
    help = "Recompute every agent's trust score from the event log from scratch."

    def add_arguments(self, parser):
        parser.add_argument(
            "--agent", action="append", dest="agents", metavar="ID", help="only this agent"
        )
        parser.add_argument(
            "--check", action="store_true", help="compare only; exit 1 if anything differs"
        )
        parser.add_argument(
            "--workers",
            type=int,
            default=1,
            help="replay shards of the agents in this many processes (PostgreSQL)",
        )

    def handle(self, *args, agents=None, check=False, workers=1, **options):
        if workers < 1:
            raise CommandError("--workers must be at least 1")
        ids = None
        if agents:
            try:
                ids = [uuid.UUID(value) for value in agents]
            except ValueError as exc:
                raise CommandError(f"--agent takes an agent id (UUID): {exc}") from exc
        report = rebuild_trust(agent_ids=ids, write=not check, workers=workers)
        self.stdout.write(
            f"{report.agents} agents, {report.events} events replayed in "
            f"{report.compute_seconds:.2f} s ({report.events_per_second:,.0f} events/s); "
            f"{report.unchanged} unchanged, {report.caught_up} caught up, "
            f"{report.initialized} initialised, {report.corrected} corrected"
            + (f" ({report.write_seconds:.2f} s writing)" if not check else "")
        )
        for agent_id in report.corrected_agents:
            self.stdout.write(f"  corrected: {agent_id}")
        if check and (report.corrected or report.initialized):
            raise CommandError("trust differs from its recomputation from the event log")
