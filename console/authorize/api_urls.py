from django.urls import path

from . import api

urlpatterns = [
    path(
        "sessions/<str:session_id>/actions", api.ActionsView.as_view(), name="api-session-actions"
    ),
    path(
        "sessions/<str:session_id>/actions/<str:action_id>/result",
        api.ResultView.as_view(),
        name="api-action-result",
    ),
    path("policies", api.PoliciesView.as_view(), name="api-policies"),
    path("policies/test", api.PolicyTestView.as_view(), name="api-policy-test"),
    path("policies/<str:policy_id>", api.PolicyView.as_view(), name="api-policy"),
    path(
        "policies/<str:policy_id>/backtest",
        api.PolicyBacktestView.as_view(),
        name="api-policy-backtest",
    ),
    path("rules", api.RulesView.as_view(), name="api-rules"),
    path("rules/<str:rule_id>", api.RuleView.as_view(), name="api-rule"),
    path("rules/<str:rule_id>/backtest", api.RuleBacktestView.as_view(), name="api-rule-backtest"),
    path("guardrails", api.GuardrailsView.as_view(), name="api-guardrails"),
    path("guardrails/<str:guardrail_id>", api.GuardrailView.as_view(), name="api-guardrail"),
]
