"""Console pages of the authorization pipeline: /policies/… and the canary tokens of
/settings/ (SPEC §3, §8)."""

from django.urls import path

from . import views

urlpatterns = [
    path("policies/", views.policy_list, name="policies"),
    path("policies/new/", views.policy_new, name="policy-new"),
    path("policies/backtest/", views.policy_draft_backtest, name="policy-draft-backtest"),
    path("policies/rules/new/", views.rule_new, name="rule-new"),
    path("policies/rules/backtest/", views.rule_draft_backtest, name="rule-draft-backtest"),
    path("policies/rules/<str:rule_id>/edit/", views.rule_edit, name="rule-edit"),
    path("policies/rules/<str:rule_id>/mode/", views.rule_mode, name="rule-mode"),
    path("policies/rules/<str:rule_id>/delete/", views.rule_delete, name="rule-delete"),
    path("policies/rules/<str:rule_id>/backtest/", views.rule_backtest, name="rule-backtest"),
    path("policies/guardrails/new/", views.guardrail_new, name="guardrail-new"),
    path(
        "policies/guardrails/<str:guardrail_id>/edit/",
        views.guardrail_edit,
        name="guardrail-edit",
    ),
    path(
        "policies/guardrails/<str:guardrail_id>/mode/",
        views.guardrail_mode,
        name="guardrail-mode",
    ),
    path(
        "policies/guardrails/<str:guardrail_id>/delete/",
        views.guardrail_delete,
        name="guardrail-delete",
    ),
    path("policies/<str:policy_id>/", views.policy_detail, name="policy-detail"),
    path("policies/<str:policy_id>/edit/", views.policy_edit, name="policy-edit"),
    path("policies/<str:policy_id>/mode/", views.policy_mode, name="policy-mode"),
    path("policies/<str:policy_id>/delete/", views.policy_delete, name="policy-delete"),
    path("policies/<str:policy_id>/backtest/", views.policy_backtest, name="policy-backtest"),
    path("settings/canaries/new/", views.canary_new, name="canary-new"),
]
