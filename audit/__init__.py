"""The signed, append-only event log (SPEC §6, §7).

This package's ``__init__`` imports nothing: ``python -m audit.verify`` must run with the
standard library and ``cryptography`` only. The event writer is ``audit.services.record``.
"""
