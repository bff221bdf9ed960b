"""The authorization pipeline (SPEC §3): an agent proposes an action, Warden answers ALLOW,
BLOCK, HALT or REQUIRE_APPROVAL.

Layout (each module's docstring says what it owns):

* ``models`` — Policy, Rule, Guardrail, Action, IdempotencyRecord (part of the ``console``
  app, imported by ``console.models``);
* ``services`` — every write: policies, rules, guardrails (one event each), policy tests,
  backtests, and (re-exported from ``runtime``) ``evaluate_action`` / ``report_result``;
* ``selectors`` — reads of the configuration and of recorded actions;
* ``pipeline`` + ``layers/`` — the layers of SPEC §3.2 behind one interface
  ``evaluate(ctx) -> LayerResult`` (``context``), combined by ``verdicts.combine``;
* pure modules with no Django import: ``verdicts``, ``patterns``, ``detectors``, ``rego``;
* ``api`` / ``api_urls`` / ``serializers`` — the HTTP API of SPEC §9;
* ``canary`` — canary tokens at rest; ``opa`` — the optional external OPA server;
  ``clock`` — the pipeline's clock.
"""
